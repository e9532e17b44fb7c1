"""Find Coral Edge TPUs from sysfs and /dev, without libedgetpu or pycoral.

libedgetpu reports "no device", "permission denied", "busy" and "driver missing" with one empty
``ValueError``, so the facts that tell them apart are read here: USB ids (``1a6e:089a`` before the
runtime has loaded the firmware, ``18d1:9302`` after), the USB device node and its permission
bits, the PCIe function ``1ac1:089a``, the apex/gasket kernel module and ``/dev/apex_N``.

Every function takes ``root`` (default ``/``) so that tests, and containers that mount the host's
/sys elsewhere, can point it at another tree.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

USB_IDS_BOOTLOADER = ("1a6e", "089a")  # Global Unichip: firmware not loaded yet (normal before first use)
USB_IDS_RUNNING = ("18d1", "9302")  # Google: firmware loaded by libedgetpu
PCI_IDS = ("1ac1", "089a")

USB_UDEV_RULE = (
    'SUBSYSTEMS=="usb", ATTRS{idVendor}=="1a6e", ATTRS{idProduct}=="089a", MODE="0664", GROUP="plugdev", TAG+="uaccess"\n'
    'SUBSYSTEMS=="usb", ATTRS{idVendor}=="18d1", ATTRS{idProduct}=="9302", MODE="0664", GROUP="plugdev", TAG+="uaccess"'
)
USB_PERMISSION_FIX = (
    "install the Coral udev rule (the libedgetpu1-std package ships it as /lib/udev/rules.d/60-libedgetpu1-std.rules, "
    "or write the two lines printed by `edge-classifier doctor` into /etc/udev/rules.d/71-edgetpu.rules), "
    "run `sudo usermod -aG plugdev $USER`, log out and in, then unplug and re-plug the accelerator"
)
PCI_PERMISSION_FIX = (
    'sudo sh -c \'echo SUBSYSTEM==\\"apex\\", MODE=\\"0660\\", GROUP=\\"apex\\" > /etc/udev/rules.d/65-apex.rules\'; '
    "sudo groupadd -f apex; sudo usermod -aG apex $USER; then reboot"
)

_DEVICE_RE = re.compile(r"^(usb|pci)?(?::(\d+))?$")
ENV_SYSROOT = "EDGE_CLASSIFIER_SYSROOT"


def sysroot() -> str:
    """Where /sys, /dev and /proc are probed: ``$EDGE_CLASSIFIER_SYSROOT`` (a container mounting the host's) or ``/``."""
    return os.environ.get(ENV_SYSROOT) or "/"


@dataclass(frozen=True)
class DeviceRequest:
    """A parsed Coral device string.

    Attributes:
        text: the string as given (``""`` for "the first Edge TPU of any kind").
        kind: ``usb``, ``pci``, or None for any kind.
        index: position among the devices of that kind (of all kinds for ``:N``), or None for the first.
    """

    text: str
    kind: str | None
    index: int | None

    @property
    def delegate_option(self) -> str:
        """The value libedgetpu's ``device`` option takes (empty: let it pick)."""
        return self.text


def parse_device(device: str) -> DeviceRequest:
    """Parse ``edgetpu``, ``usb``, ``usb:N``, ``pci``, ``pci:N`` or ``:N``.

    Raises:
        ConfigError: the string is none of those.
    """
    text = device.strip().lower()
    if text in ("edgetpu", "tpu", ""):
        return DeviceRequest("", None, None)
    m = _DEVICE_RE.match(text)
    if not m or (m.group(1) is None and m.group(2) is None):
        raise ConfigError(
            f"device={device!r}",
            "is not a device this SDK knows",
            "use auto, cpu, edgetpu, usb, usb:N, pci, pci:N or :N (N counts from 0, as in Coral's own tools)",
        )
    return DeviceRequest(text, m.group(1), int(m.group(2)) if m.group(2) is not None else None)


@dataclass(frozen=True)
class Identity:
    """Whose permissions to check a device node against (tests use a non-root one)."""

    uid: int
    gids: frozenset[int]


@dataclass(frozen=True)
class EdgeTpuDevice:
    """One Edge TPU seen in sysfs.

    Attributes:
        kind: ``usb`` or ``pci``.
        index: its position among devices of its kind (the N of ``usb:N`` / ``pci:N``).
        sysfs: its sysfs directory (USB device or PCI function).
        node: the device node libedgetpu opens (``/dev/bus/usb/BBB/DDD``, ``/dev/apex_N``), None if absent.
        initialised: USB: the firmware is loaded (``18d1:9302``); PCIe: the driver made the node.
        accessible: this user may read and write the node; None when there is no node.
        owner: ``user:group mode`` of the node, for messages.
        problem: empty when usable as far as sysfs can tell, else why not.
        fix: what to do about ``problem``.
    """

    kind: str
    index: int
    sysfs: str
    node: str | None
    initialised: bool
    accessible: bool | None
    owner: str = ""
    problem: str = ""
    fix: str = ""

    @property
    def device_string(self) -> str:
        """The Coral device string that selects this device (``usb:0``)."""
        return f"{self.kind}:{self.index}"

    def describe(self) -> str:
        """One line for ``edge-classifier devices``."""
        where = self.node or self.sysfs
        state = "ready" if not self.problem else self.problem
        return f"{self.device_string:7s} {where}  ({self.owner or 'no node'})  {state}"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _under(root: str | Path, path: str) -> Path:
    return Path(root) / path.lstrip("/")


def _owner(st: os.stat_result) -> str:
    try:
        import grp
        import pwd

        user = pwd.getpwuid(st.st_uid).pw_name
        group = grp.getgrgid(st.st_gid).gr_name
    except (ImportError, KeyError):
        user, group = str(st.st_uid), str(st.st_gid)
    return f"{user}:{group} {stat.filemode(st.st_mode)}"


def _accessible(node: Path, st: os.stat_result, identity: Identity | None) -> bool:
    if identity is None:
        # os.access honours ACLs, which is how udev's TAG+="uaccess" grants the desktop user.
        return os.access(node, os.R_OK | os.W_OK)
    if identity.uid == 0:
        return True
    if st.st_uid == identity.uid:
        need = stat.S_IRUSR | stat.S_IWUSR
    elif st.st_gid in identity.gids:
        need = stat.S_IRGRP | stat.S_IWGRP
    else:
        need = stat.S_IROTH | stat.S_IWOTH
    return st.st_mode & need == need


def _node_state(node: Path, identity: Identity | None) -> tuple[bool | None, str]:
    try:
        st = node.stat()
    except OSError:
        return None, ""
    return _accessible(node, st, identity), _owner(st)


def find_usb(root: str | Path = "/", identity: Identity | None = None) -> list[EdgeTpuDevice]:
    """USB Edge TPUs, in bus/device-number order (the order libusb, and so libedgetpu, enumerates)."""
    base = _under(root, "/sys/bus/usb/devices")
    found: list[tuple[int, int, Path, bool]] = []
    if base.is_dir():
        for entry in sorted(base.iterdir()):
            ids = (_read(entry / "idVendor").lower(), _read(entry / "idProduct").lower())
            if ids not in (USB_IDS_BOOTLOADER, USB_IDS_RUNNING):
                continue
            try:
                bus, dev = int(_read(entry / "busnum")), int(_read(entry / "devnum"))
            except ValueError:
                bus, dev = 0, 0
            found.append((bus, dev, entry, ids == USB_IDS_RUNNING))
    devices = []
    for i, (bus, dev, entry, running) in enumerate(sorted(found, key=lambda f: (f[0], f[1]))):
        node = _under(root, f"/dev/bus/usb/{bus:03d}/{dev:03d}")
        accessible, owner = _node_state(node, identity)
        shown = f"/dev/bus/usb/{bus:03d}/{dev:03d}"
        problem = fix = ""
        if accessible is None:
            problem, fix = f"no device node {shown}", "check that udev is running (containers: pass --device /dev/bus/usb)"
        elif not accessible:
            problem, fix = f"no read/write permission on {shown}", USB_PERMISSION_FIX
        devices.append(
            EdgeTpuDevice(
                "usb", i, str(entry), shown if accessible is not None else None, running, accessible, owner, problem, fix
            )
        )
    return devices


def apex_module_loaded(root: str | Path = "/") -> bool:
    """True when the PCIe Edge TPU driver (apex, on top of gasket) is loaded."""
    return _under(root, "/sys/module/apex").is_dir()


def find_pci(root: str | Path = "/", identity: Identity | None = None) -> list[EdgeTpuDevice]:
    """PCIe/M.2 Edge TPUs: each PCI function ``1ac1:089a`` and the ``/dev/apex_N`` the driver made for it."""
    base = _under(root, "/sys/bus/pci/devices")
    functions: list[Path] = []
    if base.is_dir():
        for entry in sorted(base.iterdir()):
            vendor = _read(entry / "vendor").lower().removeprefix("0x")
            device = _read(entry / "device").lower().removeprefix("0x")
            if (vendor, device) == PCI_IDS:
                functions.append(entry)
    # /sys/class/apex/apex_N/device links back to the PCI function the driver bound.
    bound: dict[str, str] = {}
    apex_class = _under(root, "/sys/class/apex")
    if apex_class.is_dir():
        for entry in sorted(apex_class.iterdir()):
            link = entry / "device"
            target = os.path.basename(os.path.realpath(link)) if link.exists() else ""
            bound[target] = entry.name
    module = apex_module_loaded(root)
    page_size = _page_size()
    devices = []
    for i, fn in enumerate(functions):
        name = bound.get(fn.name)
        problem = fix = ""
        accessible: bool | None = None
        owner = ""
        shown: str | None = None
        if name is None:
            if not module:
                problem = "the PCIe driver (gasket/apex) is not loaded"
                fix = (
                    "install gasket-dkms (Coral apt repo) or build google/gasket-driver for this kernel, "
                    "then `sudo modprobe apex`"
                )
            else:
                problem = "the apex driver is loaded but did not create /dev/apex_N for it"
                fix = (
                    "see `dmesg | grep apex` (interrupt or -110 errors: check BIOS/VM passthrough and the gasket-driver version)"
                )
        else:
            shown = f"/dev/{name}"
            accessible, owner = _node_state(_under(root, shown), identity)
            if accessible is None:
                problem, fix = (
                    f"{shown} is missing although {name} is registered",
                    "check udev (containers: pass --device /dev/apex_0)",
                )
                shown = None
            elif not accessible:
                problem, fix = f"no read/write permission on {shown}", PCI_PERMISSION_FIX
            elif page_size == 16384:
                problem = "this kernel uses 16K pages, which the apex driver cannot map (Raspberry Pi 5)"
                fix = "boot the 4K-page kernel: add kernel=kernel8.img to /boot/firmware/config.txt and reboot"
        devices.append(EdgeTpuDevice("pci", i, str(fn), shown, name is not None, accessible, owner, problem, fix))
    return devices


def _page_size() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4096


def find_edgetpus(root: str | Path = "/", identity: Identity | None = None) -> list[EdgeTpuDevice]:
    """Every Edge TPU in sysfs: PCIe first, then USB (libedgetpu's own order, which ``:N`` counts in)."""
    return find_pci(root, identity) + find_usb(root, identity)


def select_devices(devices: list[EdgeTpuDevice], request: DeviceRequest) -> list[EdgeTpuDevice]:
    """The devices a request can mean: all of a kind, or the one at its index (empty when out of range)."""
    pool = [d for d in devices if request.kind is None or d.kind == request.kind]
    if request.index is None:
        return pool
    return [pool[request.index]] if request.index < len(pool) else []


def node_holders(node: str, root: str | Path = "/") -> list[int]:
    """PIDs (visible to this user) with ``node`` open, from /proc/*/fd; a best-effort hint for "busy"."""
    pids = []
    proc = _under(root, "/proc")
    target = os.path.realpath(_under(root, node))
    try:
        entries = list(proc.iterdir())
    except OSError:
        return []
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.path.realpath(fd) == target:
                    pids.append(int(entry.name))
                    break
            except OSError:
                continue
    return pids
