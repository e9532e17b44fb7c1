"""ModelSpec: the contract between a model file and the code that feeds it and reads it.

A spec comes from three places, later ones winning: what the input and output tensors say
(size, dtype, quantization), what the converter embedded in the file (``edge_classifier_spec.json``
and a labels file, packed the way TFLite metadata packs labels), and what the user overrides.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from .errors import LabelsError, SpecError

ResizeMode = Literal["stretch", "center_crop", "letterbox"]
ColorOrder = Literal["RGB", "BGR"]
OutputKind = Literal["probabilities", "logits"]

RESIZE_MODES: tuple[str, ...] = ("stretch", "center_crop", "letterbox")
# The TF/Keras and Coral evaluation convention: the central 87.5% of the shorter side (224 of 256), where ImageNet
# photos keep their subject and lose the borders the models were not scored on.
DEFAULT_RESIZE: ResizeMode = "center_crop"
DEFAULT_CROP_FRACTION = 0.875
COLOR_ORDERS: tuple[str, ...] = ("RGB", "BGR")
OUTPUT_KINDS: tuple[str, ...] = ("probabilities", "logits")
SPEC_FILE = "edge_classifier_spec.json"
LABELS_FILE = "labels.txt"
SPEC_SCHEMA_VERSION = 1
_BACKGROUND_NAMES = frozenset({"background", "unused_background", "???", "__background__"})
# ImageNet classifiers trained by TF-slim and its descendants: 1000 classes after a "background" output 0.
IMAGENET_WITH_BACKGROUND = 1001


@dataclass(frozen=True)
class ModelSpec:
    """Everything the runtime needs to feed a classifier and read its answer.

    Attributes:
        input_size: (height, width) of the model's input.
        input_dtype: ``uint8``, ``int8`` or ``float32``.
        input_scale: input quantization scale (0.0 for a float input).
        input_zero_point: input quantization zero point.
        mean: per-channel value subtracted from a 0..255 pixel before dividing by ``std``.
        std: per-channel divisor; the model sees ``(pixel - mean) / std``.
        color_order: channel order the model expects (``RGB`` or ``BGR``).
        resize: how a frame of another shape is fitted: ``center_crop`` (default), ``stretch`` or ``letterbox``.
        crop_fraction: with ``center_crop``, the share of the largest centred region of the model's aspect ratio that
            is kept (0.875: the central 87.5% of a photo's shorter side, as ImageNet models are evaluated; 1.0: all
            of it). Ignored by the other modes.
        labels: one label per class id (background already removed).
        label_offset: how many leading outputs are not classes (1 for 1001-output ImageNet models).
        num_outputs: length of the output vector.
        output_kind: ``probabilities`` (softmax inside the model) or ``logits``.
        name: a short model name for reports.
        origin: where each field came from (``tensor``, ``embedded``, ``inferred``, ``user``).
    """

    input_size: tuple[int, int]
    input_dtype: str
    input_scale: float
    input_zero_point: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    num_outputs: int
    color_order: ColorOrder = "RGB"
    resize: ResizeMode = DEFAULT_RESIZE
    crop_fraction: float = DEFAULT_CROP_FRACTION
    labels: tuple[str, ...] = ()
    label_offset: int = 0
    output_kind: OutputKind = "probabilities"
    name: str = "model"
    origin: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def num_classes(self) -> int:
        """Number of real classes (outputs minus the leading non-class ones)."""
        return self.num_outputs - self.label_offset

    def label(self, class_id: int) -> str:
        """The label of a class id, or ``class <id>`` when the model has no labels."""
        if 0 <= class_id < len(self.labels):
            return self.labels[class_id]
        return f"class {class_id}"

    @cached_property  # asked on every frame; the answer is fixed per spec
    def pixels_pass_through(self) -> bool:
        """True when the input quantization equals the normalisation, so raw pixels are the input.

        That holds when ``(p - mean) / std`` quantized with the input's scale and zero point
        gives back ``p`` (uint8) or ``p - 128`` (int8) to within half a step for every channel.
        """
        if self.input_dtype not in ("uint8", "int8") or self.input_scale <= 0:
            return False
        shift = 0 if self.input_dtype == "uint8" else -128
        for m, s in zip(self.mean, self.std, strict=True):
            gain = 1.0 / (s * self.input_scale)
            offset = self.input_zero_point - m * gain
            # q = gain * p + offset must equal p + shift within 0.5 at both ends of the pixel range.
            if abs(offset - shift) > 0.5 or abs(gain * 255 + offset - (255 + shift)) > 0.5 + 1e-6:
                return False
        return True

    @property
    def framing(self) -> str:
        """The framing in one word: ``center_crop(0.875)``, ``stretch`` or ``letterbox``."""
        return f"center_crop({self.crop_fraction:g})" if self.resize == "center_crop" else self.resize

    def to_embedded_json(self) -> dict[str, Any]:
        """The fields a converter embeds in a model (tensor facts are read from the tensor)."""
        return {
            "schema_version": SPEC_SCHEMA_VERSION,
            "name": self.name,
            "mean": list(self.mean),
            "std": list(self.std),
            "color_order": self.color_order,
            "resize": self.resize,
            "crop_fraction": self.crop_fraction,
            "label_offset": self.label_offset,
            "output_kind": self.output_kind,
        }

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of every field, labels summarised."""
        d = asdict(self)
        d["labels"] = f"{len(self.labels)} labels" if self.labels else "none"
        d["origin"] = dict(self.origin)
        return d

    def describe(self) -> str:
        """One human line: size, dtype, normalisation, labels, fast path."""
        h, w = self.input_size
        fast = "raw pixels in (no float maths)" if self.pixels_pass_through else "normalised in float"
        return (
            f"{self.name}: {w}x{h} {self.color_order} {self.input_dtype}, resize={self.framing}, "
            f"mean={_short(self.mean)} std={_short(self.std)}, {fast}, {self.num_classes} classes "
            f"(offset {self.label_offset}), {len(self.labels)} labels, output={self.output_kind}"
        )


def check_crop_fraction(value: Any) -> float:
    """``value`` as a crop fraction in (0, 1].

    Raises:
        SpecError: not a number, not finite, or outside (0, 1].
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError("crop_fraction", f"is {value!r}, not a number", "give a fraction in (0, 1], e.g. 0.875")
    f = float(value)
    if not 0.0 < f <= 1.0:  # also refuses NaN, which fails every comparison
        raise SpecError(
            "crop_fraction",
            f"is {f:g}, outside (0, 1]",
            "give a fraction in (0, 1]: 0.875 as ImageNet models are evaluated, 1.0 for the whole centre",
        )
    return f


def _short(v: Sequence[float]) -> str:
    if len(set(v)) == 1:
        return f"{v[0]:g}"
    return "(" + ",".join(f"{x:g}" for x in v) + ")"


def _triple(value: float | Sequence[float], name: str) -> tuple[float, float, float]:
    if isinstance(value, (int, float)):
        return (float(value), float(value), float(value))
    vals = tuple(float(x) for x in value)
    if len(vals) == 1:
        return (vals[0], vals[0], vals[0])
    if len(vals) != 3:
        raise SpecError(name, f"needs 1 or 3 values, got {len(vals)}", f"give one number or three (R,G,B), e.g. {name}=127.5")
    return (vals[0], vals[1], vals[2])


def parse_labels(text: str, source: str) -> tuple[str, ...]:
    """Labels from a text file: one per line, or ``<id> <label>`` / ``<id>: <label>`` lines."""
    lines = [ln.strip() for ln in text.removeprefix("\ufeff").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise LabelsError(source, "the labels file is empty", "give a file with one label per line")
    pairs: list[tuple[int, str]] = []
    for ln in lines:
        head, _, rest = ln.replace(":", " ", 1).partition(" ")
        if head.isdigit() and rest.strip():
            pairs.append((int(head), rest.strip()))
        else:
            break
    if len(pairs) == len(lines):
        # Coral style "<id> <label>": place by id so gaps keep the ids right.
        size = max(i for i, _ in pairs) + 1
        out = [f"class {i}" for i in range(size)]
        for i, label in pairs:
            out[i] = label
        return tuple(out)
    return tuple(lines)


def load_labels(path: str | Path) -> tuple[str, ...]:
    """Read a labels file.

    Raises:
        LabelsError: the file is missing, unreadable, or empty.
    """
    p = Path(path)
    if p.is_dir():
        raise LabelsError(str(p), "is a folder, not a labels file", "give a text file with one label per line")
    try:
        # utf-8-sig: Windows editors start files with a byte-order mark, which would glue itself to the first label
        # ("\ufeffbackground" is not "background", and every id would shift by one).
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise LabelsError(str(p), "no such labels file", "check the --labels path") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsError(str(p), f"cannot be read as UTF-8 text ({exc})", "give a plain text file, one label per line") from exc
    return parse_labels(text, str(p))


def fit_labels(labels: Sequence[str], num_outputs: int, source: str, offset: int | None = None) -> tuple[tuple[str, ...], int]:
    """Align labels with the output vector and return ``(class labels, label_offset)``.

    A 1001-output ImageNet model has "background" at index 0; its labels file may or may not
    list it. The returned labels never include it, so class ids are the same for 1000- and
    1001-output models. Any other model's "background" (a custom model's "nothing here" class)
    is a class like the others: dropping it would shift every id by one and hide that answer.

    Raises:
        LabelsError: the number of labels fits neither the outputs nor outputs minus one.
    """
    labels = tuple(labels)
    if offset is None:
        if len(labels) == num_outputs:
            imagenet_background = num_outputs == IMAGENET_WITH_BACKGROUND and labels[0].strip().lower() in _BACKGROUND_NAMES
            offset = 1 if imagenet_background else 0
        elif len(labels) == num_outputs - 1:
            offset = 1
        else:
            raise LabelsError(
                source,
                f"has {len(labels)} labels but the model has {num_outputs} outputs",
                f"use the labels file made for this model ({num_outputs} lines, or {num_outputs - 1} without 'background')",
            )
    if len(labels) == num_outputs:
        return labels[offset:], offset
    if len(labels) == num_outputs - offset:
        return labels, offset
    raise LabelsError(
        source,
        f"has {len(labels)} labels but the model has {num_outputs} outputs with label offset {offset}",
        f"give {num_outputs - offset} labels, or change the label offset",
    )


def _embedded_labels(files: Mapping[str, bytes]) -> tuple[str, str] | None:
    if LABELS_FILE in files:
        return LABELS_FILE, files[LABELS_FILE].decode("utf-8-sig", "replace")
    for name in sorted(files):
        if name.lower().endswith(".txt") and "label" in name.lower():
            return name, files[name].decode("utf-8-sig", "replace")
    return None


@dataclass(frozen=True)
class SpecOverrides:
    """User overrides of a ModelSpec; ``None`` keeps the model's own value."""

    mean: float | Sequence[float] | None = None
    std: float | Sequence[float] | None = None
    color_order: ColorOrder | None = None
    resize: ResizeMode | None = None
    crop_fraction: float | None = None
    labels: str | Path | Sequence[str] | None = None
    label_offset: int | None = None
    output_kind: OutputKind | None = None
    name: str | None = None


def build_spec(
    *,
    input_shape: Sequence[int],
    input_dtype: str,
    input_quant: tuple[float, int],
    output_shape: Sequence[int],
    associated_files: Mapping[str, bytes],
    model_name: str,
    overrides: SpecOverrides | None = None,
    output_is_softmax: bool | None = None,
) -> ModelSpec:
    """Combine tensor facts, embedded files and user overrides into a ModelSpec.

    Raises:
        ModelError: the model is not an image classifier (input not NxHxWx3, output not 1xN).
        SpecError: an override or the embedded spec is invalid.
        LabelsError: labels do not match the outputs.
    """
    from .errors import ModelError

    o = overrides or SpecOverrides()
    origin: dict[str, str] = {}
    if len(input_shape) != 4 or input_shape[0] != 1 or input_shape[3] not in (3,):
        raise ModelError(
            model_name,
            f"is not an image classifier: its input is {list(input_shape)}, expected [1, height, width, 3]",
            "use an ImageNet-style classifier with one RGB image input",
        )
    out_elems = 1
    for d in output_shape[1:]:
        out_elems *= int(d)
    if len(output_shape) < 2 or output_shape[0] != 1 or any(int(d) != 1 for d in output_shape[1:-1]) or out_elems < 2:
        raise ModelError(
            model_name,
            f"is not an image classifier: its output is {list(output_shape)}, expected [1, num_classes]",
            "use a classification model (detection and segmentation models are not supported)",
        )
    num_outputs = int(output_shape[-1])
    if input_dtype not in ("uint8", "int8", "float32"):
        raise ModelError(model_name, f"has an unsupported input type {input_dtype}", "use a uint8, int8 or float32 input model")
    scale, zp = float(input_quant[0]), int(input_quant[1])
    origin.update(input_size="tensor", input_dtype="tensor")

    embedded: dict[str, Any] = {}
    if SPEC_FILE in associated_files:
        try:
            embedded = json.loads(associated_files[SPEC_FILE].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SpecError(
                model_name, f"its embedded {SPEC_FILE} is not valid JSON ({exc})", "re-convert the model with edge-convert"
            ) from exc

    def pick(key: str, user: Any, inferred: Any) -> Any:
        if user is not None:
            origin[key] = "user"
            return user
        if key in embedded:
            origin[key] = "embedded"
            return embedded[key]
        origin[key] = "inferred"
        return inferred

    if input_dtype in ("uint8", "int8") and scale > 0:
        # A quantized input that takes raw pixels: the quantization *is* the normalisation.
        shift = 0 if input_dtype == "uint8" else 128
        inferred_mean, inferred_std = float(zp + shift), 1.0 / scale
    else:
        inferred_mean, inferred_std = 127.5, 127.5
    mean = _triple(pick("mean", o.mean, inferred_mean), "mean")
    std = _triple(pick("std", o.std, inferred_std), "std")
    if any(s == 0 for s in std):
        raise SpecError("std", "must not be zero", "give a positive std, e.g. 127.5")
    color = str(pick("color_order", o.color_order, "RGB")).upper()
    if color not in COLOR_ORDERS:
        raise SpecError("color_order", f"is {color!r}", f"use one of {', '.join(COLOR_ORDERS)}")
    resize = str(pick("resize", o.resize, DEFAULT_RESIZE))
    if resize not in RESIZE_MODES:
        raise SpecError("resize", f"is {resize!r}", f"use one of {', '.join(RESIZE_MODES)}")
    crop_fraction = check_crop_fraction(pick("crop_fraction", o.crop_fraction, DEFAULT_CROP_FRACTION))
    kind = str(pick("output_kind", o.output_kind, "probabilities" if output_is_softmax is not False else "logits"))
    if kind not in OUTPUT_KINDS:
        raise SpecError("output_kind", f"is {kind!r}", f"use one of {', '.join(OUTPUT_KINDS)}")
    name = str(pick("name", o.name, Path(model_name).stem))

    offset_hint: int | None = o.label_offset if o.label_offset is not None else embedded.get("label_offset")
    # The upper bound depends on the model, so it is checked here; the option table checks the type and >= 0.
    if offset_hint is not None and not (isinstance(offset_hint, int) and 0 <= offset_hint < num_outputs):
        raise SpecError(
            f"label_offset={offset_hint!r}",
            f"is not an output of this model, which has {num_outputs}",
            "give 1 when output 0 is 'background' (1001-output ImageNet models), else 0",
        )
    labels: tuple[str, ...] = ()
    if o.labels is not None:
        origin["labels"] = "user"
        if isinstance(o.labels, (str, Path)):
            raw = load_labels(o.labels)
            source = str(o.labels)
        else:
            raw = tuple(str(x) for x in o.labels)
            source = "labels"
        labels, offset = fit_labels(raw, num_outputs, source, offset_hint)
    elif (found := _embedded_labels(associated_files)) is not None:
        origin["labels"] = "embedded"
        fname, text = found
        labels, offset = fit_labels(
            parse_labels(text, f"{model_name}:{fname}"), num_outputs, f"{model_name}:{fname}", offset_hint
        )
    else:
        origin["labels"] = "none"
        # Without labels, the ImageNet convention still tells the offset: 1001 outputs = background first.
        offset = offset_hint if offset_hint is not None else (1 if num_outputs == IMAGENET_WITH_BACKGROUND else 0)
    origin["label_offset"] = "user" if o.label_offset is not None else ("embedded" if "label_offset" in embedded else "inferred")

    return ModelSpec(
        input_size=(int(input_shape[1]), int(input_shape[2])),
        input_dtype=input_dtype,
        input_scale=scale,
        input_zero_point=zp,
        mean=mean,
        std=std,
        num_outputs=num_outputs,
        color_order=color,  # type: ignore[arg-type]
        resize=resize,  # type: ignore[arg-type]
        crop_fraction=crop_fraction,
        labels=labels,
        label_offset=int(offset),
        output_kind=kind,  # type: ignore[arg-type]
        name=name,
        origin=origin,
    )
