"""Find Hailo accelerators from sysfs and /dev, without HailoRT.

What hailort-drivers' ``linux/pcie`` driver shows (``pcie.h``, ``pcie.c``, ``51-hailo-udev.rules``):

- the PCIe function ``1e60:2864`` (Hailo-8 *and* Hailo-8L: the id does not tell them apart) or ``1e60:45c4``
  (Hailo-10H, on the AI HAT+ 2);
- the driver module, ``hailo_pci`` (Hailo-8/8L, apt ``hailo-dkms`` or the Raspberry Pi kernel) or ``hailo1x_pci``
  (Hailo-10H), whose ``MODULE_VERSION`` is in ``/sys/module/<name>/version``;
- its character device class ``hailo_chardev``: ``/sys/class/hailo_chardev/hailoN`` links to the PCI function and
  udev makes ``/dev/hailoN`` (``DEVICE_NODE_NAME "hailo"``), mode 0666 by the rule ``SUBSYSTEM=="hailo_chardev"``.

Every function takes ``root`` so that tests build these trees in a temporary folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..sysfacts import Identity, module_loaded, module_version, node_state, read_text, under
from .hef import HAILO8, HAILO10H

HAILO_VENDOR = "1e60"
#: PCI device id -> chip family (the Hailo-8L reports the Hailo-8's id).
PCI_FAMILIES = {"2864": HAILO8, "45c4": HAILO10H}
DRIVER_MODULES = ("hailo_pci", "hailo1x_pci")
UDEV_RULE = 'SUBSYSTEM=="hailo_chardev", MODE="0666"'
PERMISSION_FIX = (
    f"install the Hailo udev rule: echo '{UDEV_RULE}' | sudo tee /etc/udev/rules.d/51-hailo-udev.rules, then "
    "`sudo udevadm control --reload && sudo udevadm trigger` (the hailo-all / hailo-h10-all packages ship it)"
)
DRIVER_FIX = (
    "install the driver for this kernel and reboot: sudo apt install dkms hailo-all (Hailo-8/8L, AI HAT+ and AI Kit) or "
    "sudo apt install dkms hailo-h10-all (Hailo-10H, AI HAT+ 2); then check `lsmod | grep hailo` and `dmesg | grep -i hailo`"
)
ATTACH_FIX = (
    "seat the AI HAT+ on the Raspberry Pi 5's PCIe connector (ribbon contacts the right way round), power off first, and "
    "check `lspci -nn | grep 1e60`; on a Pi 5 with an older firmware add dtparam=pciex1 to /boot/firmware/config.txt"
)


@dataclass(frozen=True)
class HailoDevice:
    """One Hailo device seen in sysfs.

    Attributes:
        index: N of ``/dev/hailoN`` (its position among the PCI functions when the driver made no node).
        pci: the PCI address (``0001:01:00.0``).
        family: ``hailo8`` (Hailo-8 or 8L) or ``hailo10h``.
        node: ``/dev/hailoN`` when the driver made it, else None.
        accessible: this user may open the node (False when there is none).
        owner: ``user:group mode`` of the node, for messages.
        problem: empty when usable as far as sysfs tells, else why not.
        fix: what to do about ``problem``.
    """

    index: int
    pci: str
    family: str
    node: str | None
    accessible: bool
    owner: str = ""
    problem: str = ""
    fix: str = ""

    @property
    def device_string(self) -> str:
        """The device string that selects it (``hailo:0``)."""
        return f"hailo:{self.index}"

    def describe(self) -> str:
        """One line for ``edge-classifier devices``."""
        chip = "Hailo-10H" if self.family == HAILO10H else "Hailo-8/8L"
        where = self.node or f"PCI {self.pci}"
        return f"{self.device_string:8s} {chip:10s} {where}  ({self.owner or 'no node'})  {self.problem or 'ready'}"


def driver(root: str | Path = "/") -> tuple[str, str | None] | None:
    """The loaded Hailo driver module and its version (``("hailo_pci", "4.20.0")``), or None when none is loaded."""
    for name in DRIVER_MODULES:
        if module_loaded(root, name):
            return name, module_version(root, name)
    return None


def _chardev_nodes(root: str | Path) -> dict[str, str]:
    """PCI address -> ``hailoN``, from the driver's character device class (any ``/sys/class/hailo*``)."""
    bound: dict[str, str] = {}
    base = under(root, "/sys/class")
    if not base.is_dir():
        return bound
    for cls in sorted(base.glob("hailo*")):
        for entry in sorted(cls.iterdir()):
            link = entry / "device"
            target = os.path.basename(os.path.realpath(link)) if link.exists() else read_text(entry / "device_id")
            if target:
                bound[target] = entry.name
    return bound


def find_hailos(root: str | Path = "/", identity: Identity | None = None) -> list[HailoDevice]:
    """Every Hailo PCIe function, with its node and what stands in its way."""
    base = under(root, "/sys/bus/pci/devices")
    functions: list[tuple[str, str]] = []
    if base.is_dir():
        for entry in sorted(base.iterdir()):
            vendor = read_text(entry / "vendor").lower().removeprefix("0x")
            device = read_text(entry / "device").lower().removeprefix("0x")
            if vendor == HAILO_VENDOR and device in PCI_FAMILIES:
                functions.append((entry.name, PCI_FAMILIES[device]))
    nodes = _chardev_nodes(root)
    loaded = driver(root)
    devices = []
    for i, (pci, family) in enumerate(functions):
        name = nodes.get(pci)
        if name is None:
            problem = (
                f"the Hailo driver ({' or '.join(DRIVER_MODULES)}) is not loaded"
                if loaded is None
                else f"the {loaded[0]} driver is loaded but made no /dev/hailoN for it (see `dmesg | grep -i hailo`)"
            )
            devices.append(HailoDevice(i, pci, family, None, False, "", problem, DRIVER_FIX))
            continue
        index = int(name.removeprefix("hailo")) if name.removeprefix("hailo").isdigit() else i
        shown = f"/dev/{name}"
        state = node_state(under(root, shown), identity)
        problem = fix = ""
        if not state.exists:
            problem, fix = (
                f"{shown} is missing although the driver registered {name}",
                "check udev (containers: --device /dev/hailo0)",
            )
        elif not state.accessible:
            problem, fix = f"no read/write permission on {shown}", PERMISSION_FIX
        devices.append(
            HailoDevice(index, pci, family, shown if state.exists else None, state.accessible, state.owner, problem, fix)
        )
    return devices


def parse_device(device: str) -> int | None:
    """``hailo`` -> None (the first), ``hailo:N`` -> N; anything else is not a Hailo device string (returns -1)."""
    text = device.strip().lower()
    if text == "hailo":
        return None
    if text.startswith("hailo:") and text[6:].isdigit():
        return int(text[6:])
    return -1
