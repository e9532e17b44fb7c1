"""Bundled models, their manifest and labels (installed as the ``edge_classifier.models`` package)."""
