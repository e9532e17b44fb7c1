"""The Edge TPU analysis and a full-integer LSTM: its int16 cell state is the op's contract (runtime 14+), not a defect.

TensorFlow 2.21's converter crashes (SIGSEGV) quantizing a Keras LSTM here, so the model is Coral's MobileNetV1 with
its first op turned into an UNIDIRECTIONAL_SEQUENCE_LSTM laid out as TFLite's 8x8_16 kernel lays it out: int8 data
input, int16 cell state at input 19 (a variable tensor), -1 for the optional inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flatbuffers
import pytest
from ai_edge_litert import schema_py_generated as schema

from edge_classifier.convert.edgetpu_analysis import analyze_model
from edge_classifier.convert.edgetpu_ops import MAPPED, NOT_SUPPORTED, UNSUPPORTED_DATA_TYPE
from tests.conftest import CORAL

SOURCE = CORAL / "mobilenet_v1_0.25_128_quant.tflite"


def _lstm_model(tmp_path: Path, state_at: int = 19) -> Path:
    model = schema.ModelT.InitFromPackedBuf(SOURCE.read_bytes(), 0)
    code = schema.OperatorCodeT()
    code.builtinCode = schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = 1
    model.operatorCodes.append(code)
    sg = model.subgraphs[0]
    state = schema.TensorT()
    state.name = b"cell_state"
    state.type = schema.TensorType.INT16
    state.shape = [1, 16]
    state.isVariable = True
    q = schema.QuantizationParametersT()
    q.scale, q.zeroPoint = [1.0 / 2048], [0]
    state.quantization = q
    state.buffer = 0
    sg.tensors.append(state)
    op: Any = sg.operators[0]
    inputs = [-1] * 24
    inputs[0] = op.inputs[0]
    inputs[state_at] = len(sg.tensors) - 1
    op.inputs = inputs
    op.opcodeIndex = len(model.operatorCodes) - 1
    op.builtinOptionsType = schema.BuiltinOptions.NONE
    op.builtinOptions = None
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = tmp_path / f"lstm_{state_at}.tflite"
    out.write_bytes(bytes(builder.Output()))
    return out


def test_an_int8_lstm_maps_from_runtime_14(tmp_path: Path) -> None:
    path = _lstm_model(tmp_path)
    lstm = analyze_model(path, min_runtime_version=14).ops[0]
    assert (lstm.name, lstm.status) == ("UNIDIRECTIONAL_SEQUENCE_LSTM", MAPPED), lstm.reasons
    older = analyze_model(path, min_runtime_version=13).ops[0]
    assert older.status == NOT_SUPPORTED and "runtime 14" in older.reasons[0]


def test_int16_elsewhere_is_still_refused(tmp_path: Path) -> None:
    # The same int16 tensor as a recurrent input (index 18, the int8 output state) is not the LSTM's contract.
    lstm = analyze_model(_lstm_model(tmp_path, state_at=18), min_runtime_version=14).ops[0]
    assert lstm.status == UNSUPPORTED_DATA_TYPE and "int16" in lstm.reasons[0]


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_analysis_of_a_truncated_model_is_one_clean_error(tmp_path: Path, cut: float) -> None:
    from edge_classifier.errors import ModelError

    data = SOURCE.read_bytes()
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ModelError, match="truncated or corrupt: it ends at byte"):
        analyze_model(bad)
