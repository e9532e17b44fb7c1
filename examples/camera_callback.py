#!/usr/bin/env python3
"""Run the camera loop and handle every classified frame in your own function.

    python examples/camera_callback.py                        # Raspberry Pi camera
    python examples/camera_callback.py --source 0             # a webcam
    python examples/camera_callback.py --source clip.mp4 --max-frames 100

``on_result`` is called once per frame with a Result: ``result.top`` is the smoothed best class
(``result.raw_top`` is this frame's own, unsmoothed) and ``result.event`` is set on the frame where the label
changed and stayed changed. Ctrl-C stops the loop cleanly (camera released, summary printed on stderr).
"""

from __future__ import annotations

import argparse
import sys

from edge_classifier import Classifier, EdgeClassifierError, LoopOptions, Result, run_pipeline
from edge_classifier.sinks import CallbackSink


def on_result(result: Result) -> None:
    """Your code goes here. It runs in the inference thread: keep it quick (or pass blocking=True below)."""
    if result.event is not None:
        e = result.event
        print(f"frame {e.frame_index}: now {e.label} ({e.score:.2f}), was {e.previous_label}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="picamera", help="picamera, a camera index, a video file, a URL or an image folder")
    parser.add_argument("--model", help="a .tflite classifier (default: the bundled one)")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--min-score", type=float, default=0.3, help="ignore classes scoring below this")
    args = parser.parse_args()

    try:
        with Classifier(args.model, min_score=args.min_score) as clf:
            options = LoopOptions(smoothing=0.5, max_frames=args.max_frames)
            stats = run_pipeline(clf, args.source, [CallbackSink(on_result)], options)
    except EdgeClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{stats.frames} frames, {stats.events} label changes", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
