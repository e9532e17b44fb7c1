"""One conversion, start to end: source -> calibrate -> quantize -> check -> embed -> validate -> report."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_classifier.errors import ConversionError, EdgeClassifierError
from edge_classifier.spec import ModelSpec, OutputKind

from .quantize import IoType

if TYPE_CHECKING:
    from .edgetpu_compiler import CompileResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConvertOptions:
    """Everything ``edge-convert`` takes for one model."""

    model: str
    calib: Path
    out_dir: Path
    val: Path | None = None
    weights: str | None = None
    input_size: tuple[int, int] | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    labels: str | None = None
    resize: str | None = None
    crop_fraction: float | None = None
    name: str | None = None
    io: IoType = "uint8"
    per_channel: bool = True
    num_calib: int = 300
    augment: bool | None = None  # None: augment when the folder has fewer images than num_calib
    seed: int = 0
    val_fraction: float = 0.2
    max_val: int = 200
    min_agreement: float | None = None
    progress: bool = True
    command: list[str] = field(default_factory=list)


def convert(opts: ConvertOptions) -> dict[str, Any]:
    """Convert one model and return its report (also written to ``<out>/<name>_report.json``).

    Raises:
        ConversionError: (and its children CalibrationError, WeightsError) for any bad input;
            also when the INT8 model agrees with the float one less than ``min_agreement``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .calibration import build_samples, find_images, split_holdout
    from .quantize import QuantOptions, add_edgetpu_analysis, check_file, embed_contract, quantize
    from .report import versions, write_report
    from .sources import SourceOptions, load_source
    from .validate import validate

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    # Fail on a bad folder before paying for TensorFlow.
    calib_images = find_images(opts.calib, "calibration")
    val_images = find_images(opts.val, "validation") if opts.val is not None else None
    try:
        opts.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConversionError(
            str(opts.out_dir), f"the output folder cannot be created ({exc.strerror})", "give -o a writable folder"
        ) from exc

    src = load_source(
        opts.model,
        SourceOptions(
            weights=opts.weights,
            input_size=opts.input_size,
            mean=opts.mean,
            std=opts.std,
            labels=opts.labels,
            resize=opts.resize,
            crop_fraction=opts.crop_fraction,
            name=opts.name,
        ),
    )
    times["load"] = time.perf_counter() - t0
    held_out = True
    val_root: Path | None
    if val_images is None:
        calib_images, val_images, held_out = split_holdout(calib_images, opts.val_fraction, opts.seed)
        val_root = Path(opts.calib)
    else:
        val_root = Path(opts.val) if opts.val is not None else None
    val_images = val_images[: opts.max_val]

    t = time.perf_counter()
    samples = build_samples(
        calib_images, src.spec, opts.num_calib, augment_small=opts.augment, seed=opts.seed, progress=opts.progress
    )
    times["calibration_images"] = time.perf_counter() - t
    for warning in samples.warnings:
        log.warning("calibration: %s", warning)

    t = time.perf_counter()
    # The converter prints the whole SavedModel signature to stdout; keep it for -v only.
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):
        data = quantize(src.model, samples.samples, QuantOptions(opts.io, opts.per_channel), progress=opts.progress)
    log.debug("converter output:\n%s", chatter.getvalue())
    times["quantize"] = time.perf_counter() - t

    name = src.spec.name
    tflite_path = opts.out_dir / f"{name}_int8.tflite"
    report_path = opts.out_dir / f"{name}_report.json"
    check = check_file(data, str(tflite_path))
    src.spec = _output_kind_from_graph(src.spec, data, str(tflite_path))
    final = embed_contract(data, src.spec)
    tmp = tflite_path.with_suffix(".tflite.part")
    tmp.write_bytes(final)
    tmp.replace(tflite_path)  # never leave a half-written model under the final name
    add_edgetpu_analysis(check, str(tflite_path))
    from edge_classifier import Classifier

    with Classifier(tflite_path) as clf:
        runtime_spec = clf.spec  # what the runtime reads back from the file, embedded contract included

    t = time.perf_counter()
    validation = validate(src.model, src.spec, tflite_path, val_images, root=val_root, held_out=held_out, progress=opts.progress)
    times["validate"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t0

    import hashlib

    from edge_classifier.spec import SPEC_FILE
    from edge_classifier.tflite_file import read_associated_files

    report: dict[str, Any] = {
        "source": src.source,
        "source_details": src.details,
        "command": opts.command,
        "spec": runtime_spec.describe(),
        "embedded": {
            "files": sorted(read_associated_files(final)),
            SPEC_FILE: src.spec.to_embedded_json(),
            "labels": len(src.spec.labels),
        },
        "output": {
            "tflite": str(tflite_path),
            "report": str(report_path),
            "size_bytes": len(final),
            "sha256": hashlib.sha256(final).hexdigest(),
        },
        "float": {"parameters": int(src.model.count_params()), "size_estimate_bytes": 4 * int(src.model.count_params())},
        "quantization": {
            "io": opts.io,
            "per_channel": opts.per_channel,
            "optimizations": "DEFAULT",
            "ops_set": "TFLITE_BUILTINS_INT8",
        },
        "check": check.as_dict(),
        "calibration": {
            "folder": str(opts.calib),
            "images": len(samples.images),
            "samples": int(samples.samples.shape[0]),
            "augmented": samples.augmented,
            "warnings": list(samples.warnings),
            "seed": opts.seed,
        },
        "validation": {**validation.as_dict(), "folder": str(val_root) if val_root is not None else None},
        "times_s": {k: round(v, 3) for k, v in times.items()},
        "versions": versions(),
    }
    write_report(report, report_path)
    if opts.min_agreement is not None and validation.top1_agreement < opts.min_agreement:
        raise ConversionError(
            str(tflite_path),
            f"INT8 top-1 agreement with the float model is {validation.top1_agreement:.1%}, "
            f"below --min-agreement {opts.min_agreement:.1%} "
            f"(report: {report_path})",
            "calibrate on more (and more representative) images, try per-channel weights, or lower the threshold",
        )
    return report


def _output_kind_from_graph(spec: ModelSpec, data: bytes, name: str) -> ModelSpec:
    """The spec with ``output_kind`` taken from the converted graph when it tells.

    A SavedModel is opaque to Keras (a TFSMLayer), so the source cannot see a final softmax; the
    TFLite graph can, and embedding ``logits`` for a softmax model would make the runtime apply
    softmax twice. The runtime's own rule decides, so converter and runtime agree.
    """
    from edge_classifier.tflite_file import ends_in_softmax, parse_model

    softmax = ends_in_softmax(parse_model(data, name))
    if softmax is None:
        return spec
    kind: OutputKind = "probabilities" if softmax else "logits"
    if kind != spec.output_kind:
        log.info("%s: the converted graph %s in SOFTMAX: output_kind %s", name, "ends" if softmax else "does not end", kind)
    return replace(spec, output_kind=kind)


def compile_for_edgetpu(report: dict[str, Any], *, compiler: str | None = None) -> CompileResult:
    """Compile a conversion's INT8 file with edgetpu_compiler and record the outcome in its report file.

    Args:
        report: what :func:`convert` returned (its INT8 file and report path are used).
        compiler: the edgetpu_compiler executable (default: found on PATH).

    Returns:
        The compile result (``<name>_int8_edgetpu.tflite`` beside the INT8 file).

    Raises:
        CompilerError: the compiler is missing, fails or writes no usable model; the report
            file then records the error, and the INT8 file stays as it was.
    """
    from .edgetpu_compiler import compile_model
    from .report import write_report

    report_path = Path(report["output"]["report"])
    try:
        result = compile_model(report["output"]["tflite"], compiler=compiler)
    except EdgeClassifierError as exc:
        report["edgetpu_compile"] = {"error": str(exc)}
        write_report(report, report_path)
        raise
    report["edgetpu_compile"] = result.to_dict()
    write_report(report, report_path)
    return result
