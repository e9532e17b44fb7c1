"""Hailo (AI HAT+, AI Kit) facts, without HailoRT where possible: find devices, probe HailoRT, explain failures.

No policy and no loading here (those are :mod:`edge_classifier.backends.select` and
:mod:`edge_classifier.backends.hailo`):

- :mod:`.hef`: what a ``.hef`` file is and which chip it was compiled for (its name, or a sidecar).
- :mod:`.discovery`: Hailo devices from sysfs and /dev (PCIe ``1e60:*``, ``/dev/hailoN``, the driver module).
- :mod:`.runtime`: HailoRT's Python binding (``hailo_platform``), its version, the apt packages, ``hailortcli``.
- :mod:`.diagnose`: turn a failed open into the one :class:`~edge_classifier.errors.HailoError` that fits.
"""
