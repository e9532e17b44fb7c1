"""The offline Edge TPU analysis against what Google's compiler really did (the Coral X / X_edgetpu pairs)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flatbuffers
import pytest
from ai_edge_litert import schema_py_generated as schema

from edge_classifier.convert.edgetpu_analysis import analyze_model, compare_cpu_ops, compiled_cpu_ops, require_full_mapping
from edge_classifier.convert.edgetpu_cli import EXIT_NOT_FULLY_MAPPED, main_analyze
from edge_classifier.convert.edgetpu_ops import (
    MAPPED,
    MORE_THAN_ONE_SUBGRAPH,
    NOT_SUPPORTED,
    UNSPECIFIED_LIMITATION,
    VERSION_NOT_SUPPORTED,
)
from edge_classifier.errors import ConversionError, ModelError

CORAL = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "coral"


def _pairs() -> list[str]:
    return sorted(
        p.name[: -len("_edgetpu.tflite")]
        for p in CORAL.glob("*_edgetpu.tflite")
        if (CORAL / p.name.replace("_edgetpu.tflite", ".tflite")).exists()
    )


def test_the_coral_pairs_are_there() -> None:
    # The README lists four pairs; a missing folder must fail loudly, not parametrize to nothing.
    assert len(_pairs()) >= 4, f"expected the Coral X/X_edgetpu pairs in {CORAL}"


@pytest.mark.parametrize("name", _pairs())
def test_prediction_equals_the_real_compiler(name: str) -> None:
    report = analyze_model(CORAL / f"{name}.tflite")
    actual = compiled_cpu_ops(CORAL / f"{name}_edgetpu.tflite")
    comparison = compare_cpu_ops(report.cpu_ops, actual)
    assert comparison["match"], comparison
    assert report.fully_mapped == (not actual)
    assert report.compilable
    for op in report.ops:
        if not op.on_edgetpu:
            assert op.reasons and op.fix, f"CPU op #{op.index} {op.name} lacks a reason or a fix"


@pytest.mark.parametrize("name", ["tf2_mobilenet_v2_1.0_224_ptq.tflite", "mobilenet_v2_1.0_224_quant.tflite"])
def test_classifiers_map_fully(name: str) -> None:
    report = analyze_model(CORAL / name)
    assert report.fully_mapped, report.format_text()
    assert report.cpu_ops == ()
    assert report.edgetpu_op_count == len(report.ops) > 60
    assert require_full_mapping(CORAL / name).fully_mapped


def test_deeplab_stops_at_the_first_cpu_op_and_names_it() -> None:
    report = analyze_model(CORAL / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    cpu = [op for op in report.ops if not op.on_edgetpu]
    first = cpu[0]
    assert (first.index, first.name, first.status) == (64, "RESIZE_BILINEAR", UNSPECIFIED_LIMITATION)
    assert "align_corners" in first.reasons[0]
    followers = [op for op in cpu[1:] if op.name != "ARG_MAX"]
    assert followers and all(op.status == MORE_THAN_ONE_SUBGRAPH for op in followers)
    assert all("#64 RESIZE_BILINEAR" in op.reasons[0] and "-a" in op.fix for op in followers)
    with pytest.raises(ConversionError, match="RESIZE_BILINEAR"):
        require_full_mapping(CORAL / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    text = report.format_text()
    assert "64 of 72 ops on the Edge TPU" in text and "fix:" in text


def test_multiple_subgraphs_maps_the_supported_ops_after_a_cpu_op() -> None:
    report = analyze_model(CORAL / "deeplabv3_mnv2_dm05_pascal_quant.tflite", multiple_subgraphs=True)
    # Only the 1x1 -> 33x33 resize breaks a rule; 33 -> 513 with align_corners is an exact 16x step.
    assert Counter(report.cpu_ops) == Counter({"RESIZE_BILINEAR": 1, "ARG_MAX": 1})
    assert report.ops[66].name == "CONCATENATION" and report.ops[66].status == MAPPED
    assert report.ops[64].status == UNSPECIFIED_LIMITATION


def test_an_older_runtime_target_keeps_quantize_on_the_cpu_without_cutting_the_model() -> None:
    # QUANTIZE needs runtime 13: with -m 12 the input QUANTIZE runs on the CPU *before* the Edge TPU part,
    # which does not split the model; only the output QUANTIZE after it stays too.
    report = analyze_model(CORAL / "tf2_mobilenet_v2_1.0_224_ptq.tflite", min_runtime_version=12)
    assert report.cpu_ops == ("QUANTIZE", "QUANTIZE")
    assert report.ops[0].status == NOT_SUPPORTED and "-m 13" in report.ops[0].fix
    assert all(op.on_edgetpu for op in report.ops[1:-1])


def test_the_compiled_file_itself_is_refused() -> None:
    report = analyze_model(CORAL / "mobilenet_v1_0.25_128_quant_edgetpu.tflite")
    assert not report.compilable and "already compiled" in report.fatal[0]


def test_not_a_model_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "labels.tflite"
    bad.write_text("not a model")
    with pytest.raises(ModelError, match="not a TFLite model"):
        analyze_model(bad)
    with pytest.raises(ModelError, match="not an Edge TPU-compiled model"):
        compiled_cpu_ops(CORAL / "mobilenet_v1_0.25_128_quant.tflite")


# --- real models with one feature changed through the TFLite schema's object API ---------------------------
def _mutated(tmp_path: Path, source: str, change: Callable[[Any], None]) -> Path:
    model = schema.ModelT.InitFromPackedBuf((CORAL / source).read_bytes(), 0)
    change(model)
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = tmp_path / f"mutated_{source}"
    out.write_bytes(bytes(builder.Output()))
    return out


def _opcode(model: Any, builtin: int, version: int = 1) -> int:
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def test_hard_swish_gets_the_minimalistic_fix_and_cuts_the_model(tmp_path: Path) -> None:
    def change(model: Any) -> None:
        model.subgraphs[0].operators[5].opcodeIndex = _opcode(model, schema.BuiltinOperator.HARD_SWISH)

    path = _mutated(tmp_path, "mobilenet_v1_0.25_128_quant.tflite", change)
    report = analyze_model(path)
    op5 = report.ops[5]
    assert (op5.name, op5.status) == ("HARD_SWISH", NOT_SUPPORTED)
    assert "minimalistic" in op5.fix
    assert all(op.on_edgetpu for op in report.ops[:5])
    assert all(op.status == MORE_THAN_ONE_SUBGRAPH for op in report.ops[6:])
    assert analyze_model(path, multiple_subgraphs=True).cpu_ops == ("HARD_SWISH",)


def test_float_input_leaves_the_input_quantize_on_the_cpu(tmp_path: Path) -> None:
    def change(model: Any) -> None:
        sg = model.subgraphs[0]
        sg.tensors[sg.inputs[0]].type = schema.TensorType.FLOAT32

    report = analyze_model(_mutated(tmp_path, "posenet_mobilenet_v1_075_353_481_16_quant_decoder.tflite", change))
    assert report.cpu_ops == ("QUANTIZE", "PosenetDecoderOp")
    assert report.ops[0].status == UNSPECIFIED_LIMITATION
    assert "float input" in report.ops[0].fix and "uint8 or int8" in report.ops[0].fix


def test_an_op_version_newer_than_compiler_16_rejects_the_model(tmp_path: Path) -> None:
    def change(model: Any) -> None:
        for code in model.operatorCodes:
            if code.builtinCode == schema.BuiltinOperator.CONV_2D:
                code.version = 6

    path = _mutated(tmp_path, "mobilenet_v1_0.25_128_quant.tflite", change)
    report = analyze_model(path)
    assert not report.compilable and not report.fully_mapped
    assert "CONV_2D version 6" in report.fatal[0] and "could not be parsed" in report.fatal[0]
    assert any(op.status == VERSION_NOT_SUPPORTED for op in report.ops)


def test_unequal_dilation_and_batch_two_break_their_rules(tmp_path: Path) -> None:
    def dilate(model: Any) -> None:
        model.subgraphs[0].operators[2].builtinOptions.dilationHFactor = 2

    report = analyze_model(_mutated(tmp_path, "mobilenet_v1_0.25_128_quant.tflite", dilate))
    assert report.ops[2].status == UNSPECIFIED_LIMITATION and "dilation" in report.ops[2].reasons[0]

    def batch(model: Any) -> None:
        sg = model.subgraphs[0]
        sg.tensors[sg.inputs[0]].shape = [2, 128, 128, 3]

    report = analyze_model(_mutated(tmp_path, "mobilenet_v1_0.25_128_quant.tflite", batch))
    assert "batch" in report.ops[0].reasons[0] and not report.fully_mapped


# --- the command line -----------------------------------------------------------------------------------
def test_cli_json_and_require_full(capsys: pytest.CaptureFixture[str]) -> None:
    deeplab = str(CORAL / "deeplabv3_mnv2_dm05_pascal_quant.tflite")
    assert main_analyze([deeplab, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["fully_mapped"] is False and payload["cpu_ops"][0] == "RESIZE_BILINEAR"
    assert len(payload["ops"]) == 72 and payload["ops"][64]["fix"]
    assert main_analyze([deeplab, "--require-full", "--summary"]) == EXIT_NOT_FULLY_MAPPED
    assert "RESIZE_BILINEAR" in capsys.readouterr().out
    assert main_analyze([str(CORAL / "tf2_mobilenet_v2_1.0_224_ptq.tflite"), "--require-full"]) == 0
    assert "all 68 ops run on the Edge TPU" in capsys.readouterr().out
    assert main_analyze([str(CORAL / "missing.tflite")]) == 1
    assert "no such model file" in capsys.readouterr().err
