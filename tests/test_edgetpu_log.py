"""The compiler-output parser on real edgetpu_compiler 14.1 / 15.0 / 16.0 consoles and .log files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_classifier.convert.edgetpu_log import CompilerLog, merge_logs, parse_compiler_output
from edge_classifier.convert.edgetpu_ops import KNOWN_STATUSES, MAPPED

LOGS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "edgetpu" / "compiler_logs"


def _blocks(path: Path) -> list[tuple[str, str]]:
    """(header, compiler text) per block: '#' lines are the fixture's notes, '#----' separates blocks."""
    out = []
    for block in re.split(r"^#----.*$", path.read_text(), flags=re.M):
        header = "\n".join(line for line in block.splitlines() if line.startswith("#"))
        text = "\n".join(line for line in block.splitlines() if not line.startswith("#"))
        out.append((header, text))
    return out


def _fixtures() -> list[Path]:
    return sorted(LOGS.glob("*.txt"))


def test_fixtures_present() -> None:
    assert len(_fixtures()) >= 6, f"expected the compiler log fixtures in {LOGS}"


@pytest.mark.parametrize("path", _fixtures(), ids=lambda p: p.name)
def test_every_fixture_parses_consistently(path: Path) -> None:
    for header, text in _blocks(path):
        log = parse_compiler_output(text)
        expected = re.search(r"(?:compiler |_v)(\d+)\.\d", f"{path.name} {header}")
        assert expected, "fixture names its compiler version"
        assert log.major_version == int(expected.group(1)), header
        assert log.version.startswith(f"{expected.group(1)}.")
        assert all(row.status in KNOWN_STATUSES for row in log.rows), [r.status for r in log.rows]
        assert all(row.count > 0 for row in log.rows)
        if "failure" in path.name:
            assert log.failed and log.errors and not log.rows
            continue
        assert log.succeeded and not log.errors
        counts = log.counts
        if log.rows and "total_ops" in counts:
            # The console's totals and its own table must agree.
            assert sum(r.count for r in log.rows) == counts["total_ops"]
            assert log.op_counts.get(MAPPED, 0) == counts["edgetpu_ops"]
            assert sum(n for s, n in log.op_counts.items() if s != MAPPED) == counts["cpu_ops"]


def test_v14_logfile_rows_keep_repeated_operators() -> None:
    log = parse_compiler_output(_blocks(LOGS / "01_v14.1_logfile_tiny_yolo.txt")[0][1])
    assert log.version == "14.1.317412892"
    conv = [(r.count, r.status) for r in log.rows if r.operator == "CONV_2D"]
    assert conv == [(11, MAPPED), (2, "More than one subgraph is not supported")]
    assert log.fields["input_model"] == "tiny_yolo.tflite" and log.fields["output_model"] == "tiny_yolo_edgetpu.tflite"
    assert log.cpu_op_names().count("QUANTIZE") == 2 and not log.fully_mapped


def test_v15_console_with_show_operations() -> None:
    log = parse_compiler_output(_blocks(LOGS / "02_v15.0_console_show_operations_yolo.txt")[0][1])
    assert log.compile_ms == 577 and log.timeout_s is None
    assert log.counts == {"edgetpu_subgraphs": 1, "total_ops": 36, "edgetpu_ops": 2, "cpu_ops": 34}
    assert log.fields["output_size"] == "8.70MiB"
    assert ("LEAKY_RELU", 11, "Operation not supported") in [(r.operator, r.count, r.status) for r in log.rows]


def test_v16_console_and_logfile_merge() -> None:
    console_text, logfile_text = (text for _, text in _blocks(LOGS / "03_v16.0_console_and_logfile_efficientdet.txt"))
    console, logfile = parse_compiler_output(console_text), parse_compiler_output(logfile_text)
    assert console.rows == [] and console.timeout_s == 180 and console.succeeded
    merged = merge_logs(console, logfile)
    assert isinstance(merged, CompilerLog)
    assert sum(r.count for r in merged.rows) == merged.counts["total_ops"] == 267
    assert merged.op_counts["Operation is working on an unsupported data type"] == merged.counts["cpu_ops"] == 3
    assert merged.fields["operation_log"] == "efficientdet_coral_v2_edgetpu.log"


def test_v16_multiple_subgraphs() -> None:
    log = parse_compiler_output(_blocks(LOGS / "04_v16.0_console_multisubgraph_yolov5.txt")[0][1])
    assert log.counts["edgetpu_subgraphs"] == 2 and log.fields["on_chip_memory_remaining"] == "0.00B"


def test_each_failure_is_a_failure_with_its_cause() -> None:
    blocks = _blocks(LOGS / "06_failure_outputs_various_versions.txt")
    logs = [parse_compiler_output(text) for _, text in blocks]
    assert len(logs) == 6 and all(log.failed for log in logs)
    causes = [" ".join(log.errors) for log in logs]
    assert "Model not quantized" in causes[0]
    assert "'QUANTIZE' version '3'" in causes[1] and "could not be parsed" in causes[1]
    assert "Internal compiler error" in causes[2]
    assert "large activation tensors" in causes[3]
    assert "Node number 31 (CONV_2D) failed to prepare" in causes[4]
    assert "Segmentation fault" in causes[5]


def test_errors_before_a_successful_retry_do_not_fail_it() -> None:
    # With -d the compiler logs ERROR lines for failed segment sizes and then compiles a smaller part.
    console = _blocks(LOGS / "03_v16.0_console_and_logfile_efficientdet.txt")[0][1]
    text = "ERROR: Node number 31 (CONV_2D) failed to prepare.\n" + console
    log = parse_compiler_output(text)
    assert log.succeeded and log.errors
