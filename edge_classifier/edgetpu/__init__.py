"""Coral Edge TPU support without pycoral: find devices, probe libedgetpu, explain failures, isolate the interpreter.

- :mod:`.discovery`: Edge TPUs from sysfs and /dev (USB ids, PCIe ids, /dev/apex_N, the apex module).
- :mod:`.library`: libedgetpu's file name per OS, and its own version and device list through ctypes.
- :mod:`.diagnose`: turn a failed delegate load into the one :class:`~edge_classifier.errors.EdgeTpuError` that fits.
- :mod:`.worker`: run an interpreter in a child process, so an aborting libedgetpu cannot end the caller.
- :mod:`.failover`: on ``device="auto"``, answer on the CPU twin while the Edge TPU is lost, and retry it.
"""
