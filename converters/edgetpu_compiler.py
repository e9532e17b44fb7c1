"""Run Google's edgetpu_compiler safely: found, versioned, time-limited, checked, and atomic.

The compiler runs with an argument list (never a shell string) in a private temporary folder beside the
destination; its outputs are moved into place only when the exit status is 0, the console does not report
a failure, and every ``*_edgetpu.tflite`` really holds an ``edgetpu-custom-op`` (a 1 KB stub does not).
On any failure, timeout or Ctrl-C the temporary folder is removed, so nothing half-written is left.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_classifier.errors import CompilerError, EdgeClassifierError
from edge_classifier.tflite_file import EDGETPU_CUSTOM_OP, parse_model, read_model_bytes

from .edgetpu_analysis import EdgeTpuReport, compare_cpu_ops, predict
from .edgetpu_log import CompilerLog, merge_logs, parse_compiler_output

COMPILER_NAME = "edgetpu_compiler"
DEFAULT_TIMEOUT_S = 600.0
VERSION_TIMEOUT_S = 30.0

INSTALL_HELP = (
    "install it on Debian/Ubuntu x86-64: "
    "curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg "
    "| sudo gpg --dearmor -o /usr/share/keyrings/coral-edgetpu.gpg && "
    'echo "deb [signed-by=/usr/share/keyrings/coral-edgetpu.gpg] '
    'https://packages.cloud.google.com/apt coral-edgetpu-stable main" '
    "| sudo tee /etc/apt/sources.list.d/coral-edgetpu.list && sudo apt-get update && sudo apt-get install edgetpu-compiler; "
    "elsewhere (macOS, Windows, ARM, Raspberry Pi) run it in an x86-64 Debian container: "
    'docker run --rm --platform linux/amd64 -v "$PWD:/work" -w /work edgetpu-compiler model_int8.tflite '
    "(image built from the Dockerfile in the README's Edge TPU section); or pass --compiler PATH"
)


@dataclass(frozen=True)
class CompileOptions:
    """edgetpu_compiler options passed through (each maps to the flag in brackets).

    Attributes:
        min_runtime_version: ``-m``: the lowest Edge TPU runtime the model must run on.
        num_segments: ``-n``: split the model for pipelining over several Edge TPUs.
        multiple_subgraphs: ``-a``: let supported ops after a CPU op form more Edge TPU subgraphs.
        search_delegate: ``-d``: on failure, search for the largest part that compiles.
        delegate_search_step: ``-k``: step size of that search.
        intermediate_tensors: ``-i``: tensor names to expose as outputs of the Edge TPU part.
        compiler_timeout_s: ``-t``: the compiler's own timer (16.0 only).
    """

    min_runtime_version: int | None = None
    num_segments: int | None = None
    multiple_subgraphs: bool = False
    search_delegate: bool = False
    delegate_search_step: int | None = None
    intermediate_tensors: tuple[str, ...] = ()
    compiler_timeout_s: int | None = None

    def to_args(self) -> list[str]:
        """The flags, as a list for subprocess."""
        args: list[str] = ["-s"]
        if self.min_runtime_version is not None:
            args += ["-m", str(self.min_runtime_version)]
        if self.num_segments is not None:
            args += ["-n", str(self.num_segments)]
        if self.multiple_subgraphs:
            args.append("-a")
        if self.search_delegate:
            args.append("-d")
        if self.delegate_search_step is not None:
            args += ["-k", str(self.delegate_search_step)]
        if self.intermediate_tensors:
            args += ["-i", ",".join(self.intermediate_tensors)]
        if self.compiler_timeout_s is not None:
            args += ["-t", str(self.compiler_timeout_s)]
        return args


@dataclass
class CompileResult:
    """What a successful compilation produced.

    Attributes:
        output_path: the (first) compiled ``*_edgetpu.tflite``.
        output_paths: every compiled file (several with ``num_segments``).
        log_path: the compiler's ``.log`` file in its final place, if it wrote one.
        compiler_version: e.g. ``16.0.384591198``.
        log: the parsed console output merged with the .log file.
        prediction: the offline analysis of the input model.
        actual_cpu_ops: ops left outside the edgetpu-custom-op in the compiled file.
        comparison: prediction vs. reality (see :func:`converters.edgetpu_analysis.compare_cpu_ops`).
        console: the compiler's raw console output.
        args: the exact argument list run.
    """

    output_path: Path
    output_paths: list[Path]
    log_path: Path | None
    compiler_version: str
    log: CompilerLog
    prediction: EdgeTpuReport | None
    actual_cpu_ops: tuple[str, ...]
    comparison: dict[str, Any] | None
    console: str = ""
    args: list[str] = field(default_factory=list)

    @property
    def fully_mapped(self) -> bool:
        """True when the compiled model runs entirely on the Edge TPU."""
        return not self.actual_cpu_ops

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "output": str(self.output_path),
            "outputs": [str(p) for p in self.output_paths],
            "log_file": str(self.log_path) if self.log_path else None,
            "compiler_version": self.compiler_version,
            "fully_mapped": self.fully_mapped,
            "actual_cpu_ops": list(self.actual_cpu_ops),
            "prediction_matches": self.comparison["match"] if self.comparison else None,
            "comparison": self.comparison,
            "log": self.log.to_dict(),
            "args": self.args,
        }

    def format_text(self) -> str:
        """A human-readable summary with the compiler's operator table."""
        lines = [f"Compiled with edgetpu_compiler {self.compiler_version}: {self.output_path}"]
        if self.log.fields.get("output_size"):
            lines.append(
                f"  size {self.log.fields.get('output_size')}, "
                f"on-chip parameters {self.log.fields.get('on_chip_memory_used', '?')}, "
                f"off-chip {self.log.fields.get('off_chip_memory_used', '?')}, Edge TPU subgraphs "
                f"{self.log.counts.get('edgetpu_subgraphs', '?')}"
            )
        lines += ["", f"{'Operator':<30} {'Count':<10} Status"]
        lines += [f"{r.operator:<30} {r.count:<10} {r.status}" for r in self.log.rows]
        lines.append("")
        lines.append("Runs entirely on the Edge TPU." if self.fully_mapped else f"On the CPU: {', '.join(self.actual_cpu_ops)}")
        if self.comparison is not None:
            if self.comparison["match"]:
                lines.append("The offline prediction matched the compiler.")
            else:
                lines.append(
                    "The offline prediction differed: predicted only "
                    f"{self.comparison['predicted_only'] or 'nothing'}, "
                    f"compiler only {self.comparison['actual_only'] or 'nothing'}."
                )
        return "\n".join(lines)


def find_compiler(compiler: str | os.PathLike[str] | None = None) -> Path:
    """Locate edgetpu_compiler: ``compiler`` if given (a path or a name on PATH), else PATH.

    Raises:
        CompilerError: not found or not executable; the message says how to install it or run it elsewhere.
    """
    if compiler is not None:
        given = Path(compiler)
        found = str(given) if given.is_file() else shutil.which(str(compiler))
        if found is None or not os.access(found, os.X_OK):
            raise CompilerError(
                str(compiler), "is not an executable file", f"pass the path of edgetpu_compiler; or {INSTALL_HELP}"
            )
        return Path(found)
    found = shutil.which(COMPILER_NAME)
    if found is None:
        where = f"{platform.system()} {platform.machine()}"
        raise CompilerError(
            COMPILER_NAME,
            f"not found on PATH (this machine: {where}; Google ships it for x86-64 Debian-like Linux only)",
            INSTALL_HELP,
        )
    return Path(found)


def _run(args: Sequence[str], timeout: float, cwd: Path | None = None) -> tuple[int, str]:
    """Run with a timeout in its own process group, so a timeout or Ctrl-C also ends the compiler's child."""
    try:
        proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        raise CompilerError(str(args[0]), f"cannot be started ({exc.strerror or exc})", INSTALL_HELP) from exc
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        _kill_group(proc)
        raise
    return proc.returncode, out or ""


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


def compiler_version(compiler: str | os.PathLike[str] | None = None, *, timeout: float = VERSION_TIMEOUT_S) -> str:
    """The version of edgetpu_compiler (``16.0.384591198``).

    Raises:
        CompilerError: missing, failing, hanging, or printing no version.
    """
    exe = find_compiler(compiler)
    try:
        code, out = _run([str(exe), "--version"], timeout)
    except subprocess.TimeoutExpired as exc:
        raise CompilerError(str(exe), f"did not answer --version within {timeout:.0f} s", "check the installation") from exc
    version = parse_compiler_output(out).version
    if code != 0 or not version:
        raise CompilerError(
            str(exe),
            f"--version failed (exit {code}): {out.strip()[:200]!r}",
            "reinstall it (sudo apt-get install --reinstall edgetpu-compiler) or pass --compiler PATH",
        )
    return version


def _failure_fix(log: CompilerLog) -> str:
    text = " ".join(log.errors)
    if "Didn't find op for builtin opcode" in text or "could not be parsed" in text:
        return (
            "the model uses an op version compiler 16 does not know: convert with an older TensorFlow (2.8 or earlier "
            "is reported to work) or run `edge-convert analyze` to see which op"
        )
    if "not quantized" in text:
        return "convert with full-integer INT8 quantization (representative dataset, uint8/int8 input and output)"
    if "large activation tensors" in text:
        return "use a smaller input size, or compile with -a / -d to map only part of the model"
    if "Tflite interpreter" in text or "failed to prepare" in text:
        return "check that the .tflite runs in the TFLite interpreter (edge-classifier classify --device cpu) and re-convert it"
    if "Segmentation fault" in text or "core dumped" in text or "Internal compiler error" in text:
        return "the compiler crashed: try -d (search delegate), -a, or a different -m; report the model to google-coral/edgetpu"
    return "read the compiler output above; `edge-convert analyze` shows which ops it could not map"


def _check_compiled(path: Path) -> None:
    try:
        info = parse_model(read_model_bytes(path), str(path))
    except EdgeClassifierError as exc:
        raise CompilerError(
            str(path), f"the compiler wrote an unreadable model ({exc.cause})", "re-run the compiler; check free disk space"
        ) from exc
    if not info.is_edgetpu_compiled:
        raise CompilerError(
            str(path),
            f"the compiler wrote a model without an {EDGETPU_CUSTOM_OP} ({path.stat().st_size} bytes): "
            "nothing would run on the Edge TPU",
            "run `edge-convert analyze` on the input: the first op probably cannot be mapped (float input, unsupported op)",
        )


def compile_model(
    path: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    compiler: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    options: CompileOptions | None = None,
    predict_first: bool = True,
) -> CompileResult:
    """Compile an INT8 .tflite for the Edge TPU with edgetpu_compiler and check what it wrote.

    Args:
        path: the INT8 model.
        out_dir: where ``<name>_edgetpu.tflite`` and ``<name>_edgetpu.log`` go (default: beside the model).
        compiler: the compiler executable (default: ``edgetpu_compiler`` on PATH).
        timeout: seconds before the compiler is killed.
        options: flags passed through to the compiler.
        predict_first: also run the offline analysis and compare it with the result.

    Returns:
        The compiled file(s), the parsed operator table and the comparison with the prediction.

    Raises:
        ModelError: the input is missing or not a TFLite model.
        CompilerError: the compiler is missing, fails, times out, or writes no usable model.
    """
    options = options or CompileOptions()
    src = Path(path)
    data = read_model_bytes(src)
    info = parse_model(data, str(src))
    if info.is_edgetpu_compiled:
        raise CompilerError(
            str(src), f"is already compiled (holds an {EDGETPU_CUSTOM_OP})", "compile the model from before edgetpu_compiler"
        )
    prediction = (
        predict(
            info,
            data,
            multiple_subgraphs=options.multiple_subgraphs,
            **({"min_runtime_version": options.min_runtime_version} if options.min_runtime_version else {}),
        )
        if predict_first
        else None
    )
    exe = find_compiler(compiler)
    version = compiler_version(exe)
    dest = Path(out_dir) if out_dir is not None else src.resolve().parent
    dest.mkdir(parents=True, exist_ok=True)
    # The temporary folder sits in the destination so the final move is an atomic rename on one filesystem.
    work = Path(tempfile.mkdtemp(prefix=".edgetpu-compile-", dir=dest))
    try:
        args = [str(exe), *options.to_args(), "-o", str(work), str(src.resolve())]
        try:
            code, console = _run(args, timeout, cwd=work)
        except subprocess.TimeoutExpired as exc:
            raise CompilerError(
                str(src),
                f"edgetpu_compiler did not finish within {timeout:.0f} s and was stopped",
                "raise --timeout, or compile a smaller model / with -a",
            ) from exc
        log = parse_compiler_output(console)
        if code != 0 or log.failed:
            detail = "; ".join(log.errors[:3]) or console.strip()[-300:] or "no output"
            raise CompilerError(str(src), f"edgetpu_compiler {version} failed (exit {code}): {detail}", _failure_fix(log))
        compiled = sorted(work.glob("*_edgetpu.tflite"))
        if not compiled:
            raise CompilerError(
                str(src), "edgetpu_compiler reported success but wrote no *_edgetpu.tflite", "re-run it; check free disk space"
            )
        for p in compiled:
            _check_compiled(p)
        logs = sorted(work.glob("*_edgetpu.log"))
        if logs:
            log = merge_logs(log, parse_compiler_output(logs[0].read_text(errors="replace")))
        final = []
        for p in [*compiled, *logs]:
            target = dest / p.name
            os.replace(p, target)
            final.append(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    outputs = [p for p in final if p.suffix == ".tflite"]
    log_path = next((p for p in final if p.suffix == ".log"), None)
    actual = tuple(
        op.name for op in parse_model(read_model_bytes(outputs[0]), str(outputs[0])).main.ops if op.name != EDGETPU_CUSTOM_OP
    )
    comparison = compare_cpu_ops(prediction.cpu_ops, actual) if prediction is not None and len(outputs) == 1 else None
    return CompileResult(
        output_path=outputs[0],
        output_paths=outputs,
        log_path=log_path,
        compiler_version=version,
        log=log,
        prediction=prediction,
        actual_cpu_ops=actual,
        comparison=comparison,
        console=console,
        args=args,
    )
