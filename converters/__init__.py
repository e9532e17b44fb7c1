"""Host-side converters: from an ImageNet model to a full-integer INT8 TFLite file that carries its own contract.

Needs TensorFlow (``pip install -e ".[convert]"``); the runtime package ``edge_classifier`` never imports it.
Entry point: the ``edge-convert`` command (:mod:`converters.cli`).
"""
