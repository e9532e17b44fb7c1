"""What the Edge TPU compiler (version 16) accepts, as data: the op table, op versions and status strings.

Written from Coral's published list of supported operations ("TensorFlow models on the Edge TPU",
coral.ai/docs/edgetpu/models-intro) and from real compiler output. The checks that use these facts live
in :mod:`converters.edgetpu_analysis`; this module only states them, so a new compiler release means
editing a table, not logic.
"""

from __future__ import annotations

from dataclasses import dataclass

# Status strings exactly as edgetpu_compiler prints them in its operation table; the analysis predicts
# with the same words, so a prediction and a real log compare row by row.
MAPPED = "Mapped to Edge TPU"
NOT_SUPPORTED = "Operation not supported"
VERSION_NOT_SUPPORTED = "Operation version not supported"
UNSUPPORTED_DATA_TYPE = "Operation is working on an unsupported data type"
UNSPECIFIED_LIMITATION = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
MORE_THAN_ONE_SUBGRAPH = "More than one subgraph is not supported"
KNOWN_STATUSES = (
    MAPPED,
    NOT_SUPPORTED,
    VERSION_NOT_SUPPORTED,
    UNSUPPORTED_DATA_TYPE,
    UNSPECIFIED_LIMITATION,
    MORE_THAN_ONE_SUBGRAPH,
)

# Compiler 16.0's default for -m (min_runtime_version); ops newer than the target stay on the CPU.
DEFAULT_RUNTIME_VERSION = 14
# "All versions" in Coral's table.
ALL_RUNTIMES = 10


@dataclass(frozen=True)
class EdgeTpuOp:
    """One TFLite builtin op the Edge TPU can run.

    Attributes:
        name: the builtin op name (``CONV_2D``).
        min_runtime: the lowest Edge TPU runtime that maps it (10 means every version).
        constraints: Coral's constraints, in words, shown when an op breaks them.
    """

    name: str
    min_runtime: int
    constraints: str = ""


_OPS = (
    EdgeTpuOp("ADD", 10),
    EdgeTpuOp("AVERAGE_POOL_2D", 10, "No fused activation function."),
    EdgeTpuOp(
        "CONCATENATION",
        10,
        "No fused activation function. If any input is a compile-time constant tensor, there must be only 2 inputs, "
        "and this constant tensor must be all zeroes (effectively, a zero-padding op).",
    ),
    EdgeTpuOp("CONV_2D", 10, "Must use the same dilation in x and y dimensions."),
    EdgeTpuOp("DEPTHWISE_CONV_2D", 10, "Must use the same dilation in x and y dimensions."),
    EdgeTpuOp("EXPAND_DIMS", 13),
    EdgeTpuOp(
        "FULLY_CONNECTED",
        10,
        "Only the default format is supported for fully-connected weights. Output tensor is one-dimensional.",
    ),
    EdgeTpuOp("L2_NORMALIZATION", 10),
    EdgeTpuOp("LOGISTIC", 10),
    EdgeTpuOp("UNIDIRECTIONAL_SEQUENCE_LSTM", 14, "Unidirectional LSTM only."),
    EdgeTpuOp("MAXIMUM", 10),
    EdgeTpuOp("MAX_POOL_2D", 10, "No fused activation function."),
    EdgeTpuOp(
        "MEAN",
        10,
        "No reduction in batch dimension. If a z-reduction, the z-dimension must be multiple of 4.",
    ),
    EdgeTpuOp("MINIMUM", 10),
    EdgeTpuOp("MUL", 10),
    EdgeTpuOp("PACK", 13, "No packing in batch dimension."),
    EdgeTpuOp("PAD", 10, "No padding in batch dimension."),
    EdgeTpuOp(
        "PRELU",
        13,
        "Alpha must be 1-dimensional (only the innermost dimension can be >1 size); "
        "for Keras PReLU on 4D input use shared_axes=[1, 2].",
    ),
    EdgeTpuOp("QUANTIZE", 13),
    EdgeTpuOp("REDUCE_MAX", 14, "Cannot operate on the batch dimension."),
    EdgeTpuOp("REDUCE_MIN", 14, "Cannot operate on the batch dimension."),
    EdgeTpuOp("RELU", 10),
    EdgeTpuOp("RELU6", 10),
    EdgeTpuOp("RELU_N1_TO_1", 10),
    EdgeTpuOp("RESHAPE", 10, "Certain reshapes might not be mapped for large tensor sizes."),
    EdgeTpuOp(
        "RESIZE_BILINEAR",
        10,
        "Input/output is a 3-dimensional tensor. Depending on input/output size, this operation might not be "
        "mapped to the Edge TPU to avoid loss in precision.",
    ),
    EdgeTpuOp(
        "RESIZE_NEAREST_NEIGHBOR",
        10,
        "Input/output is a 3-dimensional tensor. Depending on input/output size, this operation might not be "
        "mapped to the Edge TPU to avoid loss in precision.",
    ),
    EdgeTpuOp("RSQRT", 14),
    EdgeTpuOp("SLICE", 10),
    EdgeTpuOp("SOFTMAX", 10, "Supports only 1-D input tensor with a max of 16,000 elements."),
    EdgeTpuOp("SPACE_TO_DEPTH", 10),
    EdgeTpuOp("SPLIT", 10, "No splitting in batch dimension."),
    EdgeTpuOp("SQUEEZE", 10),
    EdgeTpuOp(
        "STRIDED_SLICE",
        10,
        "Supported only when all strides are equal to 1, and with ellipsis-axis-mask == 0 and new-axis-mask == 0.",
    ),
    EdgeTpuOp("SUB", 10),
    EdgeTpuOp("SUM", 13, "Cannot operate on the batch dimension."),
    EdgeTpuOp("SQUARED_DIFFERENCE", 14),
    EdgeTpuOp("TANH", 10),
    EdgeTpuOp("TRANSPOSE", 14),
    EdgeTpuOp("TRANSPOSE_CONV", 13),
)
SUPPORTED_OPS: dict[str, EdgeTpuOp] = {op.name: op for op in _OPS}

SOFTMAX_MAX_ELEMENTS = 16_000

# The highest version of each builtin that compiler 16's own TFLite parser registers. A model holding a
# newer version does not compile at all ("Didn't find op for builtin opcode 'CONV_2D' version '6'...
# Model could not be parsed"). Known rejections reported against 16.0: CONV_2D v6, QUANTIZE v3,
# TRANSPOSE_CONV v4, EXP v2; the other ceilings are those of the TFLite release of the same period.
# Ops not listed are not version-checked.
COMPILER16_MAX_VERSION: dict[str, int] = {
    "ADD": 4,
    "AVERAGE_POOL_2D": 3,
    "CONCATENATION": 3,
    "CONV_2D": 5,
    "DEPTHWISE_CONV_2D": 6,
    "DEQUANTIZE": 4,
    "EXP": 1,
    "EXPAND_DIMS": 1,
    "FULLY_CONNECTED": 9,
    "L2_NORMALIZATION": 2,
    "LOGISTIC": 3,
    "MAXIMUM": 4,
    "MAX_POOL_2D": 3,
    "MEAN": 3,
    "MINIMUM": 4,
    "MUL": 4,
    "PACK": 3,
    "PAD": 3,
    "PRELU": 1,
    "QUANTIZE": 2,
    "REDUCE_MAX": 3,
    "REDUCE_MIN": 3,
    "RELU": 3,
    "RELU6": 3,
    "RELU_N1_TO_1": 1,
    "RESHAPE": 1,
    "RESIZE_BILINEAR": 4,
    "RESIZE_NEAREST_NEIGHBOR": 4,
    "RSQRT": 2,
    "SLICE": 4,
    "SOFTMAX": 3,
    "SPACE_TO_DEPTH": 2,
    "SPLIT": 4,
    "SQUEEZE": 1,
    "STRIDED_SLICE": 5,
    "SUB": 4,
    "SUM": 2,
    "SQUARED_DIFFERENCE": 2,
    "TANH": 3,
    "TRANSPOSE": 5,
    "TRANSPOSE_CONV": 3,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 3,
}

# What to do about an op the Edge TPU never runs. Keys are builtin names or custom codes.
UNSUPPORTED_OP_FIXES: dict[str, str] = {
    "HARD_SWISH": 'use a model without hard-swish, e.g. MobileNetV3 "minimalistic" (ReLU instead of hard-swish)',
    "LEAKY_RELU": "replace LeakyReLU with ReLU (or PReLU, runtime 13+) and retrain or fine-tune",
    "DEQUANTIZE": "convert with integer output (inference_output_type uint8/int8) so no float DEQUANTIZE remains",
    "ARG_MAX": "drop the arg-max from the model and take it on the host from the scores",
    "ARG_MIN": "drop the arg-min from the model and take it on the host from the scores",
    "GATHER": "move the gather out of the model, or express it as a STRIDED_SLICE/SLICE",
    "CAST": "keep the model in int8/uint8 end to end; do the cast on the host",
    "EXP": "replace exp-based activations (ELU, swish written by hand) with ReLU/RELU6 or LOGISTIC",
    "DIV": "replace the division by a multiplication with a constant",
    "SQRT": "use RSQRT (runtime 14) or move the square root out of the model",
    "TFLite_Detection_PostProcess": "none needed: SSD box decoding and NMS always run on the CPU, after the Edge TPU part",
    "PosenetDecoderOp": "none needed: the PoseNet decoder always runs on the CPU, after the Edge TPU part",
}

# What to change when a supported op breaks its constraint (default: quote Coral's constraint).
_RESIZE_FIX = (
    "resize by an integer factor (align_corners=False: out = k * in; align_corners=True: out - 1 = k * (in - 1)); "
    "to spread a 1x1 map (global pooling branch) use an integer-factor UpSampling2D, or leave the op for the end of the model"
)
CONSTRAINT_FIXES: dict[str, str] = {
    "RESIZE_BILINEAR": _RESIZE_FIX,
    "RESIZE_NEAREST_NEIGHBOR": _RESIZE_FIX,
    "CONV_2D": "use the same dilation rate in x and y",
    "DEPTHWISE_CONV_2D": "use the same dilation rate in x and y",
    "AVERAGE_POOL_2D": "apply the activation as a separate RELU/RELU6 op after the pooling",
    "MAX_POOL_2D": "apply the activation as a separate RELU/RELU6 op after the pooling",
    "SOFTMAX": "apply softmax on the host to the logits, or only to a 1-D vector of at most 16,000 classes",
    "MEAN": "average over height/width (global pooling) rather than channels, or use a multiple of 4 channels",
    "STRIDED_SLICE": "slice with stride 1 (take every element) and no ellipsis/new-axis masks",
}
