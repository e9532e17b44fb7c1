"""The package version, written once: pyproject.toml reads it (setuptools' dynamic ``attr``), and so do the
package ``__init__``, the CLI and the network sinks. It imports nothing, so any module may import it."""

__version__ = "0.1.0"
