"""Parse what edgetpu_compiler prints (console) and writes (``*_edgetpu.log``), versions 14 to 16.

Both texts share the version line and the operator table ("Operator / Count / Status"); the console adds
sizes, memory use, subgraph and op counts, and, in 16.0, the timeout-timer and "Compilation succeeded!"
lines. Failures end without "Model compiled successfully" and carry ``ERROR:`` lines, "Invalid model",
"Internal compiler error", "Compilation failed" or a crash of the wrapper script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .edgetpu_ops import MAPPED

_VERSION = re.compile(r"Edge TPU Compiler version (\d+)\.(\d+)(?:\.(\d+))?")
_ROW = re.compile(r"^([A-Z][A-Z0-9_]*)\s+(\d+)\s+(\S.*?)\s*$")
_TIME = re.compile(r"Model compiled successfully in (\d+) ms")
_FIELDS = {
    "Input model": "input_model",
    "Input": "input_model",
    "Output model": "output_model",
    "Output": "output_model",
    "Input size": "input_size",
    "Output size": "output_size",
    "On-chip memory used for caching model parameters": "on_chip_memory_used",
    "On-chip memory remaining for caching model parameters": "on_chip_memory_remaining",
    "Off-chip memory used for streaming uncached model parameters": "off_chip_memory_used",
    "Operation log": "operation_log",
}
_COUNTS = {
    "Number of Edge TPU subgraphs": "edgetpu_subgraphs",
    "Total number of operations": "total_ops",
    "Number of operations that will run on Edge TPU": "edgetpu_ops",
    "Number of operations that will run on CPU": "cpu_ops",
}
_FAILURE_MARKERS = (
    "Invalid model",
    "Model not quantized",
    "Model could not be parsed",
    "Internal compiler error",
    "Compilation failed",
    "Segmentation fault",
    "core dumped",
    "Aborted",
)


@dataclass(frozen=True)
class OpRow:
    """One row of the compiler's operator table: ``count`` ops named ``operator`` share ``status``."""

    operator: str
    count: int
    status: str

    @property
    def mapped(self) -> bool:
        """True when these ops run on the Edge TPU."""
        return self.status == MAPPED


@dataclass
class CompilerLog:
    """What one compiler output (console text or .log file) says.

    Attributes:
        version: the compiler version string (``16.0.384591198``), or "" when absent.
        rows: the operator table, in the compiler's order.
        succeeded: True for a successful compilation (a .log file is written only then).
        errors: the failure lines, in order (``ERROR: ...``, ``Invalid model: ...``, crashes).
        fields: sizes, memory, model paths, as printed (``{"output_size": "8.70MiB", ...}``).
        counts: subgraph and op counts (``{"total_ops": 36, "cpu_ops": 34, ...}``).
        compile_ms: compile time when printed.
        timeout_s: the v16 compilation timer, when printed.
    """

    version: str = ""
    rows: list[OpRow] = field(default_factory=list)
    succeeded: bool = False
    errors: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    compile_ms: int | None = None
    timeout_s: int | None = None

    @property
    def major_version(self) -> int | None:
        """The compiler's major version (14, 15, 16), or None."""
        m = _VERSION.search(f"Edge TPU Compiler version {self.version}") if self.version else None
        return int(m.group(1)) if m else None

    @property
    def failed(self) -> bool:
        """True when the output reports a failure."""
        return not self.succeeded

    @property
    def op_counts(self) -> dict[str, int]:
        """Ops per status, summed over operators."""
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.status] = out.get(r.status, 0) + r.count
        return out

    @property
    def fully_mapped(self) -> bool:
        """True when the table holds only mapped ops (and there is a table)."""
        return bool(self.rows) and all(r.mapped for r in self.rows)

    def cpu_op_names(self) -> list[str]:
        """Operator names kept on the CPU, each repeated by its count."""
        return [r.operator for r in self.rows if not r.mapped for _ in range(r.count)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "version": self.version,
            "succeeded": self.succeeded,
            "errors": list(self.errors),
            "fields": dict(self.fields),
            "counts": dict(self.counts),
            "compile_ms": self.compile_ms,
            "rows": [{"operator": r.operator, "count": r.count, "status": r.status} for r in self.rows],
        }


def parse_compiler_output(text: str) -> CompilerLog:
    """Parse a console output or a ``.log`` file of edgetpu_compiler 14, 15 or 16.

    Unknown lines are ignored, so a shell prompt or a wrapper's own lines around the output do no harm.
    """
    log = CompilerLog()
    in_table = False
    compiled = logfile = said_success = said_failure = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if m := _VERSION.search(line):
            log.version = m.group(0).rsplit(" ", 1)[-1]
            continue
        if line.startswith("Operator") and "Count" in line and "Status" in line:
            in_table = True
            continue
        if in_table and (m := _ROW.match(line)):
            log.rows.append(OpRow(m.group(1), int(m.group(2)), m.group(3).strip()))
            continue
        in_table = False
        if m := _TIME.search(line):
            compiled = True
            log.compile_ms = int(m.group(1))
            continue
        if m := re.search(r"compilation timeout timer of (\d+) seconds", line):
            log.timeout_s = int(m.group(1))
            continue
        if line.startswith("Compilation succeeded"):
            said_success = True
            continue
        key, sep, value = line.partition(":")
        if sep and key in _FIELDS and value.strip():
            log.fields[_FIELDS[key]] = value.strip()
            logfile = logfile or key in ("Input", "Output")
            continue
        if sep and key in _COUNTS and value.strip().isdigit():
            log.counts[_COUNTS[key]] = int(value.strip())
            continue
        if any(marker in line for marker in _FAILURE_MARKERS):
            log.errors.append(line)
            said_failure = True
            continue
        if line.startswith("ERROR:"):
            # With -d the compiler retries smaller segments after an ERROR, so an ERROR alone is not the verdict.
            log.errors.append(line)
            continue
    # A .log file ("Input:"/"Output:" header) is only written after a successful compilation.
    log.succeeded = not said_failure and (compiled or said_success or (logfile and bool(log.rows)))
    return log


def merge_logs(console: CompilerLog, logfile: CompilerLog | None) -> CompilerLog:
    """Combine the console output with the .log file: the .log's table wins when the console has none."""
    if logfile is None:
        return console
    merged = CompilerLog(
        version=console.version or logfile.version,
        rows=console.rows or logfile.rows,
        succeeded=console.succeeded,
        errors=console.errors + [e for e in logfile.errors if e not in console.errors],
        fields={**logfile.fields, **console.fields},
        counts=dict(console.counts),
        compile_ms=console.compile_ms,
        timeout_s=console.timeout_s,
    )
    return merged
