"""Predict, without the compiler, which ops of an INT8 .tflite model edgetpu_compiler 16 maps to the Edge TPU.

The prediction applies Coral's published rules (see :mod:`converters.edgetpu_ops`) op by op, in the
model's execution order:

- every activation tensor is 8-bit (int8/uint8) and quantized; constants are 8-bit weights or int32
  biases/parameters;
- shapes are static; batch is 1 and at most three dimensions exceed 1;
- each op meets its own constraints (dilation, fused activations, reduction axes, resize sizes...) and its
  version is one compiler 16 can parse at all (a newer one fails the whole compilation);
- without ``-a`` the compiler builds ONE Edge TPU subgraph from the input: once an op stays on the CPU,
  every op that depends on it stays there too ("More than one subgraph is not supported"). Ops that only
  feed the Edge TPU part (a float input's QUANTIZE) do not cut the model.

Statuses use the compiler's own words so a prediction compares row by row with a real log. No TensorFlow:
the model is read with :mod:`edge_classifier.tflite_file`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_classifier.errors import ConversionError
from edge_classifier.tflite_file import (
    EDGETPU_CUSTOM_OP,
    ModelFileInfo,
    OpInfo,
    SubgraphInfo,
    TensorInfo,
    enum_name,
    parse_model,
    read_model_bytes,
    tensor_data,
)

from . import edgetpu_ops as ops_table
from .edgetpu_ops import (
    MAPPED,
    MORE_THAN_ONE_SUBGRAPH,
    NOT_SUPPORTED,
    UNSPECIFIED_LIMITATION,
    UNSUPPORTED_DATA_TYPE,
    VERSION_NOT_SUPPORTED,
)

# Status for tensors the Edge TPU cannot lay out (batch > 1, more than three dimensions above 1).
TENSOR_RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"

_EIGHT_BIT = ("int8", "uint8")
_CONST_OK = ("int8", "uint8", "int32", "int64")
_QUANTIZE_FIX = (
    "convert with full-integer quantization: a representative dataset, supported_ops=[TFLITE_BUILTINS_INT8], "
    "inference_input_type and inference_output_type uint8 or int8"
)


@dataclass(frozen=True)
class OpPrediction:
    """Where one op of the model is predicted to run, and why.

    Attributes:
        index: position in the model's execution order.
        name: builtin name, or the custom code of a custom op.
        builtin: builtin name (``CUSTOM`` for custom ops, as the compiler's log names them).
        version: the op version recorded in the model.
        status: the compiler's wording (``Mapped to Edge TPU``, ``Operation not supported``...).
        reasons: why the op stays on the CPU (empty when mapped).
        fix: what would put it on the Edge TPU (empty when mapped).
        output_shape: the shape of its first output, for the table.
        dtypes: element types of its activation inputs and outputs.
    """

    index: int
    name: str
    builtin: str
    version: int
    status: str
    reasons: tuple[str, ...] = ()
    fix: str = ""
    output_shape: tuple[int, ...] = ()
    dtypes: tuple[str, ...] = ()

    @property
    def on_edgetpu(self) -> bool:
        """True when the op is predicted to run on the Edge TPU."""
        return self.status == MAPPED

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "index": self.index,
            "op": self.name,
            "builtin": self.builtin,
            "version": self.version,
            "on_edgetpu": self.on_edgetpu,
            "status": self.status,
            "reasons": list(self.reasons),
            "fix": self.fix,
            "output_shape": list(self.output_shape),
            "dtypes": list(self.dtypes),
        }


@dataclass(frozen=True)
class EdgeTpuReport:
    """The predicted Edge TPU / CPU split of a model.

    Attributes:
        path: the model file.
        ops: one prediction per op of the main subgraph, in execution order.
        multiple_subgraphs: whether the prediction assumes ``-a``.
        min_runtime_version: the Edge TPU runtime targeted (the compiler's ``-m``).
        fatal: problems that make the compiler reject the whole model (nothing gets compiled).
        warnings: what the analysis cannot know for sure (sizes the compiler may still refuse).
    """

    path: str
    ops: tuple[OpPrediction, ...]
    multiple_subgraphs: bool = False
    min_runtime_version: int = ops_table.DEFAULT_RUNTIME_VERSION
    fatal: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def compilable(self) -> bool:
        """False when the compiler would refuse the model outright."""
        return not self.fatal

    @property
    def fully_mapped(self) -> bool:
        """True when every op is predicted to run on the Edge TPU."""
        return self.compilable and all(op.on_edgetpu for op in self.ops)

    @property
    def cpu_ops(self) -> tuple[str, ...]:
        """Names of the ops predicted to stay on the CPU, in execution order."""
        return tuple(op.name for op in self.ops if not op.on_edgetpu)

    @property
    def edgetpu_op_count(self) -> int:
        """How many ops are predicted to run on the Edge TPU."""
        return sum(op.on_edgetpu for op in self.ops)

    def summary(self) -> list[tuple[str, int, str]]:
        """The compiler's table: (operator, count, status) rows in first-seen order."""
        counts: Counter[tuple[str, str]] = Counter((op.builtin, op.status) for op in self.ops)
        return [(name, n, status) for (name, status), n in counts.items()]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "model": self.path,
            "compilable": self.compilable,
            "fully_mapped": self.fully_mapped,
            "multiple_subgraphs": self.multiple_subgraphs,
            "min_runtime_version": self.min_runtime_version,
            "total_ops": len(self.ops),
            "edgetpu_ops": self.edgetpu_op_count,
            "cpu_ops": list(self.cpu_ops),
            "fatal": list(self.fatal),
            "warnings": list(self.warnings),
            "summary": [{"operator": n, "count": c, "status": s} for n, c, s in self.summary()],
            "ops": [op.to_dict() for op in self.ops],
        }

    def format_text(self, *, per_op: bool = True) -> str:
        """A human-readable report: per-op table, the compiler-style summary, and each CPU op's reason and fix."""
        lines = [
            f"Edge TPU compatibility of {self.path} (compiler 16 rules, runtime {self.min_runtime_version}"
            f"{', multiple subgraphs' if self.multiple_subgraphs else ''})",
            "",
        ]
        if per_op:
            lines.append(f"{'#':>4}  {'op':<28} {'v':>2}  {'output':<20} {'where':<8} status")
            for op in self.ops:
                shape = "x".join(str(d) for d in op.output_shape) or "-"
                where = "EdgeTPU" if op.on_edgetpu else "CPU"
                lines.append(f"{op.index:>4}  {op.name:<28} {op.version:>2}  {shape:<20} {where:<8} {op.status}")
            lines.append("")
        lines.append(f"{'Operator':<30} {'Count':<10} Status")
        for name, count, status in self.summary():
            lines.append(f"{name:<30} {count:<10} {status}")
        lines.append("")
        if self.fatal:
            lines.append("The compiler would REJECT this model:")
            lines.extend(f"  - {f}" for f in self.fatal)
        elif self.fully_mapped:
            lines.append(f"Prediction: all {len(self.ops)} ops run on the Edge TPU.")
        else:
            lines.append(
                f"Prediction: {self.edgetpu_op_count} of {len(self.ops)} ops on the Edge TPU, "
                f"{len(self.ops) - self.edgetpu_op_count} on the CPU:"
            )
            for op in self.ops:
                if not op.on_edgetpu:
                    lines.append(f"  #{op.index} {op.name}: {'; '.join(op.reasons) or op.status}")
                    if op.fix:
                        lines.append(f"      fix: {op.fix}")
        if self.warnings:
            lines.append("Cannot be known before compiling:")
            lines.extend(f"  - {w}" for w in self.warnings)
        return "\n".join(lines)


# --- per-op checks ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Ctx:
    data: bytes
    sg: SubgraphInfo

    def t(self, index: int) -> TensorInfo | None:
        return self.sg.tensors[index] if 0 <= index < len(self.sg.tensors) else None

    def const(self, op: OpInfo, pos: int) -> Any:
        if pos >= len(op.inputs):
            return None
        t = self.t(op.inputs[pos])
        return tensor_data(self.data, t) if t is not None and t.is_constant else None

    def activations(self, op: OpInfo) -> list[TensorInfo]:
        ins = [t for i in op.inputs if (t := self.t(i)) is not None and not t.is_constant]
        return ins + [t for i in op.outputs if (t := self.t(i)) is not None]


def _fused(op: OpInfo) -> list[str]:
    code = int(op.options.get("fused_activation_function", 0) or 0)
    return [f"has a fused {enum_name('ActivationFunctionType', code)} activation"] if code else []


def _axes(ctx: _Ctx, op: OpInfo, pos: int, rank: int) -> list[int] | None:
    values = ctx.const(op, pos)
    if values is None:
        return None
    return sorted({int(a) % rank for a in values.reshape(-1)}) if rank else []


def _in_shape(ctx: _Ctx, op: OpInfo, pos: int = 0) -> tuple[int, ...]:
    t = ctx.t(op.inputs[pos]) if pos < len(op.inputs) else None
    return t.shape if t is not None else ()


def _out_shape(ctx: _Ctx, op: OpInfo) -> tuple[int, ...]:
    t = ctx.t(op.outputs[0]) if op.outputs else None
    return t.shape if t is not None else ()


def _check_conv(ctx: _Ctx, op: OpInfo) -> list[str]:
    dw, dh = op.options.get("dilation_w_factor", 1), op.options.get("dilation_h_factor", 1)
    return [f"dilation differs in x ({dw}) and y ({dh})"] if dw != dh else []


def _check_concat(ctx: _Ctx, op: OpInfo) -> list[str]:
    problems = _fused(op)
    consts = [(i, t) for i in op.inputs if (t := ctx.t(i)) is not None and t.is_constant]
    if consts:
        if len(op.inputs) != 2:
            problems.append(f"concatenates a constant tensor with {len(op.inputs) - 1} others (only 2 inputs allowed)")
        for _, t in consts:
            values = tensor_data(ctx.data, t)
            zero = t.zero_points[0] if t.zero_points else 0
            if values is None or (values.astype("int64") != zero).any():
                problems.append("concatenates a constant tensor that is not all zeroes")
    return problems


def _check_fully_connected(ctx: _Ctx, op: OpInfo) -> list[str]:
    problems = []
    if int(op.options.get("weights_format", 0) or 0) != 0:
        problems.append("uses a non-default (shuffled) weights format")
    out = _out_shape(ctx, op)
    if sum(d > 1 for d in out) > 1:
        problems.append(f"output {list(out)} is not one-dimensional")
    return problems


def _reduce_checker(z_multiple_of_4: bool) -> Callable[[_Ctx, OpInfo], list[str]]:
    def check(ctx: _Ctx, op: OpInfo) -> list[str]:
        shape = _in_shape(ctx, op)
        axes = _axes(ctx, op, 1, len(shape))
        if axes is None:
            return ["reduction axes are not a constant"]
        problems = []
        if len(shape) == 4 and 0 in axes:
            problems.append("reduces over the batch dimension")
        if z_multiple_of_4 and shape and len(shape) - 1 in axes and shape[-1] % 4:
            problems.append(f"reduces over z (channels = {shape[-1]}, not a multiple of 4)")
        return problems

    return check


def _check_pack(ctx: _Ctx, op: OpInfo) -> list[str]:
    return ["packs along the batch dimension (axis 0)"] if int(op.options.get("axis", 0) or 0) == 0 else []


def _check_pad(ctx: _Ctx, op: OpInfo) -> list[str]:
    pads = ctx.const(op, 1)
    if pads is None:
        return ["paddings are not a constant"]
    if len(_in_shape(ctx, op)) == 4 and pads.reshape(-1, 2)[0].any():
        return ["pads the batch dimension"]
    return []


def _check_prelu(ctx: _Ctx, op: OpInfo) -> list[str]:
    alpha = ctx.t(op.inputs[1]) if len(op.inputs) > 1 else None
    if alpha is not None and any(d > 1 for d in alpha.shape[:-1]):
        return [f"alpha {list(alpha.shape)} is not 1-dimensional (use shared_axes=[1, 2] in Keras PReLU)"]
    return []


def _check_resize(ctx: _Ctx, op: OpInfo) -> list[str]:
    src, dst = _in_shape(ctx, op), _out_shape(ctx, op)
    if len(src) != 4 or len(dst) != 4 or src[0] != 1:
        return [f"input {list(src)} is not a batch-1 image (3-dimensional) tensor"]
    align = bool(op.options.get("align_corners", False))
    problems = []
    for axis, a, b in (("height", src[1], dst[1]), ("width", src[2], dst[2])):
        if a == b:
            continue
        # The Edge TPU resamples with integer steps only; other ratios would lose precision, so the
        # compiler keeps the op on the CPU (Coral's DeepLabV3: 1x1 -> 33x33 with align_corners stays there).
        if align:
            exact = a > 1 and b > 1 and ((b - 1) % (a - 1) == 0 or (a - 1) % (b - 1) == 0)
            ratio = f"({b}-1)/({a}-1) with align_corners"
        else:
            exact = b % a == 0 or a % b == 0
            ratio = f"{b}/{a}"
        if not exact:
            problems.append(f"{axis} {a} -> {b}: scale {ratio} is not an integer")
    return problems


def _check_softmax(ctx: _Ctx, op: OpInfo) -> list[str]:
    shape = _in_shape(ctx, op)
    problems = []
    if sum(d > 1 for d in shape) > 1:
        problems.append(f"input {list(shape)} is not 1-D")
    if math.prod(shape) > ops_table.SOFTMAX_MAX_ELEMENTS:
        problems.append(f"input has {math.prod(shape)} elements (max {ops_table.SOFTMAX_MAX_ELEMENTS})")
    return problems


def _check_split(ctx: _Ctx, op: OpInfo) -> list[str]:
    shape = _in_shape(ctx, op, 1)
    axes = _axes(ctx, op, 0, len(shape))
    if axes is None:
        return ["split axis is not a constant"]
    return ["splits along the batch dimension"] if len(shape) == 4 and 0 in axes else []


def _check_strided_slice(ctx: _Ctx, op: OpInfo) -> list[str]:
    problems = []
    strides = ctx.const(op, 3)
    if strides is None or (strides != 1).any():
        problems.append(f"strides {strides.tolist() if strides is not None else '?'} are not all 1")
    for key in ("ellipsis_mask", "new_axis_mask"):
        if int(op.options.get(key, 0) or 0):
            problems.append(f"{key} is {op.options[key]}, must be 0")
    return problems


_OP_CHECKS: dict[str, Callable[[_Ctx, OpInfo], list[str]]] = {
    "AVERAGE_POOL_2D": lambda ctx, op: _fused(op),
    "MAX_POOL_2D": lambda ctx, op: _fused(op),
    "CONCATENATION": _check_concat,
    "CONV_2D": _check_conv,
    "DEPTHWISE_CONV_2D": _check_conv,
    "FULLY_CONNECTED": _check_fully_connected,
    "MEAN": _reduce_checker(z_multiple_of_4=True),
    "SUM": _reduce_checker(z_multiple_of_4=False),
    "REDUCE_MAX": _reduce_checker(z_multiple_of_4=False),
    "REDUCE_MIN": _reduce_checker(z_multiple_of_4=False),
    "PACK": _check_pack,
    "PAD": _check_pad,
    "PRELU": _check_prelu,
    "RESIZE_BILINEAR": _check_resize,
    "RESIZE_NEAREST_NEIGHBOR": _check_resize,
    "SOFTMAX": _check_softmax,
    "SPLIT": _check_split,
    "STRIDED_SLICE": _check_strided_slice,
}


def _fmt(t: TensorInfo) -> str:
    return f"{t.dtype}[{','.join(str(d) for d in t.shape)}]"


# A full-integer UNIDIRECTIONAL_SEQUENCE_LSTM (TFLite's 8x8_16 kernel) keeps its cell state (input 19) and its
# layer-norm coefficients (inputs 20-23) in int16 by design; the Edge TPU runs the op from runtime 14 (Coral's table),
# so those int16 tensors are part of the op's contract, not a sign of a float or 16-bit model.
_LSTM_INT16_INPUTS = (19, 20, 21, 22, 23)


def _lstm_int16_inputs(op: OpInfo) -> set[int]:
    if op.builtin != "UNIDIRECTIONAL_SEQUENCE_LSTM":
        return set()
    return {op.inputs[i] for i in _LSTM_INT16_INPUTS if i < len(op.inputs) and op.inputs[i] >= 0}


def _intrinsic(ctx: _Ctx, op: OpInfo, runtime: int) -> tuple[str, list[str], str] | None:
    """Why the op cannot run on the Edge TPU whatever surrounds it, as (status, reasons, fix); None if it can."""
    max_version = ops_table.COMPILER16_MAX_VERSION.get(op.builtin)
    if not op.is_custom and max_version is not None and op.version > max_version:
        return (
            VERSION_NOT_SUPPORTED,
            [f"{op.builtin} version {op.version} is newer than compiler 16 knows (max {max_version})"],
            "convert with an older TensorFlow (2.8 or earlier is reported to work with compiler 16) "
            "or avoid the feature that needs the newer op version",
        )
    ins = [t for i in op.inputs if (t := ctx.t(i)) is not None]
    outs = [t for i in op.outputs if (t := ctx.t(i)) is not None]
    acts_in = [t for t in ins if not t.is_constant]
    if op.builtin == "QUANTIZE" and acts_in and acts_in[0].dtype not in _EIGHT_BIT:
        return (
            UNSPECIFIED_LIMITATION,
            [f"quantizes the model's {acts_in[0].dtype} input {_fmt(acts_in[0])} on the CPU"],
            "float input: convert with inference_input_type uint8 or int8 so the model takes 8-bit input",
        )
    if op.builtin == "DEQUANTIZE":
        return (
            UNSUPPORTED_DATA_TYPE,
            [f"produces {outs[0].dtype if outs else 'float'} output; the Edge TPU computes in 8 bits only"],
            ops_table.UNSUPPORTED_OP_FIXES["DEQUANTIZE"],
        )
    wide = _lstm_int16_inputs(op)
    bad = [t for t in acts_in + outs if t.dtype not in _EIGHT_BIT and not (t.index in wide and t.dtype == "int16")]
    bad += [t for t in ins if t.is_constant and t.dtype not in _CONST_OK and not (t.index in wide and t.dtype == "int16")]
    if bad:
        # An op the Edge TPU never runs needs its own fix, whatever its data types.
        fix = ops_table.UNSUPPORTED_OP_FIXES.get(op.name, _QUANTIZE_FIX)
        reasons = list(dict.fromkeys(f"tensor {_fmt(t)} is not 8-bit" for t in bad))[:3]
        return (UNSUPPORTED_DATA_TYPE, reasons, fix)
    unquantized = [t for t in acts_in + outs if not t.scales]
    if unquantized:
        return (UNSUPPORTED_DATA_TYPE, [f"tensor {_fmt(unquantized[0])} has no quantization parameters"], _QUANTIZE_FIX)
    spec = ops_table.SUPPORTED_OPS.get(op.builtin)
    if op.is_custom or spec is None:
        what = f"custom op {op.name}" if op.is_custom else op.name
        fix = ops_table.UNSUPPORTED_OP_FIXES.get(
            op.name, f"replace {op.name} by ops the Edge TPU supports (g.co/coral/model-reqs) or move it after all others"
        )
        return (NOT_SUPPORTED, [f"the Edge TPU has no {what}"], fix)
    if spec.min_runtime > runtime:
        return (
            NOT_SUPPORTED,
            [f"{op.name} needs Edge TPU runtime {spec.min_runtime}, the target is {runtime}"],
            f"compile with -m {spec.min_runtime} (devices then need libedgetpu of runtime {spec.min_runtime} or newer)",
        )
    for t in acts_in + outs:
        if t.shape_signature and any(d < 0 for d in t.shape_signature[1:]):
            return (UNSPECIFIED_LIMITATION, [f"tensor {_fmt(t)} has a dynamic shape"], "convert with fixed input sizes")
        if (len(t.shape) >= 4 and t.shape[0] != 1) or sum(d > 1 for d in t.shape) > 3:
            return (
                TENSOR_RANK,
                [f"tensor {_fmt(t)} has batch > 1 or more than three dimensions above 1"],
                "convert with batch size 1 and at most 3-D feature maps (H, W, C)",
            )
    check = _OP_CHECKS.get(op.builtin)
    problems = check(ctx, op) if check else []
    if problems:
        fix = ops_table.CONSTRAINT_FIXES.get(op.builtin, f"meet the Edge TPU constraint for {op.name}: {spec.constraints}")
        return (UNSPECIFIED_LIMITATION, problems, fix)
    return None


# --- the whole model --------------------------------------------------------------------------------------
def predict(
    info: ModelFileInfo,
    data: bytes,
    *,
    multiple_subgraphs: bool = False,
    min_runtime_version: int = ops_table.DEFAULT_RUNTIME_VERSION,
) -> EdgeTpuReport:
    """Predict the Edge TPU / CPU split of a parsed model (see the module docstring for the rules).

    Args:
        info: the model, from :func:`edge_classifier.tflite_file.parse_model`.
        data: the same model's bytes (constant tensors are read from them).
        multiple_subgraphs: assume the compiler runs with ``-a``.
        min_runtime_version: the compiler's ``-m``.
    """
    sg = info.main
    ctx = _Ctx(data, sg)
    warnings: list[str] = []
    fatal: list[str] = []
    if info.is_edgetpu_compiled:
        fatal.append(f"the model is already compiled (it holds an {EDGETPU_CUSTOM_OP}); analyze the model before compiling")
    if len(info.subgraphs) > 1:
        warnings.append(f"the model has {len(info.subgraphs)} subgraphs (control flow); only the main one is analyzed")
    acts = [t for t in sg.tensors if not t.is_constant]
    if acts and not any(t.dtype in _EIGHT_BIT for t in acts):
        fatal.append(f"Model not quantized: no 8-bit tensor at all. Fix: {_QUANTIZE_FIX}")
    if any(t.shape_signature[:1] == (-1,) for t in acts if t.shape_signature):
        warnings.append("the batch dimension is dynamic (-1 in the shape signature); compiling uses batch 1")

    # Tensor state: "tpu" when produced on the Edge TPU, "post" when produced on the CPU from Edge TPU
    # results. Anything else (inputs, constants, CPU ops ahead of the Edge TPU part) is free to consume.
    state: dict[int, str] = {}
    blocker: dict[int, OpInfo] = {}
    predictions: list[OpPrediction] = []
    for op in sg.ops:
        found = _intrinsic(ctx, op, min_runtime_version)
        if found is not None and found[0] == VERSION_NOT_SUPPORTED:
            fatal.append(f"op #{op.index} {found[1][0]}: the compiler stops with 'Model could not be parsed'. Fix: {found[2]}")
        post_inputs = [i for i in op.inputs if state.get(i) == "post"]
        upstream = [blocker[i] for i in post_inputs if i in blocker]
        if found is None and (multiple_subgraphs or not post_inputs):
            status, reasons, fix = MAPPED, [], ""
        elif found is None:
            first = min(upstream, key=lambda o: o.index) if upstream else None
            status = MORE_THAN_ONE_SUBGRAPH
            where = f"#{first.index} {first.name}" if first else "an op"
            reasons = [f"depends on {where}, which stays on the CPU; without -a the Edge TPU part must be one subgraph"]
            fix = f"make {where} Edge TPU-compatible, or compile with -a (multiple subgraphs; costs a CPU round trip)"
        else:
            status, reasons, fix = found
        if status == MAPPED:
            for o in op.outputs:
                state[o] = "tpu"
        elif post_inputs or any(state.get(i) == "tpu" for i in op.inputs):
            cause = min(upstream, key=lambda o: o.index) if upstream else op
            for o in op.outputs:
                state[o] = "post"
                blocker[o] = cause
        acts_of = ctx.activations(op)
        predictions.append(
            OpPrediction(
                index=op.index,
                name=op.name,
                builtin=op.builtin,
                version=op.version,
                status=status,
                reasons=tuple(reasons),
                fix=fix,
                output_shape=_out_shape(ctx, op),
                dtypes=tuple(dict.fromkeys(t.dtype for t in acts_of)),
            )
        )
    for p in predictions:
        if p.on_edgetpu and p.builtin in ("RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR"):
            warnings.append(f"#{p.index} {p.name}: the compiler may still keep large resizes on the CPU to avoid precision loss")
        if p.on_edgetpu and p.builtin == "RESHAPE" and math.prod(p.output_shape) > 1 << 20:
            warnings.append(f"#{p.index} RESHAPE of {math.prod(p.output_shape)} elements: large reshapes may not be mapped")
    warnings.append("on-chip memory use (parameters beyond ~8 MB stream from host memory) and compile-time failures")
    if fatal:
        predictions = [
            p
            if p.status == VERSION_NOT_SUPPORTED
            else OpPrediction(
                p.index,
                p.name,
                p.builtin,
                p.version,
                "Model could not be compiled",
                ("the whole model is rejected",),
                "",
                p.output_shape,
                p.dtypes,
            )
            for p in predictions
        ]
    return EdgeTpuReport(
        path=info.path,
        ops=tuple(predictions),
        multiple_subgraphs=multiple_subgraphs,
        min_runtime_version=min_runtime_version,
        fatal=tuple(dict.fromkeys(fatal)),
        warnings=tuple(dict.fromkeys(warnings)),
    )


def analyze_model(
    path: str | Path,
    *,
    multiple_subgraphs: bool = False,
    min_runtime_version: int = ops_table.DEFAULT_RUNTIME_VERSION,
) -> EdgeTpuReport:
    """Predict which ops of a .tflite model edgetpu_compiler 16 maps to the Edge TPU, without the compiler.

    Args:
        path: an INT8 .tflite model (not yet compiled).
        multiple_subgraphs: predict for ``edgetpu_compiler -a``.
        min_runtime_version: predict for ``edgetpu_compiler -m N``.

    Raises:
        ModelError: the file is missing or not a TFLite model.
    """
    data = read_model_bytes(path)
    info = parse_model(data, str(path))
    return predict(info, data, multiple_subgraphs=multiple_subgraphs, min_runtime_version=min_runtime_version)


def compiled_cpu_ops(path: str | Path) -> tuple[str, ...]:
    """The ops a compiled ``*_edgetpu.tflite`` runs on the CPU: every op outside its edgetpu-custom-op(s).

    Raises:
        ModelError: the file is missing, not a TFLite model, or holds no edgetpu-custom-op.
    """
    from edge_classifier.errors import ModelError

    info = parse_model(read_model_bytes(path), str(path))
    if not info.is_edgetpu_compiled:
        raise ModelError(
            str(path),
            f"holds no {EDGETPU_CUSTOM_OP}: it is not an Edge TPU-compiled model",
            "pass the *_edgetpu.tflite file written by edgetpu_compiler",
        )
    return tuple(op.name for op in info.main.ops if op.name != EDGETPU_CUSTOM_OP)


def compare_cpu_ops(predicted: Sequence[str], actual: Sequence[str]) -> dict[str, Any]:
    """Compare predicted and real CPU ops as multisets; ``match`` is True when they agree exactly."""
    p, a = Counter(predicted), Counter(actual)
    return {
        "match": p == a,
        "predicted": list(predicted),
        "actual": list(actual),
        "predicted_only": sorted((p - a).elements()),
        "actual_only": sorted((a - p).elements()),
    }


def require_full_mapping(path: str | Path, **options: Any) -> EdgeTpuReport:
    """Analyze ``path`` and raise unless every op is predicted on the Edge TPU (one line for a converter check).

    Raises:
        ConversionError: some op would stay on the CPU, or the compiler would reject the model; the message
            lists each CPU op with its reason and fix.
    """
    report = analyze_model(path, **options)
    if not report.fully_mapped:
        details = report.fatal or tuple(
            f"#{op.index} {op.name}: {'; '.join(op.reasons)} (fix: {op.fix})" for op in report.ops if not op.on_edgetpu
        )
        raise ConversionError(
            str(path),
            f"would not map fully to the Edge TPU ({report.edgetpu_op_count}/{len(report.ops)} ops): " + " | ".join(details[:5]),
            "see `edge-convert analyze` for the full table",
        )
    return report
