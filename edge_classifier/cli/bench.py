"""``edge-classifier bench``: how fast this model runs here, and what the SDK adds on top of the interpreter."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from . import EXIT_OK, add_model_options, classifier_from_args


def register(sub: Any) -> None:
    """Add the ``bench`` subcommand."""
    p = sub.add_parser(
        "bench",
        help="time the model: bare invoke vs classify() on a camera-sized frame",
        description="Time the model on this machine: the interpreter's invoke() alone, then classify() on a frame "
        "of --frame size (resize, quantize, invoke, postprocess), interleaved so both see the same load.",
    )
    add_model_options(p)
    p.add_argument("--runs", type=int, default=200, help="calls per measurement (default 200)")
    p.add_argument("--frame", type=_frame_size, default=(1280, 720), help="frame size WxH for classify() (default 1280x720)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _frame_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--frame {text!r}: expected WxH, e.g. 1280x720") from exc
    return w, h


def interleaved(fns: dict[str, Callable[[], object]], runs: int, block: int = 10) -> dict[str, list[float]]:
    """Seconds per call of each function, measured in alternating blocks (same load for all)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()  # warm-up: first calls pay for allocation
    while min(len(v) for v in times.values()) < runs:
        for name, fn in fns.items():
            for _ in range(block):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    return times


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def run(args: argparse.Namespace) -> int:
    """Measure and print."""
    width, height = args.frame
    # A smooth synthetic frame: the resize cost depends on the size, not on the picture.
    yy, xx = np.mgrid[0:height, 0:width]
    frame = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1), (xx + yy) % 256], axis=2).astype(np.uint8)
    with classifier_from_args(args) as clf:
        times = interleaved({"invoke": clf.invoke, "classify": lambda: clf.predict_rgb(frame)}, max(10, args.runs))
        info = clf.backend
        med = {k: statistics.median(v) for k, v in times.items()}
        p95 = {k: percentile(v, 0.95) for k, v in times.items()}
        report: dict[str, Any] = {
            "model": str(clf.model_path),
            "runtime": info.runtime,
            "version": info.version,
            "device": info.device,
            "threads": info.num_threads,
            "reason": info.reason,
            "frame": f"{width}x{height}",
            "invoke_ms": {"median": round(med["invoke"] * 1000, 3), "p95": round(p95["invoke"] * 1000, 3)},
            "classify_ms": {"median": round(med["classify"] * 1000, 3), "p95": round(p95["classify"] * 1000, 3)},
            "model_bound_fps": round(1 / med["invoke"], 1),
            "classify_fps": round(1 / med["classify"], 1),
            "overhead_ratio": round(med["classify"] / med["invoke"], 3),
        }
    if args.json:
        print(json.dumps(report))
        return EXIT_OK
    print(f"{report['model']}\n  {info}")
    print(f"  {'':30s} {'median ms':>10s} {'p95 ms':>9s} {'fps':>8s}")
    print(f"  {'invoke() alone':30s} {report['invoke_ms']['median']:10.2f} {report['invoke_ms']['p95']:9.2f} {report['model_bound_fps']:8.1f}")
    label = f"classify({width}x{height} frame)"
    print(f"  {label:30s} {report['classify_ms']['median']:10.2f} {report['classify_ms']['p95']:9.2f} {report['classify_fps']:8.1f}")
    print(f"  classify / invoke: {report['overhead_ratio']:.2f}x")
    return EXIT_OK
