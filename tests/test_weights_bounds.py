"""Crafted .pth files whose tensor views lie about their storage: refused as WeightsError, never read past the buffer.

The files are written the way torch writes them (zip layout: ``archive/data.pkl`` + ``archive/data/<key>``; a
``_rebuild_tensor_v2(storage, offset, size, stride, ...)`` reduce per tensor; storages as persistent ids), with
stand-ins for torch's globals registered only while pickling, so no torch is needed.
"""

from __future__ import annotations

import io
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_classifier.convert.weights import load_state_dict
from edge_classifier.errors import WeightsError


class _Storage:
    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.args = (storage, offset, size, stride)

    def __reduce__(self) -> tuple[Any, ...]:
        storage, offset, size, stride = self.args
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, (storage, offset, size, stride, False, OrderedDict()))


@pytest.fixture()
def fake_torch(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """Modules named like torch's, so pickle writes the same GLOBAL opcodes torch.save does."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args: Any) -> None:
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    storage_cls = type("FloatStorage", (), {"__module__": "torch"})
    torch.FloatStorage = storage_cls  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    yield torch


def _write(path: Path, torch: types.ModuleType, tensors: dict[str, _Tensor], storages: dict[str, bytes]) -> Path:
    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            if isinstance(obj, _Storage):
                return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
            return None

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(OrderedDict(tensors))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        for key, raw in storages.items():
            zf.writestr(f"archive/data/{key}", raw)
    return path


def test_an_honest_crafted_file_loads(tmp_path: Path, fake_torch: types.ModuleType) -> None:
    values = np.arange(12, dtype=np.float32)
    st = _Storage("0", 12)
    path = _write(
        tmp_path / "ok.pth",
        fake_torch,
        {"w": _Tensor(st, 0, (3, 4), (4, 1)), "t": _Tensor(st, 1, (2, 2), (1, 4))},
        {"0": values.tobytes()},
    )
    sd = load_state_dict(path)
    np.testing.assert_array_equal(sd["w"], values.reshape(3, 4))
    np.testing.assert_array_equal(sd["t"], np.array([[1, 5], [2, 6]], np.float32))


@pytest.mark.parametrize(
    ("offset", "size", "stride", "why"),
    [
        (0, (4, 4), (4, 1), "asks for 16 elements; its storage holds 12"),  # more elements than stored
        (10, (2, 2), (2, 1), "reaches element 13, past the 12"),  # an offset that runs off the end
        (0, (3, 2), (1000, 1), "reaches element 2001"),  # an out-of-bounds stride: reads memory beyond the buffer
        (0, (2, 3), (-4, 1), "negative offset, size or stride"),  # a negative stride reads before the buffer
        (-8, (2,), (1,), "negative offset"),
        (0, (100000, 100000), (0, 0), "asks for 10000000000 elements"),  # 37 GiB from a 48-byte storage
        (0, (2, 2), (2,), "2 sizes but 1 strides"),
    ],
)
def test_views_that_do_not_fit_their_storage_are_refused(
    tmp_path: Path, fake_torch: types.ModuleType, offset: int, size: tuple[int, ...], stride: tuple[int, ...], why: str
) -> None:
    st = _Storage("0", 12)
    path = _write(tmp_path / "evil.pth", fake_torch, {"w": _Tensor(st, offset, size, stride)}, {"0": bytes(48)})
    with pytest.raises(WeightsError, match=why):
        load_state_dict(path)


def test_an_oversized_storage_is_refused_before_allocating(tmp_path: Path, fake_torch: types.ModuleType) -> None:
    st = _Storage("0", 10_000_000_000)  # 37 GiB of float32 announced
    path = _write(tmp_path / "huge.pth", fake_torch, {"w": _Tensor(st, 0, (10,), (1,))}, {"0": bytes(40)})
    with pytest.raises(WeightsError, match="announces 40000000000 bytes, more than"):
        load_state_dict(path)


def test_a_storage_shorter_than_announced_is_refused(tmp_path: Path, fake_torch: types.ModuleType) -> None:
    st = _Storage("0", 12)
    path = _write(tmp_path / "short.pth", fake_torch, {"w": _Tensor(st, 0, (12,), (1,))}, {"0": bytes(20)})
    with pytest.raises(WeightsError, match="storage 0 is 20 bytes, but 12 elements need 48"):
        load_state_dict(path)
