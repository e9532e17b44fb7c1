"""edge_classifier test suite."""
