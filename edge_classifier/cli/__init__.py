"""The ``edge-classifier`` command: one module per subcommand, each with ``register`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import EdgeClassifierError, FallbackWarning

if TYPE_CHECKING:
    from ..classifier import Classifier

# Each module registers its subcommand; listed here so the order of --help is deliberate.
SUBCOMMANDS: tuple[str, ...] = ("classify", "run", "service", "devices", "doctor", "bench")

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    from .. import __version__

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
    """-v shows which back-end was chosen and why; -vv shows debug detail."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``edge-classifier``; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(getattr(args, "verbose", 0))
    # The log already says it, with the fix; the Python warning would repeat it.
    warnings.simplefilter("ignore", FallbackWarning)
    try:
        return int(args.func(args))
    except EdgeClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Options shared by every command that loads a model."""
    p.add_argument("--model", "-m", help="a .tflite classifier (default: the bundled EfficientNet-Lite0 INT8)")
    p.add_argument("--labels", help="labels file overriding those embedded in the model")
    p.add_argument("--backend", default="auto", help="auto | ai-edge-litert | tflite-runtime | tensorflow")
    p.add_argument("--device", default="auto", help="auto | cpu | edgetpu | usb | usb:N | pci | pci:N | :N")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--top-k", "-k", type=int, default=5, help="classes per image (default 5)")
    p.add_argument("--min-score", type=float, default=0.0, help="drop classes scoring below this")
    p.add_argument("--mean", type=_floats, help="normalisation mean, one value or R,G,B")
    p.add_argument("--std", type=_floats, help="normalisation std, one value or R,G,B")
    p.add_argument("--resize", choices=("stretch", "center_crop", "letterbox"), help="how frames are fitted")
    p.add_argument("--color-order", choices=("RGB", "BGR"), help="channel order the model expects")
    p.add_argument("--label-offset", type=int, help="leading outputs that are not classes (1 for background)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="say which back-end was chosen and why")


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or a comma-separated list of numbers") from exc


def classifier_from_args(args: argparse.Namespace) -> Classifier:
    """Build a Classifier from the shared model options."""
    from ..classifier import Classifier
    from ..spec import SpecOverrides

    overrides = SpecOverrides(
        mean=args.mean, std=args.std, resize=args.resize, color_order=args.color_order, label_offset=args.label_offset
    )
    return Classifier(
        args.model,
        labels=args.labels,
        backend=args.backend,
        device=args.device,
        num_threads=args.threads,
        top_k=args.top_k,
        min_score=args.min_score,
        overrides=overrides,
    )
