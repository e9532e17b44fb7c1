"""`edge-classifier classify` as a user runs it: real subprocesses, exit codes, messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_classifier", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def test_classify_text_and_json(coral: Path, mnv2: Path) -> None:
    res = run("classify", str(coral / "cat.bmp"), str(coral / "parrot.jpg"), "--model", str(mnv2), "--top-k", "3")
    assert res.returncode == 0, res.stderr
    assert "Egyptian cat" in res.stdout and "macaw" in res.stdout
    res = run("classify", str(coral / "cat.bmp"), "--model", str(mnv2), "--json", "-v")
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout.strip())
    assert rec["classes"][0]["label"] == "Egyptian cat" and rec["classes"][0]["id"] == 285
    assert rec["backend"] == "ai-edge-litert" and rec["device"] == "cpu"
    # -v says which back-end was chosen and why.
    assert "ai-edge-litert" in res.stderr and "order" in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_image_does_not_stop_the_others(coral: Path, mnv2: Path, tmp_path: Path) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_text("nope")
    res = run("classify", str(bad), str(coral / "parrot.jpg"), "--model", str(mnv2), "--json")
    assert res.returncode == 1
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert "error" in lines[0] and "broken.jpg" in lines[0]["error"]
    assert lines[1]["classes"][0]["label"] == "macaw"
    assert "broken.jpg: is not an image" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize(
    "model, message",
    [
        ("missing.tflite", "no such model file"),
        ("model_invoking_error.tflite", "custom op 'fake-op-double'"),
        ("deeplabv3_mnv2_dm05_pascal_quant.tflite", "not an image classifier"),
        ("cat.bmp", "not a TFLite model"),
    ],
)
def test_bad_models_exit_non_zero_with_one_message(coral: Path, model: str, message: str) -> None:
    res = run("classify", str(coral / "cat.bmp"), "--model", str(coral / model), "--device", "cpu")
    assert res.returncode == 1
    assert message in res.stderr and "fix:" in res.stderr
    assert "Traceback" not in res.stderr


def test_labels_mismatch_and_usage_errors(coral: Path, mnv2: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    res = run("classify", str(coral / "cat.bmp"), "--model", str(mnv2), "--labels", str(labels))
    assert res.returncode == 1 and "2 labels but the model has 1001 outputs" in res.stderr
    res = run("classify", str(coral / "cat.bmp"), "--model", str(mnv2), "--mean", "abc")
    assert res.returncode == 2 and "not a number" in res.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--label-offset", "5000"], "label_offset=5000: is not an output of this model, which has 1001"),
        (["--device", "bogus"], "is not a valid device"),
        (["--top-k", "-1"], "-1 is not allowed"),
        (["--std", "-5"], "-5 is not allowed: it must be more than 0"),
        (["--mean", "inf"], "inf is not allowed"),
    ],
)
def test_bad_option_values_are_refused_before_any_answer(coral: Path, mnv2: Path, args: list[str], message: str) -> None:
    res = run("classify", str(coral / "cat.bmp"), "--model", str(mnv2), *args)
    assert res.returncode in (1, 2) and message in res.stderr, res.stderr
    assert res.stdout == "" and "Traceback" not in res.stderr
