"""`edge-classifier bench` measures the model for real and reports both figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_json(mnv2: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "edge_classifier", "bench", "--model", str(mnv2), "--runs", "10", "--frame", "640x480", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    assert rep["runtime"] == "ai-edge-litert" and rep["device"] == "cpu" and rep["frame"] == "640x480"
    assert 0 < rep["invoke_ms"]["median"] <= rep["invoke_ms"]["p95"]
    assert 0 < rep["classify_ms"]["median"] <= rep["classify_ms"]["p95"]
    assert (
        rep["model_bound_fps"] == round(1000 / rep["invoke_ms"]["median"], 1)
        or abs(rep["model_bound_fps"] * rep["invoke_ms"]["median"] - 1000) < 5
    )


def test_bench_rejects_a_bad_frame_size(mnv2: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "edge_classifier", "bench", "--model", str(mnv2), "--frame", "big"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 2 and "expected WxH" in res.stderr


def test_bench_refuses_frames_of_no_size_or_of_30_gigabytes(mnv2: Path) -> None:
    for frame in ("0x0", "100000x100000", "640x0", "-1x480"):
        res = subprocess.run(
            [sys.executable, "-m", "edge_classifier", "bench", "--model", str(mnv2), f"--frame={frame}"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert "argument --frame" in res.stderr and (
            "each side must be in [1, 8192]" in res.stderr or "expected WxH" in res.stderr
        )


def test_synthetic_frame_matches_the_ramp_it_replaced() -> None:
    import numpy as np

    from edge_classifier.cli.bench import synthetic_frame

    h, w = 48, 64
    yy, xx = np.mgrid[0:h, 0:w]
    old = np.stack([xx * 255 // (w - 1), yy * 255 // (h - 1), (xx + yy) % 256], axis=2).astype(np.uint8)
    assert np.array_equal(synthetic_frame(w, h), old)
    assert synthetic_frame(1, 1).shape == (1, 1, 3)
