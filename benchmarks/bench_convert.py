"""Converter benchmark: conversion time and peak memory, INT8 vs float invoke time, validation table.

    python benchmarks/bench_convert.py [--num-calib 200] [--runs 50]

1. ``edge-convert efficientnet-lite0`` with N calibration samples (scikit-image photos, seeded
   crops/flips) in a child process: wall time and the child's peak RSS (goal: < 2 min, < 2 GB
   for 224x224 and 200 samples on 2 cores).
2. The same Keras model converted to a *float* TFLite file (the baseline), then float vs INT8
   ``invoke()`` on this CPU with ai-edge-litert: medians, p95 and the ratio.
3. The float-vs-INT8 validation table from the conversion report.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORAL = REPO.parent / "shared" / "testdata" / "coral"


def convert_in_child(photos: Path, out: Path, num_calib: int) -> tuple[float, float, dict]:
    """Run edge-convert in a child process; return (wall s, peak RSS MB, report)."""
    cmd = [sys.executable, "-m", "edge_classifier.convert.cli", "efficientnet-lite0", "--calib", str(photos), "--augment",
           "--num-calib", str(num_calib), "-o", str(out), "--no-progress"]  # fmt: skip
    if CORAL.is_dir():
        cmd += ["--val", str(CORAL)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=900, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"edge-convert failed:\n{proc.stderr[-3000:]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    report = json.loads((out / "efficientnet_lite0_report.json").read_text())
    return wall, peak_mb, report


def float_tflite(path: Path) -> None:
    """The float32 TFLite twin of the same Keras model (no quantization): the baseline."""
    import tensorflow as tf

    from edge_classifier.convert.efficientnet_lite import load_variant

    model, _, _ = load_variant("efficientnet-lite0")
    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the whole signature
        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def time_invoke(path: Path, runs: int, threads: int) -> tuple[float, float]:
    """Median and p95 ms of invoke() on a fixed input."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    x = (np.random.default_rng(0).integers(0, 255, d["shape"]).astype(d["dtype"]) if d["dtype"] != np.float32
         else np.random.default_rng(0).uniform(-1, 1, d["shape"]).astype(np.float32))  # fmt: skip
    it.set_tensor(d["index"], x)
    for _ in range(5):
        it.invoke()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        it.invoke()
        ts.append((time.perf_counter() - t0) * 1000)
    return float(np.median(ts)), float(np.percentile(ts, 95))


def main() -> int:
    """Run the benchmark and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-calib", type=int, default=200)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from edge_classifier.convert.sample_images import write_samples

    with tempfile.TemporaryDirectory() as tmp:
        photos, out = Path(tmp) / "photos", Path(tmp) / "out"
        write_samples(photos)
        wall, peak_mb, report = convert_in_child(photos, out, args.num_calib)
        int8 = out / "efficientnet_lite0_int8.tflite"
        flt = Path(tmp) / "efficientnet_lite0_float.tflite"
        float_tflite(flt)
        f_med, f_p95 = time_invoke(flt, args.runs, args.threads)
        q_med, q_p95 = time_invoke(int8, args.runs, args.threads)
        f_size, q_size = flt.stat().st_size, int8.stat().st_size

    print(f"== conversion: efficientnet-lite0 224x224, {args.num_calib} calibration samples, {os.cpu_count()} cores")
    print(f"{'wall time':<22}{wall:8.1f} s    (goal < 120 s)   stages: {report['times_s']}")
    print(f"{'peak RSS (child)':<22}{peak_mb:8.0f} MB   (goal < 2048 MB)")
    print(f"\n== invoke on this CPU (ai-edge-litert, {args.threads} threads, {args.runs} runs)")
    print(f"{'model':<10}{'size MB':>9}{'median ms':>11}{'p95 ms':>9}")
    print(f"{'float32':<10}{f_size / 1e6:9.2f}{f_med:11.2f}{f_p95:9.2f}")
    print(f"{'int8':<10}{q_size / 1e6:9.2f}{q_med:11.2f}{q_p95:9.2f}")
    print(f"INT8 / float median ratio: {q_med / f_med:.2f}x   size ratio: {q_size / f_size:.2f}x")
    v = report["validation"]
    print(f"\n== validation ({v['images']} images, held out: {v['held_out']})")
    print(
        f"top-1 agreement {v['top1_agreement']:.1%}  top-5 overlap {v['top5_overlap']:.1%}  "
        f"mean TV distance {v['mean_total_variation']:.4f}"
    )
    print(f"{'image':<22}{'float':<28}{'int8':<28}agree")
    for r in v["rows"]:
        fcol = "{} {:.2f}".format(r["float"]["label"][:20], r["float"]["score"])
        qcol = "{} {:.2f}".format(r["int8"]["label"][:20], r["int8"]["score"])
        print(f"{Path(r['image']).name:<22}{fcol:<28}{qcol:<28}{r['agree']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
