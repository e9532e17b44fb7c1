"""The ``edge-classifier`` command: one module per subcommand, each with ``register`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import EdgeClassifierError, FallbackWarning
from ..options import MODEL_OPTIONS, add_options

if TYPE_CHECKING:
    from ..classifier import Classifier

# Each module registers its subcommand; listed here so the order of --help is deliberate.
SUBCOMMANDS: tuple[str, ...] = ("classify", "evaluate", "run", "collect", "service", "devices", "doctor", "bench")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="edge-classifier",
        description="Classify images and camera frames with a TFLite ImageNet classifier, on CPU or Coral Edge TPU.",
    )
    parser.add_argument("--version", action="version", version=f"edge-classifier {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def setup_logging(verbosity: int) -> None:
    """-v shows which back-end was chosen and why; -vv shows debug detail. Every URL in a log line is redacted."""
    from ..redact import RedactingFilter

    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def run_command(call: Callable[[], int]) -> int:
    """Run a command's body and turn the ways it can end into exit statuses, without a traceback.

    An :class:`EdgeClassifierError` prints ``error: ...`` (it names the thing, the cause and the fix) and gives 1;
    Ctrl-C gives 130; a closed stdout (``| head -1``) stops quietly, as a Unix tool does, with the status a shell
    gives one that SIGPIPE ended (128 + 13), stdout pointed at /dev/null so Python's flush at exit cannot fail.
    Shared by ``edge-classifier`` and ``edge-convert``.
    """
    try:
        return int(call())
    except EdgeClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        from ..sinks.jsonl import silence_stdout

        silence_stdout()
        return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``edge-classifier``; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", 0))
    # The log already says it, with the fix; the Python warning would repeat it.
    warnings.simplefilter("ignore", FallbackWarning)
    return run_command(lambda: args.func(args))


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that loads a model (declared in :data:`edge_classifier.options.MODEL_OPTIONS`)."""
    add_options(p, MODEL_OPTIONS)


def classifier_from_args(args: argparse.Namespace) -> Classifier:
    """Build a Classifier from the shared model options."""
    from ..classifier import Classifier
    from ..spec import SpecOverrides

    overrides = SpecOverrides(
        mean=args.mean,
        std=args.std,
        resize=args.resize,
        crop_fraction=getattr(args, "crop_fraction", None),
        color_order=args.color_order,
        label_offset=args.label_offset,
    )
    from ..sensor_classifier import is_sensor_model, open_sensor_classifier

    if is_sensor_model(args.model):  # an IMX500 .rpk: the AI Camera classifies its own frames
        return open_sensor_classifier(  # type: ignore[return-value]
            args.model, device=args.device, labels=args.labels, runtime=args.backend, num_threads=args.threads,
            top_k=args.top_k, min_score=args.min_score, overrides=overrides,
        )  # fmt: skip
    return Classifier(
        args.model,
        labels=args.labels,
        runtime=args.backend,
        device=args.device,
        num_threads=args.threads,
        top_k=args.top_k,
        min_score=args.min_score,
        overrides=overrides,
    )
