"""What worker-process isolation costs per frame: in-process vs isolated invoke on the same CPU model.

Both sides run the same interpreter on the same frame; the isolated one adds the shared-memory copy
into the worker's input tensor, the score copy back, and one pipe round trip. Prints medians side by
side, the per-frame overhead, and the ratio; also the worker's start-up time (paid once).

    .venv/bin/python benchmarks/bench_isolation.py [--model M.tflite] [--frames 300] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from edge_classifier.backends.base import Backend
from edge_classifier.backends.select import open_backend
from edge_classifier.tflite_file import read_model

CORAL = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "coral"


def _time_invokes(backend: Backend, frame: np.ndarray, frames: int) -> list[float]:
    for _ in range(10):  # warm-up: first invokes allocate and page in
        backend.write_input(frame)
        backend.invoke()
        backend.output()
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        backend.write_input(frame)
        backend.invoke()
        backend.output()
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    """Run the comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(CORAL / "mobilenet_v1_0.25_128_quant.tflite"))
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternate the two sides this many times (fairer on a busy machine)"
    )
    args = parser.parse_args()

    data, info = read_model(args.model)
    inproc = open_backend(data, info, args.model, device="cpu", num_threads=args.threads, isolate=False).backend
    t0 = time.perf_counter()
    isolated = open_backend(data, info, args.model, device="cpu", num_threads=args.threads, isolate=True).backend
    start_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=inproc.input_shape[1:], dtype=np.uint8).astype(inproc.input_dtype)
    a: list[float] = []
    b: list[float] = []
    try:
        for _ in range(args.rounds):
            a += _time_invokes(inproc, frame, args.frames)
            b += _time_invokes(isolated, frame, args.frames)
        np.testing.assert_array_equal(inproc.output(), isolated.output())
    finally:
        inproc.close()
        isolated.close()
    med_a, med_b = statistics.median(a), statistics.median(b)
    p95 = lambda xs: sorted(xs)[int(0.95 * (len(xs) - 1))]  # noqa: E731
    print(f"model: {Path(args.model).name}, {args.threads} thread(s), {len(a)} frames per side")
    print(f"{'':22s}{'median ms':>10s}{'p95 ms':>10s}")
    print(f"{'in-process':22s}{med_a * 1e3:10.3f}{p95(a) * 1e3:10.3f}")
    print(f"{'isolated (worker)':22s}{med_b * 1e3:10.3f}{p95(b) * 1e3:10.3f}")
    print(f"overhead per frame: {(med_b - med_a) * 1e6:.0f} us; ratio isolated/in-process: {med_b / med_a:.2f}x")
    print(f"worker start-up (spawn, import, load; once): {start_s * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
