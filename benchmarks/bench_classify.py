"""Classifier.classify() against the bare interpreter's invoke(), and each runtime's invoke time.

Usage: python benchmarks/bench_classify.py [--model PATH] [--runs 300] [--python OTHER_PYTHON ...]

``--python`` adds interpreters of other environments to the per-runtime table (tflite-runtime
2.14 needs numpy<2, so it usually lives in a venv of its own).

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


def timeit_interleaved(fns: dict[str, Callable[[], object]], runs: int, block: int = 10) -> dict[str, tuple[float, float]]:
    """Median and p95 (ms) of each function, measured in alternating blocks so all see the same load."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        for _ in range(10):
            fn()
    while min(len(v) for v in times.values()) < runs:
        for name, fn in fns.items():
            for _ in range(block):
                t = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t) * 1000)
    out = {}
    for name, ts in times.items():
        ts.sort()
        out[name] = (statistics.median(ts), ts[int(0.95 * (len(ts) - 1))])
    return out


def make_bare(model: Path, module: str) -> Callable[[], object]:
    """The runtime's own interpreter with its input set: a callable that runs invoke() alone."""
    import os

    mod = importlib.import_module(module)
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    it = mod.Interpreter(model_path=str(model), num_threads=threads)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    return it.invoke  # type: ignore[no-any-return]


def bare_invoke(model: Path, runs: int, module: str) -> tuple[float, float]:
    """The runtime's own interpreter, input already set: invoke() alone."""
    return timeit(make_bare(model, module), runs)


def main() -> int:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", type=Path, default=CORAL / "mobilenet_v2_1.0_224_quant.tflite")
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--python", action="append", default=[], help="another environment's python for the runtime table")
    args = ap.parse_args()

    from PIL import Image

    from edge_classifier import Classifier

    frame720 = np.asarray(Image.open(CORAL / "cat_720p.jpg").convert("RGB"))
    frame224 = np.asarray(Image.open(CORAL / "cat_720p.jpg").convert("RGB").resize((224, 224)))
    with Classifier(args.model) as clf:
        print(f"model: {args.model.name}; runtime: {clf.runtime_info}")
        res = timeit_interleaved(
            {
                "bare invoke() (ai-edge-litert)": make_bare(args.model, "ai_edge_litert.interpreter"),
                "classify(1280x720 frame), fast resize": lambda: clf.classify(frame720),
                "classify(224x224 frame)": lambda: clf.classify(frame224),
            },
            args.runs,
        )
        rows = [(k, *v) for k, v in res.items()]
        inv = rows[0][1:]
        rows.append(
            ("classify(1280x720 frame), exact Lanczos", *timeit(lambda: clf.predict(frame720, resample="exact"), args.runs // 3))
        )
        labels = {photo: clf.classify(np.asarray(Image.open(CORAL / photo).convert("RGB")))[0].label for photo in (
            "cat.bmp", "parrot.jpg", "grace_hopper.bmp", "bird.bmp", "sunflower.bmp", "cat_720p.jpg")}  # fmt: skip

    print(f"\n{'what':44s} {'median ms':>10s} {'p95 ms':>9s} {'x invoke':>9s}")
    for name, med, p95 in rows:
        print(f"{name:44s} {med:10.2f} {p95:9.2f} {med / inv[0]:9.2f}")
    print("\nfast-resize top-1 per photo:", ", ".join(f"{k}={v}" for k, v in labels.items()))

    print("\nbare invoke() per runtime (separate processes, same model, same threads):")
    for python in [sys.executable, *args.python]:
        for name, module in (("ai-edge-litert", "ai_edge_litert.interpreter"), ("tflite-runtime", "tflite_runtime.interpreter"),
                             ("tensorflow", "tensorflow.lite.python.interpreter")):  # fmt: skip
            code = (
                f"import sys; sys.path.insert(0, {str(REPO)!r}); from benchmarks.bench_classify import bare_invoke; "
                f"from pathlib import Path; m, p = bare_invoke(Path({str(args.model)!r}), {min(args.runs, 100)}, {module!r}); "
                "import importlib.metadata as md; v = md.version("
                + repr(name if name != "tensorflow" else "tensorflow-cpu")
                + "); "
                "print(f'{v} {m:.2f} {p:.2f}')"
            )
            res = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=600, check=False)
            if res.returncode == 0:
                version, med, p95 = res.stdout.split()[-3:]
                print(f"  {name:16s} {version:8s} median {med:>7s} ms  p95 {p95:>7s} ms   ({python})")
            elif python == sys.executable:
                print(f"  {name:16s} not installed in {python}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
