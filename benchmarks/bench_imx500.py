"""IMX500 conversion benchmark: EfficientNet-Lite0 for the AI Camera, beside the TFLite INT8 conversion of the same model.

    python benchmarks/bench_imx500.py [--num-calib 200]

Both conversions run as ``edge-convert convert efficientnet-lite0`` in child processes, from the same float
model, calibration photos (scikit-image's, seeded crops/flips) and validation photos (Coral's test photos):

1. ``--target tflite`` (the baseline): the INT8 .tflite, its size, and float-vs-INT8 top-1 agreement.
2. ``--target imx500``: Sony's MCT quantization and imxconv-tf in the toolchain's own environment; wall time,
   peak RSS of all the children (the toolchain's TensorFlow, imxconv's Java), the size of packerOut.zip, the share
   of the sensor's 8 MB it uses, and float-vs-quantized agreement (top-1 on the validation photos, and the
   output's cosine similarity and SQNR from MCT's own XQuant report).

The first ``--target imx500`` on a machine installs the toolchain (~750 MB from PyPI); its time is shown apart
(``toolchain`` stage). Peak RSS is the largest child's, read from the kernel (RUSAGE_CHILDREN), per conversion.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORAL = REPO.parent / "shared" / "testdata" / "coral"


def convert(target: str, photos: Path, out: Path, num_calib: int) -> tuple[float, float, dict]:
    """One conversion in a child process: (wall s, peak RSS MB of its process tree, report)."""
    cmd = [sys.executable, "-m", "edge_classifier.convert.cli", "convert", "efficientnet-lite0", "--target", target,
           "--calib", str(photos), "--augment", "--num-calib", str(num_calib), "-o", str(out), "--no-progress"]  # fmt: skip
    if CORAL.is_dir():
        cmd += ["--val", str(CORAL)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    # A child of its own per conversion, so RUSAGE_CHILDREN's peak is this conversion's (the kernel keeps the largest
    # RSS of any waited-for descendant: the converter, the toolchain's Python, imxconv's Java).
    code = (
        "import resource, subprocess, sys, json; "
        f"p = subprocess.run({cmd!r}, capture_output=True, text=True, timeout=7200); "
        "print(json.dumps({'rc': p.returncode, 'err': p.stderr[-4000:], 'out': p.stdout[-4000:], "
        "'peak_kb': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))"
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env, timeout=7300, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"the benchmark's child failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise SystemExit(f"edge-convert --target {target} failed:\n{res['err']}\n{res['out']}")
    name = "efficientnet_lite0_imx500_report.json" if target == "imx500" else "efficientnet_lite0_report.json"
    return wall, res["peak_kb"] / 1024, json.loads((out / name).read_text())


def main() -> int:
    """Run both conversions and print the figures side by side."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-calib", type=int, default=200)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from edge_classifier.convert.sample_images import write_samples

    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        write_samples(photos)
        t_wall, t_peak, t_rep = convert("tflite", photos, Path(tmp) / "tflite", args.num_calib)
        i_wall, i_peak, i_rep = convert("imx500", photos, Path(tmp) / "imx500", args.num_calib)

    q = i_rep["quantization"]
    xq = (q.get("xquant_readable") or {}).get("validation") or {}
    mem = i_rep["imx500"]["memory_report"] or {}
    v = t_rep["validation"]
    print(
        f"== efficientnet-lite0 224x224, {args.num_calib} calibration samples, {os.cpu_count()} cores, "
        f"validation: {v['images']} photos"
    )
    print(f"{'':24}{'tflite INT8 (baseline)':>26}{'imx500 (MCT + imxconv)':>26}")
    print(f"{'wall time':24}{t_wall:>24.1f} s{i_wall:>24.1f} s")
    print(f"{'  of which toolchain set-up':24}{'':>26}{i_rep['times_s'].get('toolchain', 0.0):>24.1f} s")
    print(f"{'peak RSS (largest child)':24}{t_peak:>23.0f} MB{i_peak:>23.0f} MB")
    t_size = t_rep["output"]["size_bytes"]
    i_size = i_rep["output"]["size_bytes"]
    print(f"{'output size':24}{t_size / 1e6:>23.2f} MB{i_size / 1e6:>23.2f} MB   (.tflite / packerOut.zip)")
    print(f"{'top-1 agreement w/ float':24}{v['top1_agreement']:>25.1%}{q['agreement']['top1_agreement']:>26.1%}")
    if xq:
        print(
            f"{'MCT XQuant (validation)':24}{'':>26}   cosine {xq['cosine_similarity']:.4f}, "
            f"SQNR {xq['sqnr_db']} dB, MSE {xq['mse']:.2e}"
        )
    print(f"{'IMX500 memory':24}{'':>26}{mem.get('Memory Usage', '?'):>20} of {mem.get('Total Memory Available On Chip', '?')}")
    print(f"\nimx500 stages: {i_rep['times_s']}")
    print(f"tflite stages: {t_rep['times_s']}")
    print(f"toolchain: {json.dumps(i_rep['toolchain']['versions'])}; {i_rep['toolchain']['java']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
