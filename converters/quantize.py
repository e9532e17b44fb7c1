"""Full-integer INT8 TFLite from a float Keras model, the file check, and the embedded contract."""

from __future__ import annotations

import json
import logging
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from edge_classifier.errors import ConversionError
from edge_classifier.spec import LABELS_FILE, SPEC_FILE, ModelSpec
from edge_classifier.tflite_file import ModelFileInfo, append_associated_files, parse_model

log = logging.getLogger(__name__)

IoType = Literal["uint8", "int8"]

# Ops the Edge TPU compiler maps (coral.ai/docs/edgetpu/models-intro, "Supported operations").
# Used only when converters.edgetpu_analysis (the full, per-op analysis) is not installed.
EDGETPU_OPS = frozenset(
    {
        "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS", "FULLY_CONNECTED",
        "L2_NORMALIZATION", "LOGISTIC", "LSTM", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MUL", "PACK", "PAD",
        "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUARED_DIFFERENCE",
        "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "TANH", "TRANSPOSE", "TRANSPOSE_CONV",
    }
)  # fmt: skip
_INTEGER_TYPES = frozenset({"int8", "uint8", "int32", "int16", "int64"})


@dataclass(frozen=True)
class QuantOptions:
    """How to quantize.

    Attributes:
        io: the input/output tensor type, ``uint8`` (default, what Coral's models use) or ``int8``.
        per_channel: per-channel weight scales (default, more accurate); False for per-tensor.
    """

    io: IoType = "uint8"
    per_channel: bool = True


def quantize(model: Any, samples: np.ndarray, opts: QuantOptions, *, progress: bool = True) -> bytes:
    """Convert a float Keras model to a full-integer TFLite flatbuffer.

    Args:
        model: batch-1 Keras model.
        samples: calibration inputs, float32 (N, H, W, 3), already normalised like the model's input.
        opts: I/O type and weight granularity.

    Raises:
        ConversionError: TensorFlow failed to convert (for example an op without an INT8 kernel).
    """
    import tensorflow as tf

    if opts.io not in ("uint8", "int8"):
        raise ConversionError("--io", f"is {opts.io!r}", "use uint8 or int8")

    def representative() -> Iterator[list[np.ndarray]]:
        it: Any = range(len(samples))
        if progress:
            try:
                from tqdm import tqdm

                it = tqdm(it, desc="calibrating", unit="img", leave=False)
            except ImportError:
                pass
        for i in it:
            yield [samples[i : i + 1]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = tf.uint8 if opts.io == "uint8" else tf.int8
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    # No public switch exists for per-tensor weights; this attribute is what TF's own tests use.
    converter._experimental_disable_per_channel = not opts.per_channel
    try:
        with warnings.catch_warnings():
            # uint8/int8 I/O takes its quantization from the calibration data; TF still warns that
            # it was given no input statistics, which would only alarm the user.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
            return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises ConverterError, RuntimeError, ValueError...
        raise ConversionError(
            model.name,
            f"TensorFlow could not convert it to full-integer INT8 ({type(exc).__name__}: {str(exc)[:500]})",
            "the model uses an op without an INT8 kernel; replace it (e.g. a minimalistic MobileNetV3) or file an issue",
        ) from exc


@dataclass
class FileCheck:
    """What the check of a converted file found.

    Attributes:
        ops: op name -> count.
        float_tensors: names of non-integer tensors (must be empty).
        input: dtype, shape and quantization of the input tensor.
        output: dtype, shape and quantization of the output tensor.
        edgetpu_unsupported: op name -> count of ops the Edge TPU will leave on the CPU.
        warnings: human lines for the summary.
        edgetpu_analysis: the full analysis report when converters.edgetpu_analysis is installed.
    """

    ops: dict[str, int]
    float_tensors: list[str]
    input: dict[str, Any]
    output: dict[str, Any]
    edgetpu_unsupported: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    edgetpu_analysis: Any = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form for the report."""
        d = {k: v for k, v in self.__dict__.items() if k != "edgetpu_analysis"}
        if self.edgetpu_analysis is not None:
            full = self.edgetpu_analysis.to_dict()
            d["edgetpu_analysis"] = {k: v for k, v in full.items() if k != "ops"}  # per-op rows: `edge-convert analyze`
        return d


def _tensor_summary(info: ModelFileInfo, index: int) -> dict[str, Any]:
    t = info.main.tensors[index]
    return {
        "name": t.name,
        "dtype": t.dtype,
        "shape": list(t.shape),
        "shape_signature": list(t.shape_signature),
        "scale": t.scales[0] if t.scales else 0.0,
        "zero_point": t.zero_points[0] if t.zero_points else 0,
    }


def check_file(data: bytes, name: str) -> FileCheck:
    """Verify a converted model: integer tensors only, batch 1, and ops the Edge TPU maps.

    Raises:
        ConversionError: a float tensor is left, or the batch is not 1.
    """
    info = parse_model(data, name)
    ops: dict[str, int] = {}
    for sg in info.subgraphs:
        for op in sg.ops:
            ops[op.name] = ops.get(op.name, 0) + 1
    floats = [t.name or f"#{t.index}" for sg in info.subgraphs for t in sg.tensors if t.dtype not in _INTEGER_TYPES]
    inp = _tensor_summary(info, info.main.inputs[0])
    out = _tensor_summary(info, info.main.outputs[0])
    unsupported = {k: v for k, v in ops.items() if k not in EDGETPU_OPS}
    check = FileCheck(ops=ops, float_tensors=floats, input=inp, output=out, edgetpu_unsupported=unsupported)
    if floats:
        raise ConversionError(
            name,
            f"the converted model still has {len(floats)} float tensors ({', '.join(floats[:5])})",
            "an op has no INT8 kernel; this model cannot run fully in integer arithmetic",
        )
    for t in (inp, out):
        if t["shape"][:1] != [1] or (t["shape_signature"] and t["shape_signature"][0] not in (1,)):
            raise ConversionError(
                name,
                f"tensor {t['name']} has batch {t['shape_signature'] or t['shape']}, not 1",
                "build the model with batch_size=1",
            )
    if "HARD_SWISH" in ops:
        check.warnings.append(
            f"HARD_SWISH x{ops['HARD_SWISH']}: the Edge TPU does not run it, so the model splits between TPU and CPU; "
            "for the Edge TPU convert the minimalistic variant "
            "(mobilenet_v3_small_minimalistic / mobilenet_v3_large_minimalistic)"
        )
    other = {k: v for k, v in unsupported.items() if k != "HARD_SWISH"}
    if other:
        check.warnings.append(
            "ops the Edge TPU does not map (they will run on the CPU): "
            + ", ".join(f"{k} x{v}" for k, v in sorted(other.items()))
        )
    return check


def add_edgetpu_analysis(check: FileCheck, path: str) -> None:
    """Replace the built-in op-list check with the full op-by-op prediction of
    :func:`converters.edgetpu_analysis.analyze_model` when that module is installed."""
    try:
        from .edgetpu_analysis import analyze_model
    except ImportError:
        log.debug("converters.edgetpu_analysis not installed; keeping the built-in op list check")
        return
    report = analyze_model(path)
    check.edgetpu_analysis = report
    cpu = Counter(report.cpu_ops)
    check.edgetpu_unsupported = dict(cpu)
    check.warnings = [w for w in check.warnings if w.startswith("HARD_SWISH")]
    other = {k: v for k, v in cpu.items() if k != "HARD_SWISH"}
    if report.fatal:
        check.warnings.append("edgetpu_compiler would reject this model: " + "; ".join(report.fatal))
    elif other:
        check.warnings.append(
            "Edge TPU analysis: these ops would stay on the CPU: "
            + ", ".join(f"{k} x{v}" for k, v in other.items())
            + " (details: edge-convert analyze MODEL)"
        )


def embed_contract(data: bytes, spec: ModelSpec) -> bytes:
    """Append the labels and the ModelSpec as associated files, the way TFLite metadata packs labels."""
    files = {SPEC_FILE: json.dumps(spec.to_embedded_json(), indent=1).encode("utf-8")}
    if spec.labels:
        background = ["background"] * spec.label_offset
        files[LABELS_FILE] = ("\n".join([*background, *spec.labels]) + "\n").encode("utf-8")
    return append_associated_files(data, files)
