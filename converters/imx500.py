"""``edge-convert convert MODEL --target imx500``: the same float model, quantized by Sony's toolkit for the AI Camera.

The flow, end to end (Sony's IMX500 flow, with edge-classifier's framing and report):

1. Load the float model exactly as the TFLite path does (:func:`.sources.load_source`), and build the calibration
   (and validation) samples with the runtime's own framing (:func:`.calibration.build_samples`), turned back into
   raw pixels: on the sensor the network sees pixels, so the normalisation becomes its first layer.
2. Hand the network to the toolchain's TensorFlow 2.15 as a neutral graph and weights (:func:`export_graph`); a
   leading Rescaling/Normalization is folded into that first layer (imxconv does not take those layers).
3. In the toolchain's own environment (:mod:`.imx500_env`), :mod:`.imx500_job` rebuilds it, quantizes it with MCT's
   post-training quantization for the IMX500 and measures float-vs-quantized agreement (top-1, and MCT's XQuant
   report).
4. ``imxconv-tf -i quantized.keras -o OUT --no-input-persistency`` writes ``packerOut.zip`` (input persistency,
   which lets the camera hand back the network's input tensor, is off: the runtime does not read it, and it costs
   ~151 KB of the sensor's 8 MB, which EfficientNet-Lite0 needs).
5. ``labels.txt`` and ``network.json`` (the spec: framing, colour order, output kind) are written beside it, and the
   Pi-side step is printed: ``imx500-package -i packerOut.zip -o out/`` (apt ``imx500-tools``) makes the ``.rpk``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_classifier.errors import ConversionError, ImxconvError

from .convert import ConvertOptions
from .imx500_job import KEEP

log = logging.getLogger(__name__)

JOB_SCRIPT = Path(__file__).with_name("imx500_job.py")
TPC_VERSION = "4.0"  # edge-mdt-tpc's IMX500 capabilities (the version Sony's IMX500 tutorials use)
JOB_TIMEOUT = 3 * 3600
IMXCONV_TIMEOUT = 2 * 3600
_FOLDABLE = ("Rescaling", "Normalization")
_SUPPORTED = frozenset(KEEP) | {"InputLayer"}
_MEMORY = re.compile(r"Not enough memory, available: ([\d.]+\s*\w+)\s*, required: ([\d.]+\s*\w+)")
UNSUPPORTED_FIX = (
    "the IMX500 path takes Keras models built from Conv2D, DepthwiseConv2D, BatchNormalization, ReLU/Activation, Add, "
    "Multiply, Concatenate, pooling, Dense, Dropout, Softmax, ZeroPadding2D, Reshape and Flatten (EfficientNet-Lite, "
    "MobileNetV2/V1 and ResNet-style Keras applications); a SavedModel is opaque to it: pass the .keras/.h5 model"
)


def _histories(obj: Any, out: list[str]) -> None:
    """The layer names a Keras 3 inbound-node config refers to (``keras_history``), in order."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            out.append(obj["config"]["keras_history"][0])
            return
        for value in obj.values():
            _histories(value, out)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _histories(value, out)


def _affine(layer: Any, cls: str) -> tuple[np.ndarray, np.ndarray]:
    """A Rescaling or Normalization layer as ``y = x * scale + offset`` per channel."""
    if cls == "Rescaling":
        cfg = layer.get_config()
        scale = np.broadcast_to(np.asarray(cfg.get("scale", 1.0), dtype=np.float64), (3,)).copy()
        offset = np.broadcast_to(np.asarray(cfg.get("offset", 0.0), dtype=np.float64), (3,)).copy()
        return scale, offset
    mean, var = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (layer.mean, layer.variance))
    std = np.sqrt(np.maximum(np.broadcast_to(var, (3,)), 1e-12))
    return 1.0 / std, -np.broadcast_to(mean, (3,)) / std


def _endpoints(value: Any) -> list[str]:
    """Layer names of a config's ``input_layers``/``output_layers``: ``["x", 0, 0]`` (Keras 3, one) or ``[["x", 0, 0], ...]``."""
    if not value:
        return []
    if isinstance(value[0], str):
        return [value[0]]
    return [v[0] for v in value]


def export_graph(model: Any, folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Write ``graph.json`` and ``weights.npz`` for :mod:`.imx500_job`; return the folded input affine and the folded layers.

    Returns:
        (scale, offset, folded layer names): the network's own leading Rescaling/Normalization as one per-channel
        affine on its input (identity when there is none), to fold into the normalisation layer.

    Raises:
        ConversionError: a layer the IMX500 path cannot rebuild (named), or more than one input or output.
    """
    cfg = model.get_config()
    ins, outs = _endpoints(cfg.get("input_layers")), _endpoints(cfg.get("output_layers"))
    if len(ins) != 1 or len(outs) != 1:
        raise ConversionError(model.name, "is not a single-input, single-output Keras functional model", UNSUPPORTED_FIX)
    entries = cfg["layers"]
    consumers: dict[str, int] = {}
    inbound: dict[str, list[str]] = {}
    for entry in entries:
        names: list[str] = []
        _histories(entry.get("inbound_nodes", []), names)
        inbound[entry["name"]] = names
        for name in names:
            consumers[name] = consumers.get(name, 0) + 1
    input_name = next(e["name"] for e in entries if e["class_name"] == "InputLayer")
    scale, offset = np.ones(3), np.zeros(3)
    folded: list[str] = []
    current = input_name
    for entry in entries:  # the leading preprocessing layers, while each is the only consumer of the one before
        if entry["class_name"] in _FOLDABLE and inbound[entry["name"]] == [current] and consumers.get(current) == 1:
            s, o = _affine(model.get_layer(entry["name"]), entry["class_name"])
            scale, offset = scale * s, offset * s + o
            folded.append(entry["name"])
            current = entry["name"]
    layers: list[dict[str, Any]] = []
    weights: dict[str, np.ndarray] = {}
    for entry in entries:
        cls, name = entry["class_name"], entry["name"]
        if name in folded:
            continue
        if cls not in _SUPPORTED:
            raise ConversionError(
                f"{model.name}: layer {name!r}", f"is a {cls}, which the IMX500 path does not take", UNSUPPORTED_FIX
            )
        refs = [input_name if ref == current and folded else ref for ref in inbound[name]]
        values = model.get_layer(name).get_weights()
        for i, w in enumerate(values):
            weights[f"{name}/{i}"] = np.asarray(w)
        layers.append({"class_name": cls, "name": name, "config": entry["config"], "inbound": refs, "weights": len(values)})
    output = outs[0]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "graph.json").write_text(json.dumps({"layers": layers, "output": output}, default=str))
    np.savez(folder / "weights.npz", **weights)  # type: ignore[arg-type]  # numpy stubs type **kwds oddly
    return scale, offset, folded


def _run_tool(cmd: list[str], log_path: Path, timeout: int, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    """Run a toolchain command, its output into ``log_path``; returns (status, output tail, seconds)."""
    t0 = time.perf_counter()
    with log_path.open("w") as out:
        try:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False, env=env)
        except subprocess.TimeoutExpired as exc:
            raise ImxconvError(
                " ".join(cmd[:2]), f"took longer than {timeout} s (log: {log_path})", "use fewer --num-calib samples"
            ) from exc
    text = log_path.read_text(errors="replace")
    return proc.returncode, "\n".join(text.strip().splitlines()[-15:]), time.perf_counter() - t0


def _memory_report(folder: Path) -> dict[str, Any] | None:
    for path in sorted(folder.glob("*_MemoryReport.json")):
        try:
            return dict(json.loads(path.read_text()).get("Memory Report", {}))
        except (OSError, ValueError):
            return None
    return None


def convert_imx500(opts: ConvertOptions, *, toolchain_dir: Path | None = None, keep_work: bool = False) -> dict[str, Any]:
    """Convert one float model for the AI Camera; returns the report (also written to ``<out>/<name>_imx500_report.json``).

    Raises:
        ConversionError: bad input (folders, model, a layer the sensor cannot take), or agreement below
            ``min_agreement``; ToolchainInstallError/JavaMissingError when the toolchain cannot be set up;
            ImxconvError when quantization or imxconv fails (the network does not fit the sensor, ...).
    """
    from edge_classifier.spec import LABELS_FILE

    from .calibration import build_samples, find_images, split_holdout
    from .imx500_env import ensure_toolchain
    from .report import versions, write_report
    from .sources import SourceOptions, load_source

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    calib_images = find_images(opts.calib, "calibration")
    val_images = find_images(opts.val, "validation") if opts.val is not None else None
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    src = load_source(
        opts.model,
        SourceOptions(weights=opts.weights, input_size=opts.input_size, mean=opts.mean, std=opts.std, labels=opts.labels,
                      resize=opts.resize, crop_fraction=opts.crop_fraction, name=opts.name),
    )  # fmt: skip
    spec = src.spec
    times["load"] = time.perf_counter() - t0
    if val_images is None:
        calib_images, val_images, _ = split_holdout(calib_images, opts.val_fraction, opts.seed)
    t = time.perf_counter()
    mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
    calib = build_samples(calib_images, spec, opts.num_calib, augment_small=opts.augment, seed=opts.seed, progress=opts.progress)
    val = build_samples(val_images[: opts.max_val], spec, max(1, min(len(val_images), opts.max_val)), augment_small=False,
                        progress=opts.progress) if val_images else None  # fmt: skip
    times["calibration_images"] = time.perf_counter() - t
    name = spec.name
    work = opts.out_dir / f"{name}_imx500_work"
    shutil.rmtree(work, ignore_errors=True)
    scale, offset, folded = export_graph(src.model, work)
    # pixel -> (pixel - mean) / std -> the folded layers (* scale + offset): one affine, done by the first layer.
    eff_std = std / scale.astype(np.float32)
    eff_mean = mean - offset.astype(np.float32) * eff_std
    raw = np.clip(calib.samples * std + mean, 0, 255).astype(np.float32)
    np.save(work / "calib.npy", raw)
    if val is not None:
        np.save(work / "val.npy", np.clip(val.samples * std + mean, 0, 255).astype(np.float32))
    probe_in = calib.samples[:2]
    probe_out = np.concatenate([np.asarray(src.model(probe_in[i : i + 1])) for i in range(len(probe_in))])
    np.savez(work / "probe.npz", x=raw[:2], y=probe_out)
    job = {"graph": "graph.json", "weights": "weights.npz", "calib": "calib.npy", "val": "val.npy" if val is not None else None,
           "probe": "probe.npz", "mean": eff_mean.tolist(), "std": eff_std.tolist(), "input_size": list(spec.input_size),
           "tpc_version": TPC_VERSION, "batch": 8, "out": "quantized.keras", "name": name}  # fmt: skip
    (work / "job.json").write_text(json.dumps(job))

    t = time.perf_counter()
    toolchain = ensure_toolchain(toolchain_dir)
    times["toolchain"] = time.perf_counter() - t
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)  # the toolchain's Python must not see this environment's packages
    status, tail, seconds = _run_tool([str(toolchain.python), str(JOB_SCRIPT), str(work)], work / "job.log", JOB_TIMEOUT, env)
    times["quantize_job"] = seconds
    try:
        result = json.loads((work / "result.json").read_text())
    except (OSError, ValueError):
        result = {"ok": False, "error": f"no result (status {status})"}
    if status != 0 or not result.get("ok"):
        raise ImxconvError(
            f"{name}: MCT quantization for the IMX500",
            f"failed at its {result.get('stage', '?')} stage: {result.get('error', 'unknown error')}\n{tail}",
            f"see {work / 'job.log'}; an unsupported layer or an out-of-memory kill are the usual causes",
        )
    folder = opts.out_dir / f"{name}_imx500"
    cmd = [
        str(toolchain.imxconv),
        "-i",
        str(result["quantized_model"]),
        "-o",
        str(folder),
        "--no-input-persistency",
        "--overwrite-output",
    ]
    status, tail, seconds = _run_tool(cmd, work / "imxconv.log", IMXCONV_TIMEOUT, env)
    times["imxconv"] = seconds
    memory = _memory_report(folder)
    packer = folder / "packerOut.zip"
    if status != 0 or not packer.is_file():
        m = _MEMORY.search((work / "imxconv.log").read_text(errors="replace"))
        if m:
            raise ImxconvError(
                f"{name}: imxconv",
                f"the quantized network does not fit the sensor: it needs {m.group(2)} and the IMX500 has {m.group(1)}",
                "use a smaller network or input size (EfficientNet-Lite0 at 224x224 and MobileNetV2 fit)",
            )
        raise ImxconvError(f"{name}: imxconv-tf", f"failed (status {status}):\n{tail}", f"see {work / 'imxconv.log'}")
    labels = list(spec.labels)
    if spec.label_offset:
        labels = ["background"] * spec.label_offset + labels  # one line per output, as the sensor's tensor has
    labels_path = folder / LABELS_FILE
    labels_path.write_text("\n".join(labels) + "\n")
    spec_path = folder / "network.json"
    sidecar = {
        k: v
        for k, v in spec.to_embedded_json().items()
        if k in ("name", "resize", "crop_fraction", "color_order", "label_offset", "output_kind")
    }
    spec_path.write_text(json.dumps(sidecar, indent=1))
    times["total"] = time.perf_counter() - t0
    data = packer.read_bytes()
    package = f"imx500-package -i {packer.name} -o out/ && cp {LABELS_FILE} {spec_path.name} out/"
    report: dict[str, Any] = {
        "target": "imx500",
        "source": src.source,
        "source_details": src.details,
        "command": opts.command,
        "spec": spec.describe(),
        "input": {
            "pixels": "raw RGB 0..255 (the sensor's)",
            "normalisation_layer": {"mean": eff_mean.tolist(), "std": eff_std.tolist()},
            "folded_layers": folded,
        },  # fmt: skip
        "output": {
            "packerOut.zip": str(packer),
            "size_bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "labels": str(labels_path),
            "spec": str(spec_path),
        },
        "imx500": {"memory_report": memory, "input_persistency": False, "tpc_version": TPC_VERSION},
        "quantization": {
            "calibration_samples": int(calib.samples.shape[0]),
            "calibration_images": len(calib.images),
            "rebuild_max_abs_diff": result.get("rebuild_max_abs_diff"),
            "agreement": result.get("agreement"),
            "xquant": result.get("xquant"),
            "xquant_readable": _readable(result.get("xquant")),
            "ptq_seconds": result.get("ptq_seconds"),
            "job_peak_rss_mb": result.get("peak_rss_mb"),
        },
        "toolchain": {
            "root": str(toolchain.root),
            "versions": {**toolchain.versions, **result.get("versions", {})},
            "java": toolchain.java,
        },
        "times_s": {k: round(v, 2) for k, v in times.items()},
        "versions": versions(),
        "package_on_the_pi": package,
    }
    report_path = opts.out_dir / f"{name}_imx500_report.json"
    report["output"]["report"] = str(report_path)
    write_report(report, report_path)
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    agreement = (result.get("agreement") or {}).get("top1_agreement")
    if opts.min_agreement is not None and agreement is not None and agreement < opts.min_agreement:
        raise ConversionError(
            str(packer),
            f"the quantized network's top-1 agrees with the float one on {agreement:.1%} of the validation images, below "
            f"--min-agreement {opts.min_agreement:.1%} (report: {report_path})",
            "calibrate on more (and more representative) images, or lower the threshold",
        )
    return report


def _readable(xquant: dict[str, Any] | None) -> dict[str, Any]:
    """MCT XQuant's output metrics in the usual units: its ``cs`` is Keras's CosineSimilarity *loss* (the negated
    similarity) and its ``sqnr`` a power ratio (``mean(x^2) / mean((x - y)^2)``), shown here in dB."""
    out: dict[str, Any] = {}
    for key in ("representative", "validation"):
        m = (xquant or {}).get(key) or {}
        if m:
            sqnr = float(m.get("sqnr", 0.0))
            out[key] = {
                "cosine_similarity": -float(m.get("cs", 0.0)),
                "sqnr_db": round(10 * float(np.log10(sqnr)), 2) if sqnr > 0 else None,
                "mse": float(m.get("mse", 0.0)),
            }
    return out


def summary(report: dict[str, Any]) -> str:
    """The human summary ``edge-convert`` prints after an IMX500 conversion."""
    out = report["output"]
    q = report["quantization"]
    agree = q.get("agreement") or {}
    xq = (q.get("xquant_readable") or {}).get("validation") or {}
    mem = report["imx500"].get("memory_report") or {}
    lines = [
        f"IMX500 network: {out['packerOut.zip']} ({out['size_bytes'] / 1e6:.2f} MB)",
        f"  labels: {out['labels']}   spec: {out['spec']}",
        f"  sensor memory: {mem.get('Memory Usage', '?')} of {mem.get('Total Memory Available On Chip', '?')}"
        f" (fits: {mem.get('Fit In Chip', '?')})",
        f"  float vs quantized on {agree.get('images', '?')} images: "
        f"top-1 agreement {agree.get('top1_agreement', float('nan')):.1%}"
        + (
            f"; MCT XQuant on the output: cosine similarity {xq['cosine_similarity']:.4f}, SQNR {xq['sqnr_db']} dB, "
            f"MSE {xq['mse']:.2e}"
            if xq
            else ""
        ),
        f"  times: {', '.join(f'{k} {v:g} s' for k, v in report['times_s'].items())}",
        f"  report: {out['report']}",
        "",
        "On the Raspberry Pi (apt install imx500-tools), in the folder of packerOut.zip:",
        f"  {report['package_on_the_pi']}",
        "then: edge-classifier run --model out/network.rpk --source picamera",
    ]
    return "\n".join(lines)
