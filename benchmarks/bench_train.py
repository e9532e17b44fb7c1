"""Training benchmark: `edge-convert train` on ../shared/testdata/insects/train, time, memory and accuracy.

    python benchmarks/bench_train.py [--seed 0] [--fine-tune 2] [--no-lite0]

Each run is a child process (``python -m edge_classifier.convert.train_cli``) on the same seeded split (20 % of each
class held out): wall time, CPU time (user + system; on a shared machine the wall time grows with the load, the
CPU time does not) and the child's peak RSS, then float and INT8 accuracy on the held-out photos from its report.

Runs, side by side:

- baseline: a plain logistic regression on EfficientNet-Lite0's pooled features, whole-centre framing, no
  augmentation (the ~94 % reference of the insects README), measured here on the same split;
- the head-only default (goal: at most 3 minutes and 2.5 GB on 2 cores; INT8 >= 95 %, within 1 point of float);
- head-only on EfficientNet-Lite0 (the smallest base, fastest on a Raspberry Pi's CPU);
- the default plus ``--fine-tune N``.

One split of 49 photos moves in steps of 2 points, so ``--splits N`` (default 10) also trains the float head of
each configuration on N seeded splits of cached features (one base pass per photo and augmented copy, in a child)
and prints the mean held-out accuracy: the baseline, Lite0 and the default, same splits.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
INSECTS = REPO.parent / "shared" / "testdata" / "insects" / "train"
GOAL_S, GOAL_MB = 180.0, 2560.0


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_child(args: list[str]) -> tuple[float, float, str]:
    """Run a child Python; return (wall s, CPU s, stdout)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    cpu0, t0 = _cpu_children(), time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=1800, check=False)
    wall, cpu = time.perf_counter() - t0, _cpu_children() - cpu0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed:\n{proc.stderr[-3000:]}")
    return wall, cpu, proc.stdout


def train_run(data: Path, out: Path, extra: list[str]) -> dict[str, Any]:
    """One `edge-convert train` in a child; its report plus wall and CPU time."""
    wall, cpu, _ = run_child(["-m", "edge_classifier.convert.train_cli", str(data), "-o", str(out), "--no-progress", *extra])
    report = json.loads(next(out.glob("*_train_report.json")).read_text(encoding="utf-8"))
    return {"wall": wall, "cpu": cpu, "rss": report["peak_rss_mb"], "report": report}


def baseline_child(data: Path, seed: int) -> None:
    """In a child: plain logistic regression on Lite0 features, whole centre square, no augmentation (prints JSON)."""
    import numpy as np

    from edge_classifier.convert.train import batched_predict, load_base, train_head
    from edge_classifier.convert.train_data import load_photos, model_input, scan_folder, stratified_split

    base = load_base("efficientnet-lite0", crop_fraction=1.0)
    photos = load_photos(scan_folder(data), 2 * base.spec.input_size[0], progress=False)
    tr, va = stratified_split(photos.labels, 0.2, seed)
    feats = batched_predict(base.model, lambda i: model_input(photos.images[i], base.spec), len(photos.labels), 32, False, "")
    head = train_head(feats[tr], photos.labels[tr], len(photos.classes), x_val=feats[va], y_val=photos.labels[va], seed=seed).head
    acc = float(np.mean(head.scores(feats[va]).argmax(1) == photos.labels[va]))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"float_accuracy": acc, "images": int(len(va)), "rss": rss}))


def splits_child(data: Path, n_splits: int) -> None:
    """In a child: mean held-out float accuracy of the head over ``n_splits`` seeded splits, per configuration (JSON)."""
    import numpy as np

    from edge_classifier.convert.train import DEFAULT_AUGMENT, DEFAULT_BASE, batched_predict, load_base, train_head
    from edge_classifier.convert.train_data import augmented_input, load_photos, model_input, scan_folder, stratified_split

    configs = (("baseline: LR on Lite0, no aug", "efficientnet-lite0", 1.0, 0),
               ("head on efficientnet-lite0", "efficientnet-lite0", None, DEFAULT_AUGMENT),
               (f"default: head on {DEFAULT_BASE}", DEFAULT_BASE, None, DEFAULT_AUGMENT))  # fmt: skip
    out = {}
    for label, name, crop, copies in configs:
        base = load_base(name, crop_fraction=crop)
        photos = load_photos(scan_folder(data), 2 * base.spec.input_size[0], progress=False)
        n = len(photos.labels)
        rng = np.random.default_rng(0)

        def make(i: int, base: Any = base, photos: Any = photos, n: int = n, rng: Any = rng) -> Any:
            rgb = photos.images[i % n]
            return model_input(rgb, base.spec) if i < n else augmented_input(rgb, base.spec, rng)

        feats = batched_predict(base.model, make, n * (1 + copies), 32, False, "").reshape(1 + copies, n, -1)
        accs = []
        for seed in range(n_splits):
            tr, va = stratified_split(photos.labels, 0.2, seed)
            x = feats[:, tr].reshape(-1, feats.shape[-1])
            y = np.tile(photos.labels[tr], 1 + copies)
            head = train_head(x, y, len(photos.classes), x_val=feats[0, va], y_val=photos.labels[va], seed=seed).head
            accs.append(float(np.mean(head.scores(feats[0, va]).argmax(1) == photos.labels[va])))
        out[label] = {"mean": float(np.mean(accs)), "min": float(np.min(accs)), "max": float(np.max(accs)), "val": int(len(va))}
    print(json.dumps(out))


def main() -> int:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=INSECTS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fine-tune", type=int, default=2, help="blocks for the fine-tuning run (0: skip it)")
    ap.add_argument("--no-lite0", action="store_true", help="skip the EfficientNet-Lite0 head-only run")
    ap.add_argument("--splits", type=int, default=10, help="seeded splits for the float-head accuracy table (0: skip it)")
    ap.add_argument("--baseline-child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--splits-child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    if args.baseline_child:
        baseline_child(args.data, args.seed)
        return 0
    if args.splits_child:
        splits_child(args.data, args.splits)
        return 0
    if not args.data.is_dir():
        raise SystemExit(f"{args.data} is absent: python scripts/fetch_testdata.py --insects fetches it")

    from edge_classifier.convert.train import DEFAULT_BASE

    print(f"== edge-convert train on {args.data} ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start)")
    rows: list[tuple[str, dict[str, Any]]] = []
    wall, cpu, out = run_child([__file__, "--baseline-child", "--data", str(args.data), "--seed", str(args.seed)])
    b = json.loads(out.strip().splitlines()[-1])
    rows.append(
        (
            "baseline: LR on Lite0, no aug",
            {"wall": wall, "cpu": cpu, "rss": b["rss"], "float": b["float_accuracy"], "int8": None, "n": b["images"]},
        )
    )
    runs: list[tuple[str, list[str]]] = [(f"default: head on {DEFAULT_BASE}", [])]
    if not args.no_lite0:
        runs.append(("head on efficientnet-lite0", ["--base", "efficientnet-lite0"]))
    if args.fine_tune:
        runs.append((f"default + --fine-tune {args.fine_tune}", ["--fine-tune", str(args.fine_tune)]))
    reports = {}
    for label, extra in runs:
        with tempfile.TemporaryDirectory() as tmp:
            r = train_run(args.data, Path(tmp), ["--seed", str(args.seed), *extra])
        v = r["report"]["validation"]
        reports[label] = r["report"]
        rows.append(
            (
                label,
                {
                    "wall": r["wall"],
                    "cpu": r["cpu"],
                    "rss": r["rss"],
                    "float": v["float_accuracy"],
                    "int8": v["int8_accuracy"],
                    "n": v["images"],
                },
            )
        )

    print(f"{'run':<34}{'wall s':>8}{'CPU s':>8}{'RSS MB':>8}{'float':>8}{'INT8':>8}{'val':>5}")
    for label, r in rows:
        q = "-" if r["int8"] is None else f"{r['int8']:.1%}"
        print(f"{label:<34}{r['wall']:8.1f}{r['cpu']:8.1f}{r['rss']:8.0f}{r['float']:8.1%}{q:>8}{r['n']:5d}")
    d = rows[1][1]
    print(
        f"\ndefault vs goal: wall {d['wall']:.0f} s (goal <= {GOAL_S:.0f} s; CPU {d['cpu']:.0f} s, "
        f"i.e. >= {d['cpu'] / 2:.0f} s on 2 idle cores), "
        f"RSS {d['rss']:.0f} MB (goal <= {GOAL_MB:.0f}), INT8 {d['int8']:.1%} (goal >= 95%), "
        f"float - INT8 {100 * (d['float'] - d['int8']):+.1f} points (goal <= 1)"
    )
    print(
        f"default vs baseline: {100 * (d['float'] - rows[0][1]['float']):+.1f} points float on the same {d['n']} held-out photos"
    )
    for label, report in reports.items():
        t, c = report["times_s"], report.get("cpu_s", {})
        stages = ", ".join(f"{k} {v:.0f}/{c.get(k, 0):.0f}" for k, v in t.items() if k != "total")
        epochs = [(h["phase"], h["epoch"]) for h in report["training"]["history"] if h.get("kept")]
        print(f"  {label}: stages (wall/CPU s) {stages}; kept epoch {epochs}")
    if args.splits:
        _, cpu, out = run_child([__file__, "--splits-child", "--data", str(args.data), "--splits", str(args.splits)])
        table = json.loads(out.strip().splitlines()[-1])
        print(
            f"\n== float head, mean held-out accuracy over {args.splits} seeded 80/20 splits "
            f"(same splits for each; {cpu:.0f} s CPU)"
        )
        for label, r in table.items():
            print(f"{label:<36}{r['mean']:8.1%}   (min {r['min']:.1%}, max {r['max']:.1%}, {r['val']} photos each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
