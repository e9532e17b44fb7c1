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
    assert rep["model_bound_fps"] == round(1000 / rep["invoke_ms"]["median"], 1) or abs(rep["model_bound_fps"] * rep["invoke_ms"]["median"] - 1000) < 5


def test_bench_rejects_a_bad_frame_size(mnv2: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "edge_classifier", "bench", "--model", str(mnv2), "--frame", "big"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert res.returncode == 2 and "expected WxH" in res.stderr
