"""Hailo ``.hef`` files: recognise one, and tell which Hailo chip it was compiled for.

A HEF starts with a big-endian header ``>IIII16s`` whose first word is the magic ``0x01484546`` (hailort's
``hef_internal`` and its ``hef_writer.py``: ``HEF_HEADER_MAGIC``). The target chip lives inside the HEF's protobuf,
which only HailoRT parses, so before HailoRT loads it the SDK goes by the names Raspberry Pi and Hailo's model zoo
give their files (``resnet_v1_50_h8l.hef`` for Hailo-8L, ``_h8`` for Hailo-8, ``_h10`` for Hailo-10H) or by a
sidecar's ``hailo_arch``; HailoRT has the last word when it configures the device.

Which chips run which HEF follows HailoRT's ``DeviceBase::hef_arch_to_device_compatible_archs``: a Hailo-8L HEF
also runs on a Hailo-8 (HailoRT warns "HEF was compiled for Hailo8L device, while the device itself is Hailo8. This
will result in lower performance"); a Hailo-8 HEF runs only on a Hailo-8; Hailo-10H HEFs only on Hailo-10H (and
Hailo-15).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

from ..errors import ModelError

HEF_MAGIC = 0x01484546
_HEADER = struct.Struct(">IIII16s")

HAILO8, HAILO8L, HAILO10H = "hailo8", "hailo8l", "hailo10h"
CHIP_NAMES = {HAILO8: "Hailo-8", HAILO8L: "Hailo-8L", HAILO10H: "Hailo-10H"}
# The device architectures each HEF target runs on (HailoRT's compatibility table, restricted to Pi boards).
RUNS_ON: dict[str, frozenset[str]] = {
    HAILO8: frozenset({HAILO8}),
    HAILO8L: frozenset({HAILO8L, HAILO8}),
    HAILO10H: frozenset({HAILO10H}),
}
# Name suffixes: Raspberry Pi's /usr/share/hailo-models and Hailo's model zoo.
_SUFFIX = re.compile(r"_(h8l|h8|h10h?|hailo8l|hailo8|hailo10h)$", re.IGNORECASE)
_SUFFIX_CHIP = {"h8l": HAILO8L, "hailo8l": HAILO8L, "h8": HAILO8, "hailo8": HAILO8, "h10": HAILO10H, "h10h": HAILO10H,
                "hailo10h": HAILO10H}  # fmt: skip


def is_hef_bytes(head: bytes) -> bool:
    """True when ``head`` (the file's first bytes) starts with the HEF magic."""
    return len(head) >= 4 and struct.unpack(">I", head[:4])[0] == HEF_MAGIC


def is_hef(path: str | Path) -> bool:
    """True for a ``.hef`` name or a file that starts with the HEF magic."""
    p = Path(path)
    if p.suffix.lower() == ".hef":
        return True
    try:
        with p.open("rb") as f:
            return is_hef_bytes(f.read(4))
    except OSError:
        return False


def check_hef(path: str | Path) -> int:
    """Check that ``path`` is a readable HEF; returns its size in bytes.

    Raises:
        ModelError: missing, a folder, unreadable, or not a HEF (no magic).
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(
            str(p), "no such model file", "check the path; Raspberry Pi's Hailo models are in /usr/share/hailo-models"
        )
    if p.is_dir():
        raise ModelError(str(p), "is a directory, not a .hef file", "pass the path of the .hef file itself")
    try:
        with p.open("rb") as f:
            head = f.read(_HEADER.size)
        size = p.stat().st_size
    except OSError as exc:
        raise ModelError(str(p), f"cannot be read ({exc.strerror or exc})", "check the file's permissions") from exc
    if not is_hef_bytes(head):
        raise ModelError(
            str(p),
            "is not a Hailo HEF (its header lacks the HEF magic 0x01484546)",
            "re-download the .hef, or pass a .tflite model for the CPU or the Edge TPU",
        )
    return size


def target_from_name(path: str | Path) -> str | None:
    """The chip a HEF's name says it was compiled for (``hailo8``, ``hailo8l``, ``hailo10h``), or None."""
    m = _SUFFIX.search(Path(path).stem)
    return _SUFFIX_CHIP[m.group(1).lower()] if m else None


def normalise_chip(text: str | None) -> str | None:
    """``HAILO8L``, ``Hailo-8L``, ``hailo8l`` -> ``hailo8l``; None for anything else."""
    if not text:
        return None
    key = re.sub(r"[^a-z0-9]", "", text.lower())
    return {"hailo8": HAILO8, "hailo8l": HAILO8L, "hailo10h": HAILO10H, "hailo10": HAILO10H}.get(key)


def twin_path(path: str | Path) -> Path:
    """The CPU twin of a HEF: the same name without the chip suffix, as ``.tflite`` (``m_h8l.hef`` -> ``m.tflite``)."""
    p = Path(path)
    return p.with_name(_SUFFIX.sub("", p.stem) + ".tflite")


def fits(hef_chip: str | None, device_chip: str | None) -> tuple[bool, str]:
    """Whether a HEF for ``hef_chip`` runs on ``device_chip``, and a note when it runs below its best.

    Unknown on either side counts as fitting: HailoRT decides when it configures the device.
    """
    if hef_chip is None or device_chip is None:
        return True, ""
    if device_chip not in RUNS_ON.get(hef_chip, frozenset({hef_chip})):
        return False, ""
    if hef_chip != device_chip:
        return True, (
            f"compiled for the {CHIP_NAMES[hef_chip]}: HailoRT runs it on this {CHIP_NAMES[device_chip]} at "
            f"{CHIP_NAMES[hef_chip]} speed (a HEF compiled for the {CHIP_NAMES[device_chip]} is faster)"
        )
    return True, ""
