"""Regions of interest: named boxes of the frame, each classified on its own.

A camera watches a scene, not one centred object: a feeder in one corner, a door, a parking spot. A
:class:`Region` names a box (fractions of the frame, or pixels), the states it reports and how sure the model
must be. The loop crops each box from the full-resolution frame and frames the crop for the model with
:func:`~edge_classifier.preprocess.fit_to_spec`, the one framing function, so a region sees exactly what a photo of
the same spot would.

Framing: a region is usually drawn around exactly the thing to classify, so by default it is *stretched* to the
model's input (nothing of the box is lost). Measured on the Coral photos cut to boxes of five shapes (1:1 ... 2:1,
``benchmarks/bench_regions.py``), stretch gave the best top-1 and expected-class score of the four framings for both
reference models; ``center_crop`` (all of the largest centred square), ``letterbox`` and ``model`` (the model's own
framing, e.g. centre crop 0.875) are available per region.

Pure declarations and geometry; the loop runs the regions (see :mod:`edge_classifier.loop`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from .errors import ConfigError, shown
from .preprocess import fit_to_spec
from .spec import ModelSpec
from .states import UNKNOWN

__all__ = [
    "regions_from",
    "DEFAULT_FRAMING",
    "DEFAULT_THRESHOLD",
    "FRAMINGS",
    "Box",
    "Region",
    "frame_region",
    "parse_box",
    "pixel_box",
    "region_spec",
]

#: How a region's crop is fitted to the model: ``model`` is the model's own framing (its spec).
FRAMINGS: tuple[str, ...] = ("stretch", "center_crop", "letterbox", "model")
DEFAULT_FRAMING = "stretch"
#: The score a region's state needs; below it the region is ``unknown``.
DEFAULT_THRESHOLD = 0.5

# Region names become MQTT topic levels, file names and JSON values: keep them plain.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

#: x, y, width, height: all fractions of the frame (each at most 1), or pixels (any value above 1).
Box = tuple[float, float, float, float]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(where, f"{shown(value)} is not a number", "write the box as x, y, w, h: four numbers")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ConfigError(
            where, f"{shown(value)} is not a finite number >= 0", "write the box as x, y, w, h with x, y >= 0 and w, h > 0"
        )
    return v


def parse_box(value: str | Sequence[Any], where: str = "box") -> Box:
    """A box from ``"x,y,w,h"`` or four numbers: fractions of the frame when every value is at most 1, else pixels.

    Raises:
        ConfigError: not four numbers, a negative or non-finite value, zero width or height, a fraction box that
            leaves the frame (x + w or y + h above 1), or a pixel box with a fractional value.
    """
    fix = "write it as x,y,w,h: fractions of the frame (0.55,0.20,0.30,0.40) or pixels (100,50,300,400)"
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        try:
            numbers: list[Any] = [float(p) for p in parts]
        except ValueError:
            raise ConfigError(where, f"{shown(value)} is not four numbers", fix) from None
    elif isinstance(value, Sequence):
        numbers = list(value)
    else:
        raise ConfigError(where, f"{shown(value)} is not a box", fix)
    if len(numbers) != 4:
        raise ConfigError(where, f"{shown(value)} has {len(numbers)} values, not 4", fix)
    x, y, w, h = (_number(v, where) for v in numbers)
    if w == 0 or h == 0:
        raise ConfigError(
            where, f"{shown(value)} has zero {'width' if w == 0 else 'height'}", "give the box a size: w and h above 0"
        )
    if max(x, y, w, h) > 1:
        if any(v != int(v) for v in (x, y, w, h)):
            raise ConfigError(
                where,
                f"{shown(value)} mixes pixels (a value above 1) with fractions",
                "use whole pixels for every value, or fractions (all at most 1) for every value",
            )
    elif x + w > 1 + 1e-9 or y + h > 1 + 1e-9:
        raise ConfigError(
            where,
            f"{shown(value)} leaves the frame (x + w = {x + w:g}, y + h = {y + h:g}; as fractions they must be at most 1)",
            "shrink the box, or give pixels (values above 1 are read as pixels)",
        )
    return (x, y, w, h)


def _states(value: Any, where: str) -> dict[str, tuple[str, ...]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(
            f"{where}: states",
            f"{shown(value)} is not a table of state names",
            'write states = { open = ["sliding door"], shut = ["stone wall"] }',
        )
    out: dict[str, tuple[str, ...]] = {}
    for name, entries in value.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: states", f"{shown(name)} is not a state name", "name each state with a word")
        if name.strip().lower() == UNKNOWN:
            raise ConfigError(
                f"{where}: states.{name}",
                f"{shown(UNKNOWN)} is reserved for 'below every threshold'",
                "call the state something else",
            )
        items = (entries,) if isinstance(entries, str) else entries
        if not isinstance(items, Sequence) or not items or not all(isinstance(e, str) and e.strip() for e in items):
            raise ConfigError(
                f"{where}: states.{name}",
                f"{shown(entries)} is not a list of labels",
                'list labels or built-in groups: ["bird"], ["sliding door"]',
            )
        out[name.strip()] = tuple(e.strip() for e in items)
    return out


def _fraction(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(where, f"{shown(value)} is not a score in [0, 1]", "use e.g. 0.5 (the default) or 0.6")
    return float(value)


@dataclass(frozen=True)
class Region:
    """A named box of the frame, classified on its own, with its own states, smoothing and events.

    Attributes:
        name: a short name (letters, digits, ``_``, ``-``): the JSONL ``region`` field, the MQTT topic level
            ``<base>/<name>/...``, part of clip file names.
        box: x, y, width, height: fractions of the frame when every value is at most 1, else whole pixels;
            a string ``"x,y,w,h"`` is parsed.
        states: state name -> labels or built-in groups (``{"bird": ["bird"], "empty": ["daisy"]}``); None makes
            each label its own state.
        threshold: the score a state needs; below it the region is ``unknown`` (default 0.5).
        thresholds: per-state thresholds overriding ``threshold``.
        model: a ``.tflite`` path (opened by the loop) or an open classifier for this region; None uses the
            loop's classifier.
        framing: ``stretch`` (default), ``center_crop`` (the largest centred region of the model's aspect),
            ``letterbox`` or ``model`` (the model's own framing).
        smoothing: EMA weight for this region; None takes the loop's.
        hysteresis: frames a new state must lead before its event; None takes the loop's.

    Raises:
        ConfigError: a bad name, box, states table, threshold or framing (when the region is made).
    """

    name: str
    box: Box | Sequence[float] | str
    states: Mapping[str, Sequence[str]] | None = None
    threshold: float = DEFAULT_THRESHOLD
    thresholds: Mapping[str, float] | None = None
    model: Any = field(default=None, compare=False)
    framing: str = DEFAULT_FRAMING
    smoothing: float | None = None
    hysteresis: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise ConfigError(
                f"region name {shown(self.name)}",
                "is not a plain name (letters, digits, _ and -, starting with a letter or digit, up to 64)",
                "use e.g. feeder, front_door, spot-2",
            )
        where = f"region {shown(self.name)}"
        object.__setattr__(self, "box", parse_box(self.box, f"{where}: box"))
        object.__setattr__(self, "states", _states(self.states, where))
        object.__setattr__(self, "threshold", _fraction(self.threshold, f"{where}: threshold"))
        if self.thresholds is not None:
            if not isinstance(self.thresholds, Mapping):
                raise ConfigError(
                    f"{where}: thresholds", f"{shown(self.thresholds)} is not a table", "write thresholds = { open = 0.7 }"
                )
            per = {str(k): _fraction(v, f"{where}: thresholds.{k}") for k, v in self.thresholds.items()}
            if self.states is None or set(per) - set(self.states):
                bad = sorted(set(per) - set(self.states or {}))
                raise ConfigError(
                    f"{where}: thresholds.{bad[0]}",
                    "names no state of this region",
                    f"use one of {', '.join(self.states)}" if self.states else "name states first, or use threshold alone",
                )
            object.__setattr__(self, "thresholds", per)
        if self.framing not in FRAMINGS:
            raise ConfigError(f"{where}: framing", f"{shown(self.framing)} is not a framing", f"use one of {', '.join(FRAMINGS)}")
        if self.hysteresis is not None and (isinstance(self.hysteresis, bool) or not isinstance(self.hysteresis, int)):
            raise ConfigError(f"{where}: hysteresis", f"{shown(self.hysteresis)} is not a whole number of frames", "use e.g. 3")
        if self.smoothing is not None and (isinstance(self.smoothing, bool) or not isinstance(self.smoothing, (int, float))):
            raise ConfigError(f"{where}: smoothing", f"{shown(self.smoothing)} is not a number", "use 0 (off) up to 0.9 (heavy)")

    @classmethod
    def parse(cls, text: str, **fields: Any) -> Region:
        """A region from the command-line form ``name=x,y,w,h`` (``feeder=0.55,0.20,0.30,0.40``).

        Raises:
            ConfigError: no ``=``, or a bad name or box.
        """
        name, sep, box = text.partition("=")
        if not sep:
            raise ConfigError(
                f"--region {shown(text)}", "has no '='", "write it as NAME=x,y,w,h, e.g. feeder=0.55,0.20,0.30,0.40"
            )
        return cls(name.strip(), box, **fields)

    @property
    def xywh(self) -> Box:
        """The box as parsed: x, y, width, height (fractions, or pixels when :attr:`in_pixels`)."""
        return cast(Box, self.box)

    @property
    def in_pixels(self) -> bool:
        """True when the box is in pixels (a value above 1), False for fractions of the frame."""
        return max(self.xywh) > 1


def regions_from(values: Sequence[str | Mapping[str, Any]], where: str = "--region") -> tuple[Region, ...]:
    """Regions from the command line's ``NAME=x,y,w,h`` texts and a config file's ``[[region]]`` tables.

    A table's keys are :class:`Region`'s fields; ``model`` is a path.

    Raises:
        ConfigError: a table without a name or box, a model that is not a path, or any of :class:`Region`'s
            errors; each names ``where`` and the region.
    """
    out: list[Region] = []
    for i, value in enumerate(values, 1):
        try:
            if isinstance(value, str):
                out.append(Region.parse(value))
                continue
            table = dict(value)
            for key in ("name", "box"):
                if key not in table:
                    raise ConfigError(
                        f"region {i}",
                        f"has no {key}",
                        'give each [[region]] a name and a box: name = "door", box = [0.1, 0.05, 0.3, 0.6]',
                    )
            if "model" in table and not isinstance(table["model"], str):
                raise ConfigError(
                    f"region {table['name']!r}: model", f"{table['model']!r} is not a path", 'write model = "door.tflite"'
                )
            out.append(Region(**table))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.thing}", exc.cause, exc.fix) from None
    return tuple(out)


def pixel_box(region: Region, width: int, height: int) -> tuple[int, int, int, int]:
    """The region's box in pixels of a ``width`` x ``height`` frame: (x, y, w, h).

    Raises:
        ConfigError: the box reaches outside the frame, or is less than a pixel wide or high at this size.
    """
    x, y, w, h = region.xywh
    if region.in_pixels:
        px, py, pw, ph = int(x), int(y), int(w), int(h)
    else:
        # Edges are rounded, not sizes, so two boxes that touch as fractions still touch in pixels.
        px, py = round(x * width), round(y * height)
        pw, ph = round((x + w) * width) - px, round((y + h) * height) - py
    where = f"region {shown(region.name)}: box {','.join(f'{v:g}' for v in region.xywh)}"
    if pw < 1 or ph < 1:
        raise ConfigError(
            where, f"is less than one pixel {'wide' if pw < 1 else 'high'} in a {width}x{height} frame", "make the box larger"
        )
    if px + pw > width or py + ph > height:
        raise ConfigError(
            where,
            f"reaches outside the {width}x{height} frame (to x={px + pw}, y={py + ph})",
            "fit the box inside the frame, or give fractions of the frame (values at most 1)",
        )
    return px, py, pw, ph


def region_spec(spec: ModelSpec, framing: str) -> ModelSpec:
    """The model's spec with a region's framing: the one input :func:`frame_region` fits a crop with."""
    if framing == "model":
        return spec
    if framing == "center_crop":
        return dataclasses.replace(spec, resize="center_crop", crop_fraction=1.0)
    return dataclasses.replace(spec, resize=framing)  # type: ignore[arg-type]  # checked against FRAMINGS


def frame_region(rgb: np.ndarray, box: tuple[int, int, int, int], spec: ModelSpec) -> np.ndarray:
    """The box cut from the full-resolution frame and fitted to the model's input by ``spec`` (see :func:`region_spec`)."""
    x, y, w, h = box
    return fit_to_spec(rgb[y : y + h, x : x + w], spec, "fast")
