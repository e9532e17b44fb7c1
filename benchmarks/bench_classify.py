"""Classifier.classify() against the bare interpreter's invoke(), and each runtime's invoke time.

Usage: python benchmarks/bench_classify.py [--model PATH] [--runs 300]

Prints medians and p95 over the same number of calls, measured in one run, and the ratio of
classify() on a decoded 1280x720 frame to the bare invoke (target: within 1.10x). Also checks
that the fast resize changes none of the reference answers.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORAL = REPO.parent / "shared" / "testdata" / "coral"


def timeit(fn: Callable[[], object], runs: int, warmup: int = 20) -> tuple[float, float]:
    """Median and p95 of ``fn``'s wall time in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def bare_invoke(model: Path, runs: int, module: str) -> tuple[float, float]:
    """The runtime's own interpreter, input already set: invoke() alone."""
    mod = importlib.import_module(module)
    from edge_classifier.backends.select import default_threads

    it = mod.Interpreter(model_path=str(model), num_threads=default_threads())
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    return timeit(it.invoke, runs)


def main() -> int:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=CORAL / "mobilenet_v2_1.0_224_quant.tflite")
    ap.add_argument("--runs", type=int, default=300)
    args = ap.parse_args()

    from PIL import Image

    from edge_classifier import Classifier

    frame720 = np.asarray(Image.open(CORAL / "cat_720p.jpg").convert("RGB"))
    frame224 = np.asarray(Image.open(CORAL / "cat_720p.jpg").convert("RGB").resize((224, 224)))
    rows: list[tuple[str, float, float]] = []
    with Classifier(args.model) as clf:
        print(f"model: {args.model.name}; backend: {clf.backend}")
        inv = bare_invoke(args.model, args.runs, "ai_edge_litert.interpreter")
        rows.append(("bare invoke() (ai-edge-litert)", *inv))
        rows.append(("classify(1280x720 frame), fast resize", *timeit(lambda: clf.classify(frame720), args.runs)))
        rows.append(("classify(224x224 frame)", *timeit(lambda: clf.classify(frame224), args.runs)))
        rows.append(("classify(1280x720 frame), exact Lanczos", *timeit(lambda: clf.predict_rgb(frame720, resample="exact"), args.runs // 3)))
        labels = {photo: clf.classify(np.asarray(Image.open(CORAL / photo).convert("RGB")))[0].label for photo in (
            "cat.bmp", "parrot.jpg", "grace_hopper.bmp", "bird.bmp", "sunflower.bmp", "cat_720p.jpg")}  # fmt: skip

    print(f"\n{'what':44s} {'median ms':>10s} {'p95 ms':>9s} {'x invoke':>9s}")
    for name, med, p95 in rows:
        print(f"{name:44s} {med:10.2f} {p95:9.2f} {med / inv[0]:9.2f}")
    print("\nfast-resize top-1 per photo:", ", ".join(f"{k}={v}" for k, v in labels.items()))

    print("\nbare invoke() per installed runtime (separate processes, same model):")
    for name, module in (("ai-edge-litert", "ai_edge_litert.interpreter"), ("tflite-runtime", "tflite_runtime.interpreter"),
                         ("tensorflow", "tensorflow.lite.python.interpreter")):  # fmt: skip
        code = (
            f"import sys; sys.path.insert(0, {str(REPO)!r}); from benchmarks.bench_classify import bare_invoke; "
            f"from pathlib import Path; m, p = bare_invoke(Path({str(args.model)!r}), {min(args.runs, 100)}, {module!r}); "
            "print(f'{m:.2f} {p:.2f}')"
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
        if res.returncode == 0:
            med, p95 = res.stdout.split()[-2:]
            print(f"  {name:16s} median {med} ms  p95 {p95} ms")
        else:
            print(f"  {name:16s} not available ({res.stderr.strip().splitlines()[-1] if res.stderr.strip() else 'failed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
