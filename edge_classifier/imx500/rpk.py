"""Read an IMX500 ``.rpk`` network package without the camera: its input size and format and its intrinsics.

The layout follows picamera2's ``devices/imx500/imx500.py`` (``IMX500.__ni_from_network``): the file is a run of
firmware blocks, each a header ``>4sI`` (magic ``b"9464"``, payload size), the payload, 52 more bytes, and a footer
``b"3695"``; after the last block comes a cpio archive holding ``network_info.txt`` (``key=value`` lines, a section
per ``networkOrdinal=N`` with ``inputTensorWidth``, ``inputTensorHeight``, ``inputTensorFormat``, ...) and, for
packages that carry them, ``network_intrinsics`` (JSON with the schema of picamera2's ``NetworkIntrinsics``: ``task``,
``inference_rate``, ``cpu.softmax``, ``input_aspect_ratio``, ``classes.labels``). picamera2 reads the archive with
libarchive; the SDK reads the two cpio formats libarchive's ``cpio`` writers produce (``newc`` and ``odc``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError

BLOCK_MAGIC = b"9464"
BLOCK_FOOTER = b"3695"
_BLOCK_HEADER = struct.Struct(">4sI")
_BLOCK_EXTRA = 60  # picamera2 skips size + 60 bytes from a block's start (8-byte header, payload, 52-byte tail), then the footer
TASKS = ("classification", "object detection", "pose estimation", "segmentation")
_NOT_RPK_FIX = "pass an .rpk made by imx500-package (Raspberry Pi's are in /usr/share/imx500-models)"


@dataclass(frozen=True)
class RpkInfo:
    """What an ``.rpk`` says about its network.

    Attributes:
        path: the file.
        size: its size in bytes.
        input_size: (width, height) of the input tensor (picamera2's ``get_input_size()`` order).
        input_format: ``RGB`` or ``BGR`` (``inputTensorFormat``).
        network_info: the first network's ``key=value`` pairs.
        intrinsics: the ``network_intrinsics`` JSON (empty when the package has none).
    """

    path: str
    size: int
    input_size: tuple[int, int]
    input_format: str
    network_info: dict[str, str] = field(default_factory=dict)
    intrinsics: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> str | None:
        """The network's task (``classification``, ...), when its intrinsics say."""
        task = self.intrinsics.get("task")
        return str(task) if task is not None else None

    @property
    def labels(self) -> tuple[str, ...]:
        """``classes.labels`` from the intrinsics (empty when none)."""
        classes = self.intrinsics.get("classes") or {}
        labels = classes.get("labels") if isinstance(classes, dict) else None
        return tuple(str(x) for x in labels) if isinstance(labels, list) else ()

    @property
    def cpu_softmax(self) -> bool:
        """``cpu.softmax``: the CPU must apply softmax, so the sensor's output is logits."""
        cpu = self.intrinsics.get("cpu") or {}
        return bool(cpu.get("softmax")) if isinstance(cpu, dict) else False

    @property
    def inference_rate(self) -> float | None:
        """``inference_rate`` (frames per second the network keeps up with), when given."""
        rate = self.intrinsics.get("inference_rate")
        return float(rate) if isinstance(rate, (int, float)) and rate > 0 else None

    @property
    def preserve_aspect_ratio(self) -> bool:
        """``input_aspect_ratio`` is 1:1: the sensor should crop to the input's aspect instead of stretching."""
        ar = self.intrinsics.get("input_aspect_ratio")
        return isinstance(ar, dict) and ar.get("width") == ar.get("height")


def _cpio_members(data: memoryview, name: str) -> dict[str, bytes]:
    """The regular files of a ``newc``/``crc`` or ``odc`` cpio archive."""
    members: dict[str, bytes] = {}
    pos = 0
    while pos + 6 <= len(data):
        magic = bytes(data[pos : pos + 6])
        if magic in (b"070701", b"070702"):
            head = bytes(data[pos : pos + 110]).decode("ascii", "replace")
            try:
                mode, filesize, namesize = int(head[14:22], 16), int(head[54:62], 16), int(head[94:102], 16)
            except ValueError as exc:
                raise ModelError(name, f"its cpio archive has a bad header at byte {pos}", _NOT_RPK_FIX) from exc
            name_start = pos + 110
            member = bytes(data[name_start : name_start + namesize - 1]).decode("utf-8", "replace")
            data_start = (name_start + namesize + 3) & ~3
            data_end = data_start + filesize
            next_pos = (data_end + 3) & ~3
        elif magic == b"070707":
            head = bytes(data[pos : pos + 76]).decode("ascii", "replace")
            try:
                mode, namesize, filesize = int(head[18:24], 8), int(head[59:65], 8), int(head[65:76], 8)
            except ValueError as exc:
                raise ModelError(name, f"its cpio archive has a bad header at byte {pos}", _NOT_RPK_FIX) from exc
            member = bytes(data[pos + 76 : pos + 76 + namesize - 1]).decode("utf-8", "replace")
            data_start = pos + 76 + namesize
            data_end = data_start + filesize
            next_pos = data_end
        else:
            raise ModelError(name, f"its network archive is not a cpio archive (bytes {magic!r} at {pos})", _NOT_RPK_FIX)
        if member == "TRAILER!!!":
            break
        if data_end > len(data):
            raise ModelError(name, f"is truncated: the archive member {member!r} runs past the end of the file", _NOT_RPK_FIX)
        if mode & 0o170000 in (0o100000, 0):  # a regular file (some writers leave the type bits 0)
            members[member.lstrip("./") or member] = bytes(data[data_start:data_end])
        pos = next_pos
    return members


def parse_network_info(text: str) -> tuple[dict[str, str], dict[int, dict[str, str]]]:
    """``network_info.txt``: the global ``key=value`` pairs and each ``networkOrdinal`` section's (as picamera2 splits it)."""
    head, _, rest = text.partition("networkOrdinal=")
    top = dict(line.strip().split("=", 1) for line in head.splitlines() if "=" in line)
    networks: dict[int, dict[str, str]] = {}
    if rest:
        for chunk in ("networkOrdinal=" + rest).split("networkOrdinal=")[1:]:
            lines = chunk.splitlines()
            ordinal = int(lines[0].strip()) if lines and lines[0].strip().isdigit() else len(networks)
            networks[ordinal] = dict(line.strip().split("=", 1) for line in lines[1:] if "=" in line)
    return top, networks


def split_rpk(data: bytes, name: str) -> dict[str, bytes]:
    """The members of the archive after an ``.rpk``'s firmware blocks.

    Raises:
        ModelError: no firmware block, a block without its footer, or no readable archive after them.
    """
    view = memoryview(data)
    offset = 0
    blocks = 0
    while offset + _BLOCK_HEADER.size <= len(data):
        magic, size = _BLOCK_HEADER.unpack_from(data, offset)
        if magic != BLOCK_MAGIC:
            break
        footer_at = offset + size + _BLOCK_EXTRA
        if data[footer_at : footer_at + 4] != BLOCK_FOOTER:
            raise ModelError(
                name, f"firmware block {blocks} has no footer (expected {BLOCK_FOOTER!r} at byte {footer_at})", _NOT_RPK_FIX
            )
        offset = footer_at + 4
        blocks += 1
    if blocks == 0:
        raise ModelError(name, f"is not an IMX500 network package (no firmware block: it starts with {data[:4]!r})", _NOT_RPK_FIX)
    return _cpio_members(view[offset:], name)


def read_rpk(path: str | Path) -> RpkInfo:
    """Read an ``.rpk``'s network description.

    Raises:
        ModelError: missing, unreadable, not an ``.rpk``, truncated, or without ``network_info.txt``.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(
            str(p), "no such model file", "check the path; Raspberry Pi's IMX500 models are in /usr/share/imx500-models"
        )
    if p.is_dir():
        raise ModelError(str(p), "is a directory, not an .rpk file", "pass the path of the .rpk file itself")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(str(p), f"cannot be read ({exc.strerror or exc})", "check the file's permissions") from exc
    members = split_rpk(data, str(p))
    if "network_info.txt" not in members:
        raise ModelError(str(p), "its archive has no network_info.txt", _NOT_RPK_FIX)
    _, networks = parse_network_info(members["network_info.txt"].decode("ascii", "replace"))
    first = networks.get(0) or next(iter(networks.values()), {})
    try:
        size = (int(first["inputTensorWidth"]), int(first["inputTensorHeight"]))
    except (KeyError, ValueError) as exc:
        raise ModelError(str(p), "its network_info.txt gives no inputTensorWidth/inputTensorHeight", _NOT_RPK_FIX) from exc
    intrinsics: dict[str, Any] = {}
    if "network_intrinsics" in members:
        try:
            loaded = json.loads(members["network_intrinsics"].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(str(p), f"its network_intrinsics is not valid JSON ({exc})", "re-package the network") from exc
        if isinstance(loaded, dict):
            intrinsics = loaded
    return RpkInfo(str(p), len(data), size, first.get("inputTensorFormat", "RGB").upper(), first, intrinsics)


def is_rpk(path: str | Path) -> bool:
    """True for an ``.rpk`` name or a file starting with a firmware block's magic."""
    p = Path(path)
    if p.suffix.lower() == ".rpk":
        return True
    try:
        with p.open("rb") as f:
            return f.read(4) == BLOCK_MAGIC
    except OSError:
        return False
