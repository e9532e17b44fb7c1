"""Host-side converters: from an ImageNet model to a full-integer INT8 TFLite file that carries its own contract.

The folder is ``converters/`` in the repository and installs as ``edge_classifier.convert`` (mapped in
pyproject.toml, like ``models/``), so nothing named ``converters`` lands in site-packages: import it as
``edge_classifier.convert``. Needs TensorFlow, from the ``[convert]`` extra; the runtime never imports this package.
Entry point: the ``edge-convert`` command (:mod:`edge_classifier.convert.cli`).
"""
