"""The frame loop: source -> classifier -> smoother, one Result per classified frame, with bounded memory.

Threads and buffers, on purpose:

- capture runs in its own thread and hands frames over through a one-frame slot. A live source
  (camera, stream) overwrites the slot, so a slow model drops stale frames (counted) instead of
  queueing them: latency and memory stay bounded. A file or folder waits for the slot instead, so
  every frame is classified.
- inference runs in the caller's thread (interpreters are not thread-safe, and the caller may
  want the GIL-free invoke on its own core).

Regions and triggers, when the options name them:

- each :class:`~edge_classifier.regions.Region` is cut from the full-resolution frame, framed for its model and
  classified on its own, with its own states, smoothing and events (``Result.regions``); the whole frame is then
  not classified.
- ``every`` and ``motion`` (:mod:`edge_classifier.triggers`) decide per frame which regions (or whether the frame)
  to classify; a frame with nothing to classify yields no Result.
- taps (:meth:`FrameLoop.add_tap`) see every captured frame in the capture thread, before any is dropped: the
  clip sink's pre-roll buffer is fed that way, at the camera's rate whatever the model's.

Sinks and signals are the session's business (:mod:`edge_classifier.session`); this module only iterates.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from . import classifier as _classifier
from . import sources as _sources
from .backends.base import BackendInfo
from .errors import AcceleratorLostError, CameraTimeoutError, ConfigError, EdgeClassifierError
from .loop_options import MOTION_RECHECK, LoopOptions, options_from_keywords
from .postprocess import classes_from_scores
from .preprocess import min_source_size
from .regions import Region, frame_region, pixel_box, region_spec
from .results import Frame, Prediction, RegionResult, Result
from .smoothing import Smoother, StateSmoother, settle_frames
from .sources.base import Source, file_fps
from .spec import ModelSpec
from .states import compile_states
from .triggers import TriggerPlan

log = logging.getLogger(__name__)

__all__ = ["FrameClassifier", "FrameLoop", "FrameSlot", "FrameTap", "LoopOptions", "SourceSpec", "stream"]

#: What the loop reads from: a Source, or anything :func:`edge_classifier.sources.open` accepts.
SourceSpec = str | int | Path | Source

#: Called in the capture thread with every frame read and whether the source is live (see :meth:`FrameLoop.add_tap`).
FrameTap = Callable[[Frame, bool], None]


class FrameClassifier(Protocol):
    """What the loop needs of a classifier; :class:`~edge_classifier.Classifier` is one.

    Anything with these members can be looped over (a model wrapped to add a delay or a fault, in tests).
    """

    @property
    def spec(self) -> ModelSpec:
        """The model's contract: input size and labels are used here."""

    @property
    def top_k(self) -> int:
        """How many classes a smoothed ranking keeps."""

    @property
    def min_score(self) -> float:
        """The default threshold for smoothed labels and events."""

    @property
    def runtime_info(self) -> BackendInfo:
        """Where inference runs; ``.device`` is reported per Result.

        Raises:
            EdgeClassifierError: the classifier is closed (the loop then reports ``cpu``).
        """

    def predict(self, image: np.ndarray) -> Prediction:
        """Classify one RGB uint8 frame (HxWx3).

        Raises:
            AcceleratorLostError: the accelerator died; the loop retries once on what the classifier has left.
        """

    def predict_framed(self, pixels: np.ndarray) -> Prediction:
        """Classify pixels already framed to the model's input size (regions use it; see ``Classifier``).

        Raises:
            AcceleratorLostError: as :meth:`predict`.
        """


@dataclass(frozen=True)
class _Captured:
    frame: Frame
    read_seconds: float


class _End:
    """Marks the end of the source in the slot."""


_END = _End()


class FrameSlot:
    """A one-frame hand-over between the capture thread and the inference thread.

    ``put(..., wait=False)`` replaces an untaken frame (newest wins; the stale one is counted in
    ``dropped``); ``put(..., wait=True)`` waits until the previous frame is taken (files: no loss).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: _Captured | None = None
        self._ended = False
        self._error: BaseException | None = None
        self.dropped = 0

    def put(self, item: _Captured, *, wait: bool, stop: threading.Event) -> None:
        """Offer a frame; see the class docstring for ``wait``."""
        with self._cond:
            while wait and self._item is not None and not stop.is_set():
                self._cond.wait(0.1)
            if wait and stop.is_set():
                return  # the loop is ending: this frame is not wanted, and was not dropped
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        """The source ended (or failed with ``error``): wake the consumer."""
        with self._cond:
            self._ended = True
            self._error = error
            self._cond.notify_all()

    def take(self, timeout: float) -> _Captured | _End | None:
        """The newest frame; ``_END`` when the source is done; None when ``timeout`` passed first.

        Raises:
            BaseException: whatever ended the capture thread, re-raised in the consumer.
        """
        with self._cond:
            if self._item is None and not self._ended:
                self._cond.wait(timeout)
            if self._item is not None:
                item, self._item = self._item, None
                self._cond.notify_all()
                return item
            if self._ended:
                if self._error is not None:
                    raise self._error
                return _END
            return None


@dataclass
class _RegionRunner:
    """One region at run time: its classifier, the spec its crops are framed with, its smoother and pixel box."""

    region: Region
    classifier: FrameClassifier
    spec: ModelSpec
    smoother: StateSmoother
    smoothing_on: bool
    box: tuple[int, int, int, int] = (0, 0, 0, 0)


def _device(classifier: FrameClassifier) -> str:
    try:
        return str(classifier.runtime_info.device)
    except EdgeClassifierError:  # closed: nothing runs anywhere, and the CPU is what a reopen would use
        return "cpu"


class FrameLoop:
    """One run of source -> classifier -> smoother, iterated for Results; see :func:`stream`.

    Args:
        classifier: a :class:`FrameClassifier` (a :class:`~edge_classifier.Classifier`).
        source: a Source, or anything :func:`edge_classifier.sources.open` accepts.
        options: smoothing, hysteresis, max_frames, ... (:class:`LoopOptions`; defaults when None).
        **deprecated: the loop options as keywords, the old call form (a DeprecationWarning).

    Attributes:
        source: the Source being read.
        options: the options in force.
        dropped: live frames replaced before inference took them.
        skipped: frames taken but not classified because a trigger (``every``, ``motion``) said so.
        stopped_by: why the loop ended (``end``, ``max_frames``, ``SIGINT``, ``stop``, ``error``, ...).
        device: where the last frame was classified.
        runners: per region of the options, what runs it: its classifier, framing spec, smoother and pixel box.
        plan: the trigger plan (classifications per target), or None without triggers.

    Raises:
        ConfigError: an option out of range, or a region whose states name labels the model does not have.
        SourceError: ``source`` names nothing that can be opened.
        ModelError: a region's own model cannot be opened.
    """

    def __init__(
        self, classifier: FrameClassifier, source: SourceSpec, options: LoopOptions | None = None, **deprecated: object
    ) -> None:
        self.options = opts = options_from_keywords(options, deprecated, "FrameLoop")
        self.classifier = classifier
        self.source = _sources.open(source, **dict(opts.source_options or {}))
        self.smoother = Smoother(
            classifier.spec.label,
            smoothing=opts.smoothing,
            hysteresis=opts.hysteresis,
            min_score=classifier.min_score if opts.min_score is None else opts.min_score,
        )
        self.slot = FrameSlot()
        self.stopped_by = "end"
        self.device = _device(classifier)
        self.skipped = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._taps: list[FrameTap] = []
        self._owned: dict[str, FrameClassifier] = {}
        self._placed_for: tuple[int, ...] = ()
        try:
            self.runners = [self._runner(r) for r in opts.regions]
        except BaseException:
            self._close_owned()
            self.source.close()
            raise
        settle = [r.smoother.settle_frames() for r in self.runners] or [settle_frames(opts.smoothing, opts.hysteresis)]
        self.plan = (
            TriggerPlan(
                settle,
                every=opts.every,
                motion=opts.motion,
                recheck=MOTION_RECHECK,
                threshold=opts.motion_threshold,
                min_area=opts.motion_min_area,
            )
            if opts.triggered
            else None
        )

    def _runner(self, region: Region) -> _RegionRunner:
        clf = self._region_classifier(region)
        spec = clf.spec
        labels = spec.labels or tuple(spec.label(i) for i in range(spec.num_classes))
        states = compile_states(
            region.states, labels, threshold=region.threshold, thresholds=region.thresholds, where=f"region {region.name!r}"
        )
        smoothing = self.options.smoothing if region.smoothing is None else region.smoothing
        hysteresis = self.options.hysteresis if region.hysteresis is None else region.hysteresis
        smoother = StateSmoother(states, spec.label, region.name, smoothing=smoothing, hysteresis=hysteresis)
        return _RegionRunner(region, clf, region_spec(spec, region.framing), smoother, smoothing > 0)

    def _region_classifier(self, region: Region) -> FrameClassifier:
        model = region.model
        if model is None:
            return self.classifier
        if isinstance(model, (str, Path)):
            key = str(model)
            if key not in self._owned:
                # Same settings as the loop's classifier where they matter to the answer.
                self._owned[key] = _classifier.Classifier(model, top_k=self.classifier.top_k, min_score=self.classifier.min_score)
            return self._owned[key]
        if callable(getattr(model, "predict_framed", None)):
            return model  # type: ignore[no-any-return]  # an open classifier, owned by the caller
        raise ConfigError(
            f"region {region.name!r}: model",
            f"{model!r} is neither a model path nor a classifier",
            "give a .tflite path, or leave it out",
        )

    def _close_owned(self) -> None:
        owned, self._owned = self._owned, {}
        for clf in owned.values():
            close = getattr(clf, "close", None)
            if close is not None:
                close()

    def add_tap(self, tap: FrameTap) -> None:
        """Call ``tap(frame, live)`` in the capture thread for every frame read, before the slot may drop it.

        For what must see every frame whatever the model's speed (a clip sink's pre-roll buffer). A tap must be
        quick (hand the frame to a thread of its own) and must not raise: one that raises is removed, with the
        error logged, and the loop goes on. Add taps before iterating.
        """
        self._taps.append(tap)

    @property
    def dropped(self) -> int:
        """Live frames replaced by a newer one before inference took them."""
        return self.slot.dropped

    def stop(self, reason: str = "stop") -> None:
        """Ask the loop to end after the current frame (thread- and signal-safe)."""
        if not self._stop.is_set():
            self.stopped_by = reason
            self._stop.set()

    # --- capture thread -----------------------------------------------------------------
    def _tap(self, frame: Frame, live: bool) -> None:
        for tap in list(self._taps):
            try:
                tap(frame, live)
            except Exception:  # noqa: BLE001 - a tap must never end the loop
                log.exception("frame tap %r failed; removed, the loop goes on", tap)
                self._taps.remove(tap)

    def _capture(self) -> None:
        try:
            frames = iter(self.source)
            fps = file_fps(self.source)
            live = self.source.live
            while not self._stop.is_set():
                t0 = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                if frame.t_stream is None:
                    frame = dataclasses.replace(frame, t_stream=frame.index / fps if fps else frame.t_capture)
                if self._taps:
                    self._tap(frame, live)
                self.slot.put(_Captured(frame, time.perf_counter() - t0), wait=not live, stop=self._stop)
            self.slot.finish()
        except BaseException as exc:  # noqa: BLE001 - handed to the inference thread, which raises it
            self.slot.finish(exc)

    # --- inference thread ---------------------------------------------------------------
    def _predict(self, frame: Frame, classifier: FrameClassifier | None = None, framed: np.ndarray | None = None) -> Prediction:
        """The frame (or, for a region, its framed pixels) classified; one retry after a lost accelerator."""
        clf = self.classifier if classifier is None else classifier

        def once() -> Prediction:
            return clf.predict(frame.rgb) if framed is None else clf.predict_framed(framed)

        try:
            return once()
        except AcceleratorLostError as exc:
            log.warning("frame %d: accelerator lost (%s); retrying on what the classifier has left", frame.index, exc.cause)
            try:
                pred = once()
            except EdgeClassifierError as again:
                log.error("the classifier cannot answer after losing the accelerator: %s", again)
                raise again from exc
            self.device = _device(clf)
            log.warning("continuing on %s after the accelerator was lost", self.device)
            return pred

    def _next_frame(self) -> _Captured | None:
        waited = 0.0
        timeout = self.options.stall_timeout
        while not self._stop.is_set():
            item = self.slot.take(timeout=0.1)
            if isinstance(item, _Captured):
                return item
            if isinstance(item, _End):
                return None
            waited += 0.1
            if waited >= timeout:
                raise CameraTimeoutError(
                    self.source.name,
                    f"delivered no frame for {timeout:g} s",
                    "check the camera or stream; for slow sources raise stall_timeout",
                )
        return None

    def __iter__(self) -> Iterator[Result]:
        return self.results()

    def results(self) -> Generator[Result, None, None]:
        """The Results, one per classified frame; closing the generator releases the source."""
        max_frames = self.options.max_frames
        if not self.runners:
            # Only the whole frame is classified: a camera with a hardware scaler may deliver it small. Regions
            # are cut from the full-resolution frame instead.
            # What the framing needs (256x256 for a 224 model's 0.875 centre crop), so nothing is enlarged again.
            self.source.prefer_size(*min_source_size(self.classifier.spec))
        self.source.open()
        try:
            self._thread = threading.Thread(target=self._capture, name="edge-classifier-capture", daemon=True)
            self._thread.start()
            count = 0
            while max_frames is None or count < max_frames:
                t_wait = time.perf_counter()
                item = self._next_frame()
                if item is None:
                    break
                timings = {"capture": item.read_seconds, "wait": time.perf_counter() - t_wait}
                result = self._regions_result(item.frame, timings) if self.runners else self._frame_result(item.frame, timings)
                if result is None:
                    self.skipped += 1
                    continue
                count += 1
                yield result
            else:
                self.stopped_by = "max_frames"
        except GeneratorExit:
            raise
        except BaseException:
            self.stopped_by = "error" if self.stopped_by == "end" else self.stopped_by
            raise
        finally:
            self._shutdown()

    def _frame_result(self, frame: Frame, timings: dict[str, float]) -> Result | None:
        """The whole frame classified and smoothed, or None when a trigger skips it."""
        if self.plan is not None:
            h, w = frame.rgb.shape[:2]
            if not self.plan.due(frame.rgb, frame.stream_time, [(0, 0, w, h)], [self.smoother.pending])[0]:
                return None
            self.plan.done(0, frame.stream_time)
        spec = self.classifier.spec
        pred = self._predict(frame)
        t0 = time.perf_counter()
        smoothed_scores, event = self.smoother.update(pred.scores, frame.index, frame.t_capture)
        smoothed = (
            classes_from_scores(smoothed_scores, spec, self.classifier.top_k, self.smoother.min_score)
            if self.options.smoothing > 0
            else None
        )
        timings.update(pred.timings)
        timings["postprocess"] = timings.get("postprocess", 0.0) + time.perf_counter() - t0
        return Result(frame, pred.classes, pred.scores, timings, smoothed, event, self.device)

    def _place_regions(self, frame: Frame) -> None:
        """Each region's box in pixels of this frame's size (done again when a camera comes back at another size)."""
        h, w = frame.rgb.shape[:2]
        for r in self.runners:
            r.box = pixel_box(r.region, w, h)
        self._placed_for = (h, w)

    def _regions_result(self, frame: Frame, timings: dict[str, float]) -> Result | None:
        """Each region due on this frame classified; None when no region is (a trigger skipped them all)."""
        if self._placed_for != frame.rgb.shape[:2]:
            self._place_regions(frame)
        runners = self.runners
        t = frame.stream_time
        if self.plan is None:
            due = [True] * len(runners)
        else:
            due = self.plan.due(frame.rgb, t, [r.box for r in runners], [r.smoother.pending for r in runners])
            if not any(due):
                return None
        out: list[RegionResult] = []
        for i, (r, go) in enumerate(zip(runners, due, strict=True)):
            if not go:
                out.append(RegionResult(r.region.name, r.box, r.smoother.state, r.smoother.score, classified=False, timings={}))
                continue
            out.append(self._classify_region(r, frame))
            if self.plan is not None:
                self.plan.done(i, t)
            for stage, seconds in out[-1].timings.items():
                timings[stage] = timings.get(stage, 0.0) + seconds
        return Result(frame, [], np.zeros(0, np.float32), timings, None, None, self.device, tuple(out))

    def _classify_region(self, r: _RegionRunner, frame: Frame) -> RegionResult:
        t0 = time.perf_counter()
        pixels = frame_region(frame.rgb, r.box, r.spec)
        crop = time.perf_counter() - t0
        pred = self._predict(frame, r.classifier, pixels)
        t1 = time.perf_counter()
        smoothed_scores, event = r.smoother.update(pred.scores, frame.index, frame.t_capture)
        smoothed = (
            classes_from_scores(smoothed_scores, r.spec, r.classifier.top_k, r.classifier.min_score) if r.smoothing_on else None
        )
        timings = dict(pred.timings)
        timings["preprocess"] = timings.get("preprocess", 0.0) + crop
        timings["postprocess"] = timings.get("postprocess", 0.0) + time.perf_counter() - t1
        return RegionResult(
            r.region.name, r.box, r.smoother.state, r.smoother.score, True, pred.classes, pred.scores, smoothed, event, timings
        )

    def _shutdown(self) -> None:
        self._stop.set()
        self.source.interrupt()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10.0)
            if thread.is_alive():
                # Releasing a device under a blocked native read can crash; the OS frees it at exit.
                log.warning(
                    "%s: the capture thread is still blocked in a read; leaving the device to process exit", self.source.name
                )
                self._close_owned()
                return
        self.source.close()
        self._close_owned()


def stream(
    classifier: FrameClassifier, source: SourceSpec, options: LoopOptions | None = None, **deprecated: object
) -> Iterator[Result]:
    """Classify frames from ``source`` as they come; the source is opened and released here.

    Args:
        classifier: a :class:`~edge_classifier.Classifier` (any :class:`FrameClassifier`).
        source: a Source, or anything :func:`edge_classifier.sources.open` accepts.
        options: smoothing, hysteresis, max_frames, min_score, stall_timeout, source_options
            (:class:`LoopOptions`; its defaults when None).
        **deprecated: the same options as keywords, the old call form (a DeprecationWarning).

    Yields:
        One :class:`~edge_classifier.results.Result` per classified frame.

    Raises:
        ConfigError: an option out of range.
        SourceError: the source cannot be opened or fails mid-way (its own child class).
        AcceleratorLostError: the accelerator died and the classifier has no fallback.
    """
    return iter(FrameLoop(classifier, source, options_from_keywords(options, deprecated, "stream")))


def _stream_for_classifier(classifier: _classifier.Classifier, source: SourceSpec, options: LoopOptions) -> Iterator[Result]:
    return stream(classifier, source, options)


# Classifier.stream is this module's stream (the classifier, a layer below, cannot import it).
_classifier.register_stream(_stream_for_classifier)
