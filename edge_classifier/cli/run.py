"""``edge-classifier run``: classify live frames from a camera, stream, video or image folder.

Extension points (kept in one place each, so a config file or new sinks plug in without touching
the rest): :func:`add_run_options` defines every run option, :func:`build_sinks` turns options
into sinks, :func:`resolve_source` turns ``--source`` (or its absence) into a Source.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from typing import Any

from ..errors import SinkError
from ..options import REGION_OPTIONS, RUN_OPTIONS, add_options
from ..redact import redact_url
from ..results import Result
from . import EXIT_INTERRUPTED, EXIT_OK, add_model_options, classifier_from_args
from .iot import add_iot_options, apply_config_file, build_iot_sinks, describe_sinks

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    """Add the ``run`` subcommand."""
    p = sub.add_parser(
        "run",
        help="classify live frames (camera, stream, video, images)",
        usage="%(prog)s [--source SOURCE] [--model MODEL] [options]  (all options: --help)",
        description="Classify frames from a Raspberry Pi camera, a webcam, a stream, a video file or an image folder. "
        "Without --source: the camera when one is present, else a short sample clip shipped with the package.",
    )
    add_model_options(p)
    add_run_options(p)
    add_iot_options(p)
    p.set_defaults(func=run)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Every option of ``run`` besides the model options (declared in :data:`edge_classifier.options.RUN_OPTIONS`
    and :data:`~edge_classifier.options.REGION_OPTIONS`)."""
    add_options(p, (*RUN_OPTIONS, *REGION_OPTIONS))


def _print_event(result: Result) -> None:
    event = result.event
    if event is not None:
        print(f"frame {event.frame_index}: {event.label} ({event.score:.2f})", flush=True)
    for region in result.regions:
        e = region.event
        if e is not None:
            print(f"frame {e.frame_index}: {e.region} is {e.state} ({e.label} {e.score:.2f})", flush=True)


def build_sinks(args: argparse.Namespace) -> list[Any]:
    """The sinks the options ask for, not yet started (``run_pipeline`` starts and closes them).

    Raises:
        SinkError: an option names an unusable sink (checked before the model loads).
    """
    from ..sinks import CallbackSink, ClipSink, JsonlSink, OverlaySink, RecorderSink

    sinks: list[Any] = []
    if getattr(args, "clips", None):
        sinks.append(ClipSink(args.clips, pre=args.pre, post=args.post, max_mb=args.clips_max_mb, format=args.clip_format))
    if args.jsonl:
        sinks.append(JsonlSink(args.jsonl, events_only=args.events_only))
    if args.record:
        sinks.append(RecorderSink(args.record, fps=args.record_fps))
    if args.show:
        sinks.append(OverlaySink())
    if not args.quiet and args.jsonl != "-":
        sinks.append(CallbackSink(_print_event, events_only=True))
    sinks.extend(build_iot_sinks(args))  # --mqtt, --webhook
    if getattr(args, "web", None) is not None:
        from ..sinks.web import build_web_sink

        # Checked here, before the model loads: a bad address or a missing password is a ConfigError now.
        sinks.append(
            build_web_sink(
                args.web or None, password_file=args.web_password_file, insecure=args.web_insecure, max_fps=args.web_fps
            )
        )
    return sinks


def needs_full_frames(args: argparse.Namespace) -> bool:
    """Whether an output shows or crops the whole picture (a recording, a preview, clips, regions, the web view), so the
    source must not hand over frames already reduced to the model's size."""
    return bool(
        args.record
        or args.show
        or getattr(args, "clips", None)
        or getattr(args, "region", None)
        or getattr(args, "web", None) is not None
    )


def source_options(args: argparse.Namespace, spec: str, full_frames: bool | None = None) -> dict[str, Any]:
    """Keyword arguments for ``sources.open`` from the options, fitting the kind of source; ``full_frames`` None:
    whole frames when an output needs them (:func:`needs_full_frames`)."""
    from ..sources import OpenCvSource, PiCameraSource
    from ..sources import open as open_source

    probe = open_source(spec)  # not opened: only its kind is needed
    if isinstance(probe, PiCameraSource):
        return {"capture_timeout": args.timeout}
    full = {"full_frames": True} if (needs_full_frames(args) if full_frames is None else full_frames) else {}
    if isinstance(probe, OpenCvSource):
        return {"read_timeout": args.timeout, "realtime": args.realtime, "reconnect_timeout": args.reconnect_timeout, **full}
    return full


def default_source() -> str:
    """The camera when one is present (Pi camera, then webcam 0), else the bundled sample clip."""
    from ..sources import sample_clip_path

    if importlib.util.find_spec("picamera2") is not None:
        try:
            from picamera2 import Picamera2

            if Picamera2.global_camera_info():
                return "picamera"
        except Exception as exc:  # noqa: BLE001 - any failure here just means "no Pi camera"
            log.info("picamera2 present but unusable (%s)", exc)
    if os.path.exists("/dev/video0"):
        import cv2

        cap = cv2.VideoCapture(0)
        try:
            if cap.isOpened() and cap.read()[0]:
                return "0"
        finally:
            cap.release()
    return str(sample_clip_path())


def resolve_source(
    args: argparse.Namespace, *, full_frames: bool | None = None, command: str = "run"
) -> tuple[str, dict[str, Any]]:
    """``--source`` (or the default, said on stderr as ``[command] ...``) and its options (see :func:`source_options`)."""
    spec = args.source
    if spec is None:
        spec = default_source()
        print(f"[{command}] no --source given: using {spec}", file=sys.stderr, flush=True)
    return spec, source_options(args, spec, full_frames)


def run(args: argparse.Namespace) -> int:
    """Run the loop until the source ends, --max-frames, Ctrl-C/SIGTERM, or q in the window.

    Returns 130 after Ctrl-C (SIGINT), 0 otherwise; errors surface as EdgeClassifierError.
    """
    from ..loop_options import LoopOptions
    from ..regions import regions_from
    from ..session import run_pipeline
    from ..sinks.mqtt import MqttSink

    apply_config_file(args)  # --config: the file fills in what the command line left out
    if args.show:
        from ..sinks.overlay import gui_problem

        problem = gui_problem()
        if problem:
            raise SinkError(
                "--show",
                problem,
                "pip uninstall -y opencv-python-headless && pip install opencv-python (on a desktop or ssh -X); "
                "or drop --show and use --record out.mp4",
            )
    regions = regions_from(args.region or ())  # before the model loads; a config file's were checked when it was read
    sinks = build_sinks(args)
    for sink in sinks:
        if isinstance(sink, MqttSink):
            sink.regions = [r.name for r in regions]  # one topic pair and Home Assistant sensor per region
    spec, options = resolve_source(args)
    with classifier_from_args(args) as clf:
        describe_sinks(sinks, clf)
        info = clf.runtime_info
        print(f"[run] {redact_url(spec)} -> {clf.model_path.name} on {info.device} ({info.runtime})", file=sys.stderr, flush=True)
        loop_options = LoopOptions(
            smoothing=args.smooth,
            hysteresis=args.hysteresis,
            max_frames=args.max_frames,
            min_score=args.min_score,
            source_options=options,
            regions=regions,
            every=args.every,
            motion=args.motion,
            motion_threshold=args.motion_threshold,
            motion_min_area=args.motion_min_area,
        )
        stats = run_pipeline(clf, spec, sinks, loop_options, stats_interval=args.stats_interval)
    return EXIT_INTERRUPTED if stats.stopped_by == "SIGINT" else EXIT_OK
