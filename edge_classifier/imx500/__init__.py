"""Sony IMX500 (the Raspberry Pi AI Camera) facts: read ``.rpk`` networks, find the sensor, explain failures.

No policy and no loading here (those are :mod:`edge_classifier.backends.select`, :mod:`edge_classifier.backends.imx500`
and :mod:`edge_classifier.sources.imx500`):

- :mod:`.rpk`: what an ``.rpk`` holds (input size and format, the network's intrinsics: task, labels, softmax).
- :mod:`.discovery`: the IMX500 camera from sysfs and /dev, its firmware, the models folder, the apt packages and
  picamera2's IMX500 support.
- :mod:`.diagnose`: turn a failed open into the one :class:`~edge_classifier.errors.IMX500Error` that fits.
"""
