"""The ``edge-convert`` command: one subcommand per job, each module with ``register(sub)`` and ``run(args)``.

::

    edge-convert convert efficientnet-lite0 --calib photos/ -o out/
    edge-convert convert mobilenet_v2 --weights imagenet --calib photos/ -o out/
    edge-convert convert my_model.keras --calib photos/ --val labelled/ -o out/
    edge-convert analyze model.tflite          # Edge TPU compatibility (edgetpu_cli)
    edge-convert compile model_int8.tflite     # edgetpu_compiler wrapper (edgetpu_cli)
    edge-convert train photos/ -o out/         # fine-tune on a labelled folder (train_cli)

The old form without a subcommand, ``edge-convert mobilenet_v2 --calib photos/ -o out/``, still converts (with a
deprecation note). Without ``-v`` TensorFlow's native log lines are kept off stderr (see :mod:`.cli_support`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from edge_classifier.cli import run_command, setup_logging
from edge_classifier.errors import EdgeClassifierError
from edge_classifier.options import Option, add_options

from .cli_support import (
    check_output_folder,
    filtered_stderr,
    is_extra_module,
    missing_extra_line,
    missing_extra_module,
    quiet_tensorflow_env,
)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

#: (module of this package, the subcommands it registers), in ``--help`` order. A module that is not there is
#: skipped, so a subcommand appears the moment its module does.
SUBCOMMAND_MODULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cli", ("convert",)),
    ("edgetpu_cli", ("analyze", "compile")),
    ("train_cli", ("train",)),
)
SUBCOMMANDS: tuple[str, ...] = tuple(name for _, names in SUBCOMMAND_MODULES for name in names)
#: The subcommands that run TensorFlow: without the [convert] extra they stop at once with one line saying so.
NEEDS_CONVERT_EXTRA: tuple[str, ...] = ("convert", "train")
_TOP_LEVEL_OPTIONS = ("-h", "--help", "--version")


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 224 or 224x224") from exc
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or min(vals) < 8 or max(vals) > 4096:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 224 or 224x224 (height x width, 8 to 4096)")
    return vals[0], vals[1]


def _fraction(text: str) -> float:
    try:
        v = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction like 0.95 or 95%") from exc
    if not 0 <= v <= 1:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1 (or 0% and 100%)")
    return v


# The numeric options share the runtime's option rules (finite, in range, one clean message).
_CONVERT_OPTIONS: tuple[Option, ...] = (
    Option("mean", "floats", "normalisation mean (one value or R,G,B) when the model file does not say"),
    Option("std", "floats", "normalisation std (one value or R,G,B) when the model file does not say", low=0.0, low_open=True),
    Option("crop-fraction", "float", "with --resize center_crop: the share of the centre kept (embedded in the spec)", low=0.0,
           low_open=True, high=1.0),
    Option("num-calib", "int", "calibration samples (default 300)", default=300, low=1, high=100_000),
    Option("seed", "int", "seed for augmentation and the validation split", default=0, low=0, high=2**32 - 1),
    Option("max-val", "int", "validation images at most (default 200)", default=200, low=0, high=1_000_000),
)  # fmt: skip


def register(sub: Any) -> None:
    """Add the ``convert`` subcommand."""
    p = sub.add_parser(
        "convert",
        help="convert a model to a full-integer INT8 .tflite that carries its labels and spec",
        description="Convert an ImageNet classifier to a full-integer INT8 .tflite that carries its labels and spec.",
    )
    add_convert_arguments(p)
    p.set_defaults(func=run)


def add_convert_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of ``edge-convert convert``."""
    from .sources import KERAS_APPS

    p.add_argument(
        "model",
        help="efficientnet-lite0|1|2, a Keras application ("
        + ", ".join(KERAS_APPS)
        + "), a .keras/.h5 file or a SavedModel directory",
    )
    opt = {o.name: o for o in _CONVERT_OPTIONS}
    p.add_argument("--calib", required=True, type=Path, help="folder of calibration photos (searched recursively)")
    p.add_argument("-o", "--out", type=Path, default=Path("."), help="output folder (default: current)")
    p.add_argument("--val", type=Path, help="held-out validation folder; a sub-folder per class (label or id) adds accuracy")
    p.add_argument("--weights", help="imagenet (Keras download) | none (random, structure tests) | PATH of a local weights file")
    p.add_argument("--input-size", type=_size, help="HxW when the model does not fix it, e.g. 224x224")
    add_options(p, (opt["mean"], opt["std"]))
    p.add_argument("--labels", help="labels file, one per line (ImageNet labels are built in for 1000/1001 outputs)")
    p.add_argument(
        "--resize", choices=("stretch", "center_crop", "letterbox"), help="how frames are fitted (embedded in the spec)"
    )
    add_options(p, (opt["crop-fraction"],))
    p.add_argument("--name", help="output name (default: from the model)")
    p.add_argument("--io", choices=("uint8", "int8"), default="uint8", help="input/output tensor type (default uint8)")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weight scales instead of per-channel")
    add_options(p, (opt["num-calib"],))
    p.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fill --num-calib with seeded random crops/flips (default: when the folder has fewer photos than --num-calib)",
    )
    add_options(p, (opt["seed"], opt["max-val"]))
    p.add_argument(
        "--min-agreement", type=_fraction, help="fail when INT8 top-1 agreement with float is below this (0.95 or 95%%)"
    )
    p.add_argument(
        "--target",
        choices=("tflite", "imx500"),
        default="tflite",
        help="tflite: an INT8 .tflite (default); imx500: packerOut.zip for the Raspberry Pi AI Camera, made by Sony's MCT "
        "and imxconv in an environment of their own (installed on first use from PyPI; needs Java 17+)",
    )
    p.add_argument("--edgetpu", action="store_true", help="also analyze and compile for the Edge TPU (needs edgetpu_compiler)")
    p.add_argument("--compiler", help="path of edgetpu_compiler for --edgetpu (default: found on PATH; implies --edgetpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="count", default=0, help="TensorFlow's own log lines too (-vv: debug)")


def run(args: argparse.Namespace) -> int:
    """Convert one model (and compile it with ``--edgetpu``); returns the exit status."""
    out_dir = check_output_folder(args.out, "-o")
    from .convert import ConvertOptions, compile_for_edgetpu, convert
    from .report import summary

    opts = ConvertOptions(
        model=args.model,
        calib=args.calib,
        out_dir=out_dir,
        val=args.val,
        weights=args.weights,
        input_size=args.input_size,
        mean=tuple(args.mean) if args.mean else None,
        std=tuple(args.std) if args.std else None,
        labels=args.labels,
        resize=args.resize,
        crop_fraction=args.crop_fraction,
        name=args.name,
        io=args.io,
        per_channel=not args.per_tensor,
        num_calib=args.num_calib,
        augment=args.augment,
        seed=args.seed,
        max_val=args.max_val,
        min_agreement=args.min_agreement,
        progress=not args.no_progress,
        command=["edge-convert", *getattr(args, "argv", [])],
    )
    if getattr(args, "target", "tflite") == "imx500":
        return _run_imx500(args, opts)
    report: dict[str, Any] | None = None
    try:
        report = convert(opts)
        print(summary(report))
        if args.edgetpu or args.compiler:
            sys.stdout.flush()  # the summary first, whatever the compiler prints or fails with
            result = compile_for_edgetpu(report, compiler=args.compiler)
            print()
            print(result.format_text())
    except EdgeClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if report is not None:
            out = report["output"]
            print(
                f"note: the INT8 model and its report are written ({out['tflite']}, {out['report']}); "
                f"compile it later with: edge-convert compile {out['tflite']}",
                file=sys.stderr,
            )
        return EXIT_ERROR
    return EXIT_OK


def _run_imx500(args: argparse.Namespace, opts: Any) -> int:
    """``--target imx500``: Sony's toolchain instead of the TFLite converter (see :mod:`.imx500`)."""
    if args.edgetpu or args.compiler:
        print(
            "error: --target imx500 makes a network for the AI Camera; --edgetpu/--compiler are for the TFLite target",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from .imx500 import convert_imx500, summary

    try:
        print(summary(convert_imx500(opts)))
    except EdgeClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


# --- the command ------------------------------------------------------------------------------------
def _register_module(sub: Any, module: str, names: tuple[str, ...]) -> None:
    if module == "cli":
        register(sub)
        return
    if importlib.util.find_spec(f"{__package__}.{module}") is None:
        return  # not installed (yet): the subcommand is simply not offered
    try:
        importlib.import_module(f".{module}", __package__).register(sub)
    except ModuleNotFoundError as exc:
        if not is_extra_module(exc.name):
            raise
        # The module imports the extra at its top: still list the command, and say what is missing when it is run.
        for name in names:
            p = sub.add_parser(name, help=f"(needs the [convert] extra: {exc.name} is not installed)")
            p.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            p.set_defaults(func=_missing(exc.name or name))


def _missing(module: str) -> Any:
    def run(args: argparse.Namespace) -> int:
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    return run


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``edge-convert`` with every subcommand this installation has."""
    from edge_classifier._version import __version__

    parser = argparse.ArgumentParser(
        prog="edge-convert",
        description="Host-side tools for edge_classifier: convert a model to a full-integer INT8 .tflite that carries its "
        "labels and spec, then check and compile it for the Edge TPU.",
        epilog="edge-convert COMMAND --help shows each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"edge-convert (edge-classifier {__version__})")
    sub = parser.add_subparsers(dest="command", title="commands")
    sub.required = True
    for module, names in SUBCOMMAND_MODULES:
        _register_module(sub, module, names)
    return parser


def _with_subcommand(argv: list[str]) -> list[str]:
    """``argv`` with ``convert`` in front when it is the old form ``edge-convert MODEL ...`` (said on stderr)."""
    if not argv or argv[0] in SUBCOMMANDS or argv[0] in _TOP_LEVEL_OPTIONS:
        return argv
    print(
        "note: `edge-convert MODEL ...` is deprecated and will be removed; write `edge-convert convert MODEL ...`",
        file=sys.stderr,
    )
    return ["convert", *argv]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``edge-convert``; returns the exit status."""
    args_list = _with_subcommand(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(args_list)
    args.argv = args_list
    verbose = int(getattr(args, "verbose", 0) or 0)
    setup_logging(verbose)
    if not verbose:
        quiet_tensorflow_env()
    command = f"edge-convert {args.command}"

    def call() -> int:
        try:
            if args.command in NEEDS_CONVERT_EXTRA and (missing := missing_extra_module()) is not None:
                print(missing_extra_line(command, missing), file=sys.stderr)
                return EXIT_ERROR
            return int(args.func(args))
        except ModuleNotFoundError as exc:
            if not is_extra_module(exc.name):
                raise
            print(missing_extra_line(command, exc.name or "tensorflow"), file=sys.stderr)
            return EXIT_ERROR

    with filtered_stderr() if not verbose else nullcontext():
        return run_command(call)


if __name__ == "__main__":
    sys.exit(main())
