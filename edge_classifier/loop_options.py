"""LoopOptions: how the camera loop smooths, stops and waits, declared once.

One frozen dataclass is shared by :class:`~edge_classifier.loop.FrameLoop`, :func:`~edge_classifier.loop.stream`,
:func:`~edge_classifier.session.run_pipeline` and :meth:`Classifier.stream <edge_classifier.Classifier.stream>`,
so a new option is added in one place and validated in one place. It sits below the classifier and the smoother
(it imports only errors and the pure region declarations) so that ``Classifier.stream`` can name it without
importing the loop, and the :class:`~edge_classifier.smoothing.Smoother` checks its arguments with the same functions.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .regions import Region

__all__ = ["MOTION_RECHECK", "LoopOptions", "check_hysteresis", "check_smoothing"]

#: With ``motion`` on and no ``every``: seconds after which a still scene is classified anyway, so a state that
#: changed without motion (a light switched off, a slow drift) is still caught.
MOTION_RECHECK = 10.0


def check_smoothing(smoothing: float) -> float:
    """``smoothing`` itself when it is a usable EMA weight.

    Raises:
        ConfigError: it is outside [0, 1).
    """
    if not 0.0 <= smoothing < 1.0:
        raise ConfigError(
            f"smoothing={smoothing!r}",
            "is outside [0, 1): it is the weight an EMA keeps from past frames",
            "use 0 (off) up to 0.9 (heavy); 0.6 is moderate",
        )
    return smoothing


def check_hysteresis(frames: int) -> int:
    """``frames`` itself when it is a usable hysteresis length.

    Raises:
        ConfigError: it is below 1 frame.
    """
    if frames < 1:
        raise ConfigError(
            f"hysteresis={frames!r}",
            "is below 1: it counts the frames a new label must lead before it is announced",
            "use 1 (announce at once) or more; 3 is the default",
        )
    return frames


@dataclass(frozen=True)
class LoopOptions:
    """How one run of the frame loop behaves.

    Attributes:
        smoothing: EMA weight kept from past frames, in [0, 1): 0 is off (raw scores), 0.6 is moderate.
            ``Result.smoothed`` holds the smoothed top-k when it is on.
        hysteresis: frames a new top label must lead before ``Result.event`` announces it (1 or more).
        max_frames: stop after this many classified frames; None runs until the source ends.
        min_score: threshold in [0, 1] for smoothed labels and events; None takes the classifier's.
        stall_timeout: seconds without any frame before :class:`~edge_classifier.errors.CameraTimeoutError`.
        source_options: keyword arguments for :func:`edge_classifier.sources.open` when the source is not
            already a Source (``realtime``, ``read_timeout``, ...).
        regions: :class:`~edge_classifier.regions.Region` boxes, each classified on its own with its own
            states and events (``Result.regions``); empty classifies the whole frame.
        every: classify at most once per this many seconds (of the stream's own time: a video file's
            position), idling in between; a change seen is confirmed at frame rate. None: every frame.
        motion: classify only while a frame difference on a small greyscale copy sees change (per region),
            the frames after it until the state settles, and once per ``every`` seconds
            (:data:`MOTION_RECHECK` when ``every`` is None).
        motion_threshold: grey levels (1..255) a pixel must change by to count as moving.
        motion_min_area: share of the frame (or region) in (0, 1] that must move to count as motion.

    Raises:
        ConfigError: a value out of range (checked when the options are made, before any camera opens).
    """

    smoothing: float = 0.0
    hysteresis: int = 3
    max_frames: int | None = None
    min_score: float | None = None
    stall_timeout: float = 30.0
    source_options: Mapping[str, Any] | None = None
    regions: Sequence[Region] = ()
    every: float | None = None
    motion: bool = False
    motion_threshold: int = 25
    motion_min_area: float = 0.005

    def __post_init__(self) -> None:
        check_smoothing(self.smoothing)
        check_hysteresis(self.hysteresis)
        self._check_regions()
        self._check_triggers()
        if self.max_frames is not None and self.max_frames < 0:
            raise ConfigError(f"max_frames={self.max_frames!r}", "is negative", "give a frame count, or None for no limit")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(
                f"min_score={self.min_score!r}", "is outside [0, 1]: scores are probabilities", "use e.g. 0.3, or None"
            )
        if not (self.stall_timeout > 0 and math.isfinite(self.stall_timeout)):
            raise ConfigError(
                f"stall_timeout={self.stall_timeout!r}", "is not a positive number of seconds", "use e.g. 30 (the default)"
            )

    def _check_regions(self) -> None:
        regions = self.regions
        if isinstance(regions, Region) or not isinstance(regions, (list, tuple)):
            raise ConfigError(
                f"regions={regions!r}", "is not a list of Region", "pass regions=(Region('door', (0.1, 0.05, 0.3, 0.6)),)"
            )
        seen: set[str] = set()
        for r in regions:
            if not isinstance(r, Region):
                raise ConfigError(f"regions: {r!r}", "is not a Region", "make each with Region(name, box, ...)")
            if r.name in seen:
                raise ConfigError(f"region {r.name!r}", "is named twice", "give each region its own name")
            seen.add(r.name)
            try:
                if r.smoothing is not None:
                    check_smoothing(r.smoothing)
                if r.hysteresis is not None:
                    check_hysteresis(r.hysteresis)
            except ConfigError as exc:
                raise ConfigError(f"region {r.name!r}: {exc.thing}", exc.cause, exc.fix) from None
        object.__setattr__(self, "regions", tuple(regions))

    def _check_triggers(self) -> None:
        if self.every is not None and (
            isinstance(self.every, bool)
            or not isinstance(self.every, (int, float))
            or not (self.every > 0 and math.isfinite(self.every))
        ):
            raise ConfigError(
                f"every={self.every!r}", "is not a positive number of seconds", "use e.g. 2 (classify every 2 s), or None"
            )
        t = self.motion_threshold
        if isinstance(t, bool) or not isinstance(t, int) or not 1 <= t <= 255:
            raise ConfigError(
                f"motion_threshold={t!r}", "is not a whole number of grey levels from 1 to 255", "use e.g. 25 (the default)"
            )
        a = self.motion_min_area
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.0 < a <= 1.0:
            raise ConfigError(
                f"motion_min_area={a!r}", "is not a share of the area in (0, 1]", "use e.g. 0.005 (half a percent, the default)"
            )

    @property
    def triggered(self) -> bool:
        """True when frames are classified on a schedule or on motion, not every frame."""
        return self.every is not None or self.motion

    def replace(self, **changes: Any) -> LoopOptions:
        """A copy with ``changes`` applied (and validated again)."""
        return dataclasses.replace(self, **changes)


#: The field names, for the deprecated keyword form of the loop's functions.
FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(LoopOptions))


def options_from_keywords(options: LoopOptions | None, keywords: Mapping[str, Any], where: str) -> LoopOptions:
    """``options``, updated by the loop keywords of the old call form, which are deprecated.

    ``run_pipeline(clf, src, sinks, smoothing=0.5)`` becomes ``run_pipeline(clf, src, sinks, LoopOptions(smoothing=0.5))``;
    the old form keeps working for one release with a DeprecationWarning pointing at the caller.

    Raises:
        TypeError: a keyword that is no LoopOptions field (what Python says of any unknown keyword).
        ConfigError: a value out of range.
    """
    base = options if options is not None else LoopOptions()
    if not keywords:
        return base
    unknown = sorted(set(keywords) - FIELDS)
    if unknown:
        raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r}")
    names = ", ".join(f"{k}=" for k in keywords)
    warnings.warn(
        f"{where}(..., {names}) is deprecated and will be removed in the next release: pass LoopOptions({names}...) instead",
        DeprecationWarning,
        stacklevel=3,  # the caller of the function that takes the keywords
    )
    return base.replace(**keywords)
