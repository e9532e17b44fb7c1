"""The edgetpu_compiler wrapper, run against FakeEdgeTpuCompiler: an executable script this test writes.

The real compiler only exists for x86-64 Debian and cannot be installed here, so the fake stands in for
the binary alone: it prints real compiler output from the fixtures and writes real compiled models copied
from the Coral pairs, while the wrapper's search, arguments, timeout, checks, parsing and file handling
all run for real.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_classifier.convert.edgetpu_cli import EXIT_NOT_FULLY_MAPPED, main_compile
from edge_classifier.convert.edgetpu_compiler import CompileOptions, compile_model, compiler_version, find_compiler
from edge_classifier.errors import CompilerError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORAL = SHARED / "testdata" / "coral"
LOGS = SHARED / "reference" / "edgetpu" / "compiler_logs"

FAKE_SOURCE = r'''#!{python}
"""FakeEdgeTpuCompiler: behaves as its config.json (beside it) says."""
import json, os, shutil, subprocess, sys, time
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
if args == ["--version"]:
    print("Edge TPU Compiler version 16.0.384591198")
    sys.exit(0)
cfg = json.load(open(os.path.join(here, "config.json")))
json.dump(args, open(os.path.join(here, "last_args.json"), "w"))
out_dir = args[args.index("-o") + 1]
stem = os.path.splitext(os.path.basename(args[-1]))[0]
target = os.path.join(out_dir, stem + "_edgetpu.tflite")
mode = cfg["mode"]
if mode in ("hang", "fail"):
    with open(target, "wb") as f:
        f.write(b"half-written")
if mode == "hang":
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    open(os.path.join(here, "child.pid"), "w").write(str(child.pid))
    time.sleep(60)
sys.stdout.write(open(cfg["console"]).read())
sys.stdout.flush()
if mode == "ok" or mode == "stub" or mode == "fail_exit0":
    shutil.copyfile(cfg["compiled"], target)
    if cfg.get("logfile"):
        shutil.copyfile(cfg["logfile"], os.path.join(out_dir, stem + "_edgetpu.log"))
sys.exit(cfg.get("exit", 0))
'''


def _block(name: str, index: int = 0) -> str:
    blocks = re.split(r"^#----.*$", (LOGS / name).read_text(), flags=re.M)
    return "\n".join(line for line in blocks[index].splitlines() if not line.startswith("#")) + "\n"


class FakeEdgeTpuCompiler:
    """Writes the fake ``edgetpu_compiler`` into a folder and configures what it does next."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "edgetpu_compiler"
        self.path.write_text(FAKE_SOURCE.replace("{python}", sys.executable))
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def configure(
        self, mode: str, *, console: str, compiled: Path | None = None, logfile: str | None = None, exit_code: int = 0
    ) -> None:
        (self.folder / "console.txt").write_text(console)
        cfg = {
            "mode": mode,
            "console": str(self.folder / "console.txt"),
            "exit": exit_code,
            "compiled": str(compiled) if compiled else None,
        }
        if logfile is not None:
            (self.folder / "logfile.txt").write_text(logfile)
            cfg["logfile"] = str(self.folder / "logfile.txt")
        (self.folder / "config.json").write_text(json.dumps(cfg))

    @property
    def last_args(self) -> list[str]:
        return list(json.loads((self.folder / "last_args.json").read_text()))


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeEdgeTpuCompiler:
    compiler = FakeEdgeTpuCompiler(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{compiler.folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return compiler


@pytest.fixture
def model(tmp_path: Path) -> Callable[[str], Path]:
    """A private copy of a Coral model, so outputs land in tmp_path beside it."""

    def copy(name: str) -> Path:
        dst = tmp_path / "models" / name
        dst.parent.mkdir(exist_ok=True)
        dst.write_bytes((CORAL / name).read_bytes())
        return dst

    return copy


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".edgetpu-compile-") or "_edgetpu" in p.name)


def test_compiles_deeplab_and_compares_with_the_prediction(
    fake: FakeEdgeTpuCompiler, model: Callable[[str], Path], tmp_path: Path
) -> None:
    src = model("deeplabv3_mnv2_dm05_pascal_quant.tflite")
    fake.configure(
        "ok",
        console=_block("02_v15.0_console_show_operations_yolo.txt"),
        compiled=CORAL / "deeplabv3_mnv2_dm05_pascal_quant_edgetpu.tflite",
        logfile=_block("01_v14.1_logfile_tiny_yolo.txt"),
    )
    result = compile_model(src, options=CompileOptions(min_runtime_version=13, multiple_subgraphs=False))
    assert result.output_path == src.parent / "deeplabv3_mnv2_dm05_pascal_quant_edgetpu.tflite"
    assert result.output_path.read_bytes() == (CORAL / "deeplabv3_mnv2_dm05_pascal_quant_edgetpu.tflite").read_bytes()
    assert result.log_path is not None and result.log_path.exists()
    assert result.compiler_version == "16.0.384591198"
    assert result.log.counts["total_ops"] == 36 and len(result.log.rows) == 9  # the console's table wins
    assert result.actual_cpu_ops[0] == "RESIZE_BILINEAR" and not result.fully_mapped
    assert result.comparison is not None and result.comparison["match"]
    assert "prediction matched" in result.format_text()
    args = fake.last_args
    assert args[-1] == str(src.resolve()) and "-s" in args and args[args.index("-m") + 1] == "13"
    assert _leftovers(src.parent) == [
        "deeplabv3_mnv2_dm05_pascal_quant_edgetpu.log",
        "deeplabv3_mnv2_dm05_pascal_quant_edgetpu.tflite",
    ]


def test_options_pass_through_as_an_argument_list(
    fake: FakeEdgeTpuCompiler, model: Callable[[str], Path], tmp_path: Path
) -> None:
    src = model("mobilenet_v1_0.25_128_quant.tflite")
    fake.configure(
        "ok",
        console=_block("03_v16.0_console_and_logfile_efficientdet.txt"),
        compiled=CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
    )
    out = tmp_path / "out dir with spaces"
    opts = CompileOptions(
        num_segments=1,
        multiple_subgraphs=True,
        search_delegate=True,
        delegate_search_step=4,
        intermediate_tensors=("a", "b"),
        compiler_timeout_s=120,
    )
    result = compile_model(src, out_dir=out, options=opts)
    args = fake.last_args
    assert args == ["-s", "-n", "1", "-a", "-d", "-k", "4", "-i", "a,b", "-t", "120", "-o", args[-2], str(src.resolve())]
    assert Path(args[-2]).parent == out and not Path(args[-2]).exists()  # the private folder is gone
    assert result.fully_mapped and result.comparison == {**result.comparison, "match": True}
    assert result.log.timeout_s == 180 and result.log_path is None
    assert _leftovers(out) == ["mobilenet_v1_0.25_128_quant_edgetpu.tflite"]


def test_a_failing_compiler_is_one_clear_error_and_leaves_nothing(
    fake: FakeEdgeTpuCompiler, model: Callable[[str], Path]
) -> None:
    src = model("mobilenet_v1_0.25_128_quant.tflite")
    fake.configure("fail", console=_block("06_failure_outputs_various_versions.txt", 1), exit_code=1)
    with pytest.raises(CompilerError) as err:
        compile_model(src)
    message = str(err.value)
    assert "exit 1" in message and "'QUANTIZE' version '3'" in message and "older TensorFlow" in err.value.fix
    assert _leftovers(src.parent) == []


def test_failure_reported_with_exit_status_zero_is_still_a_failure(
    fake: FakeEdgeTpuCompiler, model: Callable[[str], Path]
) -> None:
    src = model("mobilenet_v1_0.25_128_quant.tflite")
    fake.configure(
        "fail_exit0",
        console=_block("06_failure_outputs_various_versions.txt", 3),
        compiled=CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite",
    )
    with pytest.raises(CompilerError, match="large activation tensors"):
        compile_model(src)
    assert _leftovers(src.parent) == []


@pytest.mark.parametrize("stub", ["zeros", "uncompiled"])
def test_a_stub_output_is_refused(fake: FakeEdgeTpuCompiler, model, tmp_path: Path, stub: str) -> None:
    src = model("mobilenet_v1_0.25_128_quant.tflite")
    if stub == "zeros":
        written = tmp_path / "stub.tflite"
        written.write_bytes(bytes(1024))
    else:
        written = CORAL / "mobilenet_v1_0.25_128_quant.tflite"  # a valid model with no edgetpu-custom-op
    fake.configure("stub", console=_block("03_v16.0_console_and_logfile_efficientdet.txt"), compiled=written)
    with pytest.raises(CompilerError, match="unreadable model|without an edgetpu-custom-op"):
        compile_model(src)
    assert _leftovers(src.parent) == []


def test_a_hanging_compiler_is_stopped_with_its_children(fake: FakeEdgeTpuCompiler, model: Callable[[str], Path]) -> None:
    src = model("mobilenet_v1_0.25_128_quant.tflite")
    fake.configure("hang", console="")
    started = time.monotonic()
    with pytest.raises(CompilerError, match="did not finish within 2 s"):
        compile_model(src, timeout=2)
    assert time.monotonic() - started < 20
    assert _leftovers(src.parent) == []
    child = int((fake.folder / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.1)
    assert not _alive(child), "the compiler's child process outlived the timeout"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie awaiting its (killed) parent's reaper counts as gone.
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")


def test_missing_compiler_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CompilerError) as err:
        find_compiler()
    assert "not found on PATH" in err.value.cause
    assert "apt-get install edgetpu-compiler" in err.value.fix and "docker run" in err.value.fix
    with pytest.raises(CompilerError, match="not an executable"):
        find_compiler(tmp_path / "nowhere" / "edgetpu_compiler")


def test_compiler_given_by_path_and_its_version(fake: FakeEdgeTpuCompiler, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_compiler(fake.path) == fake.path
    assert compiler_version(fake.path) == "16.0.384591198"


def test_cli_compile_json_and_require_full(
    fake: FakeEdgeTpuCompiler, model: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src = model("posenet_mobilenet_v1_075_353_481_16_quant_decoder.tflite")
    fake.configure(
        "ok",
        console=_block("04_v16.0_console_multisubgraph_yolov5.txt"),
        compiled=CORAL / "posenet_mobilenet_v1_075_353_481_16_quant_decoder_edgetpu.tflite",
    )
    assert main_compile([str(src), "--compiler", str(fake.path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["actual_cpu_ops"] == ["PosenetDecoderOp"] and payload["prediction_matches"] is True
    assert main_compile([str(src), "--require-full"]) == EXIT_NOT_FULLY_MAPPED
    fake.configure("fail", console=_block("06_failure_outputs_various_versions.txt", 0), exit_code=1)
    assert main_compile([str(src)]) == 1
    assert "Model not quantized" in capsys.readouterr().err
