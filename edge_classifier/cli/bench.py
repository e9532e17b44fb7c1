"""``edge-classifier bench``: how fast this model runs here, and what the SDK adds on top of the interpreter."""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..options import BENCH_OPTIONS, add_options
from . import EXIT_OK, add_model_options, classifier_from_args


def register(sub: Any) -> None:
    """Add the ``bench`` subcommand."""
    p = sub.add_parser(
        "bench",
        usage="%(prog)s [--model MODEL] [--runs N] [--frame WxH] [options]  (all options: --help)",
        help="time the model: bare invoke vs classify() on a camera-sized frame",
        description="Time the model on this machine: the interpreter's invoke() alone, then classify() on a frame "
        "of --frame size (resize, quantize, invoke, postprocess), interleaved so both see the same load.",
    )
    add_model_options(p)
    add_options(p, BENCH_OPTIONS)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def synthetic_frame(width: int, height: int) -> np.ndarray:
    """A smooth HxWx3 uint8 test frame: the resize cost depends on the size, not on the picture.

    Built from two 1-D ramps broadcast together, so even an 8192x8192 frame needs only its own 200 MB.
    """
    x = (np.arange(width, dtype=np.uint32) * 255 // max(1, width - 1)).astype(np.uint8)
    y = (np.arange(height, dtype=np.uint32) * 255 // max(1, height - 1)).astype(np.uint8)
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = x[None, :]
    frame[..., 1] = y[:, None]
    # (x + y) mod 256: uint8 addition wraps around by itself.
    np.add(np.arange(width).astype(np.uint8)[None, :], np.arange(height).astype(np.uint8)[:, None], out=frame[..., 2])
    return frame


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
    frame = synthetic_frame(width, height)
    with classifier_from_args(args) as clf:
        times = interleaved({"invoke": clf._invoke, "classify": lambda: clf.predict(frame)}, max(10, args.runs))
        info = clf.runtime_info
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
    print(
        f"  {'invoke() alone':30s} {report['invoke_ms']['median']:10.2f} {report['invoke_ms']['p95']:9.2f} "
        f"{report['model_bound_fps']:8.1f}"
    )
    label = f"classify({width}x{height} frame)"
    print(
        f"  {label:30s} {report['classify_ms']['median']:10.2f} {report['classify_ms']['p95']:9.2f} {report['classify_fps']:8.1f}"
    )
    print(f"  classify / invoke: {report['overhead_ratio']:.2f}x")
    return EXIT_OK
