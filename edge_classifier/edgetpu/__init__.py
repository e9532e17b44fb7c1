"""Coral Edge TPU facts, without pycoral: find devices, probe libedgetpu, explain failures. No policy, no loading.

- :mod:`.discovery`: Edge TPUs from sysfs and /dev (USB ids, PCIe ids, /dev/apex_N, the apex module).
- :mod:`.library`: libedgetpu's file name per OS, and its own version and device list through ctypes.
- :mod:`.diagnose`: turn a failed delegate load into the one :class:`~edge_classifier.errors.EdgeTpuError` that fits.

Loading a model on the Edge TPU is :mod:`edge_classifier.backends.local`; the worker process and the
failover that were here (``edgetpu.worker``, ``edgetpu.failover``) are :mod:`edge_classifier.backends.isolated`
and :mod:`edge_classifier.backends.failover`; the old paths are deprecated aliases for one release.
"""
