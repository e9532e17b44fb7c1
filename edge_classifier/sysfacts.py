"""Facts about this Linux system that several accelerators need: Debian packages, kernel modules, device nodes, venvs.

The Hailo and IMX500 probes (:mod:`edge_classifier.hailo`, :mod:`edge_classifier.imx500`) read the same kinds of
facts: which apt packages dpkg lists as installed, whether a kernel module is loaded and its version, who may open
a device node, and whether this virtualenv hides the system's ``dist-packages`` (where apt puts ``hailo_platform``
and ``picamera2``). Each function takes ``root`` (default ``/``) so that tests, and containers that mount the
host's /sys elsewhere, can point it at another tree. Nothing here imports the rest of the package.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: Where Debian's python3-* packages put their modules (``hailo_platform``, ``picamera2``).
SYSTEM_DIST_PACKAGES = "/usr/lib/python3/dist-packages"
#: The same variable :func:`edge_classifier.edgetpu.discovery.sysroot` reads: one root for every probe.
ENV_SYSROOT = "EDGE_CLASSIFIER_SYSROOT"


def sysroot() -> str:
    """Where /sys, /dev, /lib/firmware and dpkg's status are probed: ``$EDGE_CLASSIFIER_SYSROOT`` or ``/``."""
    return os.environ.get(ENV_SYSROOT) or "/"


def under(root: str | Path, path: str) -> Path:
    """``path`` (absolute) inside the tree at ``root``."""
    return Path(root) / path.lstrip("/")


def read_text(path: Path) -> str:
    """The stripped text of a small sysfs or config file, or ``""`` when it cannot be read."""
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def dpkg_installed(root: str | Path = "/", names: Iterable[str] | None = None) -> dict[str, str]:
    """Installed Debian packages and their versions, from dpkg's status file (``{}`` where there is none).

    Args:
        root: the filesystem root.
        names: only these packages (all when None).
    """
    wanted = set(names) if names is not None else None
    try:
        text = under(root, "/var/lib/dpkg/status").read_text(errors="replace")
    except OSError:
        return {}
    found: dict[str, str] = {}
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(" "))
        name = fields.get("Package", "")
        if not name or (wanted is not None and name not in wanted):
            continue
        # "install ok installed"; a package removed but not purged says "deinstall ok config-files".
        if "installed" in fields.get("Status", "").split():
            found[name] = fields.get("Version", "?")
    return found


def module_loaded(root: str | Path, name: str) -> bool:
    """True when the kernel module ``name`` is loaded (or built in): ``/sys/module/<name>`` exists."""
    return under(root, f"/sys/module/{name}").is_dir()


def module_version(root: str | Path, name: str) -> str | None:
    """A loaded module's ``MODULE_VERSION`` (``/sys/module/<name>/version``), or None."""
    return read_text(under(root, f"/sys/module/{name}/version")) or None


@dataclass(frozen=True)
class Identity:
    """Whose permissions to check a device node against (tests use a non-root one)."""

    uid: int
    gids: frozenset[int]


@dataclass(frozen=True)
class NodeState:
    """A device node as this user sees it.

    Attributes:
        exists: the node is there.
        accessible: this user may read and write it (False when it does not exist).
        owner: ``user:group mode`` for messages (empty when it does not exist).
    """

    exists: bool
    accessible: bool
    owner: str = ""


def _owner(st: os.stat_result) -> str:
    try:
        import grp
        import pwd

        user = pwd.getpwuid(st.st_uid).pw_name
        group = grp.getgrgid(st.st_gid).gr_name
    except (ImportError, KeyError):
        user, group = str(st.st_uid), str(st.st_gid)
    return f"{user}:{group} {stat.filemode(st.st_mode)}"


def node_state(node: Path, identity: Identity | None = None) -> NodeState:
    """Whether ``node`` exists and this user (or ``identity``) may read and write it."""
    try:
        st = node.stat()
    except OSError:
        return NodeState(False, False)
    if identity is None:
        # os.access honours ACLs, which is how udev's TAG+="uaccess" grants the desktop user.
        return NodeState(True, os.access(node, os.R_OK | os.W_OK), _owner(st))
    if identity.uid == 0:
        return NodeState(True, True, _owner(st))
    if st.st_uid == identity.uid:
        need = stat.S_IRUSR | stat.S_IWUSR
    elif st.st_gid in identity.gids:
        need = stat.S_IRGRP | stat.S_IWGRP
    else:
        need = stat.S_IROTH | stat.S_IWOTH
    return NodeState(True, st.st_mode & need == need, _owner(st))


def in_venv() -> bool:
    """True inside a virtualenv (``sys.prefix`` differs from the base interpreter's)."""
    return sys.prefix != sys.base_prefix


def venv_hides_system_packages() -> bool:
    """True inside a virtualenv made without ``--system-site-packages``: apt's Python modules are invisible."""
    if not in_venv():
        return False
    try:
        text = (Path(sys.prefix) / "pyvenv.cfg").read_text()
    except OSError:
        return False
    return not any(line.replace(" ", "").lower() == "include-system-site-packages=true" for line in text.splitlines())


def system_module_path(root: str | Path, module: str) -> Path | None:
    """Where apt installed ``module`` (``/usr/lib/python3/dist-packages/<module>``), or None when it is not there."""
    base = under(root, SYSTEM_DIST_PACKAGES)
    for candidate in (base / module, base / f"{module}.py"):
        if candidate.exists():
            return candidate
    return None


VENV_FIX = (
    "recreate the virtualenv with system packages visible: python3 -m venv --system-site-packages .venv "
    "(then pip install edge-classifier again)"
)
