"""``edge-convert`` as a user meets it: subcommands, the old form, a missing extra, bad folders, a quiet stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from edge_classifier.convert.cli import SUBCOMMANDS, main
from edge_classifier.convert.cli_support import NOISE, filtered_stderr, is_noise
from tests.conftest import REPO

# Runs edge-convert with TensorFlow and Keras unimportable, as on an install without the [convert] extra.
WITHOUT_TF = (
    "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; "
    "from edge_classifier.convert.cli import main; sys.exit(main(sys.argv[1:]))"
)


def edge_convert(
    *args: str, cwd: Path = REPO, without_tf: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    code = WITHOUT_TF if without_tf else "import sys; from edge_classifier.convert.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False
    )


def test_help_lists_the_subcommands() -> None:
    res = edge_convert("--help")
    assert res.returncode == 0, res.stderr
    usage = res.stdout.splitlines()[0]
    for name in ("convert", "analyze", "compile"):
        assert name in usage and f"    {name} " in res.stdout
    # train appears exactly when its module is there (another module of the converter).
    assert ("train" in usage) == (REPO / "converters" / "train_cli.py").is_file()
    assert set(SUBCOMMANDS) >= {"convert", "analyze", "compile", "train"}
    res = edge_convert()
    assert res.returncode == 2 and "required: command" in res.stderr


def test_a_missing_extra_is_one_line_with_the_pip_command_of_this_install(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    res = edge_convert("convert", "mobilenet_v2", "--calib", str(photos), "-o", str(tmp_path / "out"), without_tf=True)
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    # This checkout is installed editable (scripts/test.sh): the fix is the editable form, run from the checkout.
    assert "[convert] extra" in lines[0] and 'pip install -e ".[convert]"' in lines[0] and "'tensorflow'" in lines[0]
    assert not (tmp_path / "out").exists()
    # From another folder, "." would be wrong: the checkout's path is named instead.
    res = edge_convert("convert", "mobilenet_v2", "--calib", str(photos), cwd=tmp_path, without_tf=True)
    assert res.returncode == 1 and f'pip install -e "{REPO}[convert]"' in res.stderr and "Traceback" not in res.stderr


def test_the_old_form_still_converts_with_a_deprecation_note(tmp_path: Path) -> None:
    res = edge_convert("mobilenet_v2", "--calib", str(tmp_path), "-o", str(tmp_path / "out"), without_tf=True)
    assert res.returncode == 1
    note, error = res.stderr.splitlines()
    assert "deprecated" in note and "edge-convert convert MODEL" in note
    assert "[convert] extra" in error  # it went to `convert`, which needs the extra
    # With TensorFlow present, the old form reaches the converter itself (which refuses an unknown model name).
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(photos / "red.png")
    res = edge_convert("no_such_model", "--calib", str(photos), "-o", str(tmp_path / "out"))
    assert res.returncode == 1 and "is neither a known model name nor an existing file" in res.stderr
    assert "deprecated" in res.stderr and "Traceback" not in res.stderr


def test_an_output_folder_that_is_a_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "out.txt"
    a_file.write_text("not a folder")
    assert main(["convert", "mobilenet_v2", "--calib", str(tmp_path), "-o", str(a_file)]) == 1
    err = capsys.readouterr().err
    assert f"-o {a_file}: is a file, not a folder" in err and "File exists" not in err
    assert main(["convert", "mobilenet_v2", "--calib", str(tmp_path), "-o", str(a_file / "sub")]) == 1
    assert "which is a file, not a folder" in capsys.readouterr().err
    model = tmp_path / "m.tflite"
    model.write_bytes(b"")
    assert main(["compile", str(model), "--out-dir", str(a_file)]) == 1
    assert f"--out-dir {a_file}: is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num-calib", "0"], "0 is not allowed"),
        (["--num-calib", "1e9"], "is not a whole number"),
        (["--std", "0"], "must be more than 0"),
        (["--mean", "nan"], "finite"),
        (["--input-size", "100000"], "8 to 4096"),
        (["--min-agreement", "nan"], "between 0 and 1"),
        (["--crop-fraction", "1.5"], "must be in (0, 1]"),
    ],
)
def test_bad_convert_options_are_usage_errors(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["convert", "mobilenet_v2", "--calib", str(tmp_path), *args])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_filtered_stderr_drops_only_the_native_noise(capfd: pytest.CaptureFixture[str]) -> None:
    noise = [
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        b"I0000 00:00:1796031602.918353   30678 port.cc:153] oneDNN custom operations are on. You may see ...\n",
        b"fully_quantize: 0, inference_type: 6, input_inference_type: UINT8, output_inference_type: UINT8\n",
        b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n",
    ]
    kept = [b"calibrating:  50%|#####     | 1/2\r", b"calibrating: 100%|##########| 2/2\r\n", b"error: something real\n",
            b"I am a line that starts like absl's\n", b"W0000 00:00:1.0 1 x.cc:1] an absl warning stays\n"]  # fmt: skip
    with filtered_stderr():
        for line in [kept[0], noise[0], noise[1], kept[1], noise[2], kept[2], noise[3], kept[3], kept[4]]:
            os.write(2, line)  # what C++ code does: straight to the file descriptor
        os.write(2, b"no newline at the end")
        sys.stderr.write("from Python\n")  # one write: Python's own stream (pytest may capture it apart from the descriptor)
        sys.stderr.flush()
    err = capfd.readouterr().err
    assert err.replace("from Python\n", "") == "".join(x.decode() for x in kept) + "no newline at the end"
    assert "from Python\n" in err
    assert all(is_noise(n.rstrip(b"\n")) for n in noise) and len(NOISE) >= 4


@pytest.mark.slow
def test_a_conversion_prints_no_tensorflow_noise(tmp_path: Path) -> None:
    """A real conversion (tiny random MobileNetV3): stderr holds none of TensorFlow's native lines; -v shows them."""
    pytest.importorskip("tensorflow")
    from edge_classifier.convert.sample_images import write_samples

    photos = tmp_path / "photos"
    write_samples(photos)
    args = ["convert", "mobilenet_v3_small_minimalistic", "--weights", "none", "--calib", str(photos), "--input-size", "96",
            "--num-calib", "3", "--max-val", "2", "--no-progress", "-o", str(tmp_path / "out")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    res = subprocess.run([sys.executable, "-m", "edge_classifier.convert.cli", *args], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path, env=env, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "wrote" in res.stdout
    for needle in ("fully_quantize", "absl::InitializeLog", "oneDNN", "XNNPACK", "Traceback"):
        assert needle not in res.stderr, res.stderr
    res = subprocess.run([sys.executable, "-m", "edge_classifier.convert.cli", *args, "-v"], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path, env=env, check=False)  # fmt: skip
    assert res.returncode == 0 and "fully_quantize" in res.stderr
