"""The ``edge-convert`` command.

::

    edge-convert efficientnet-lite0 --calib photos/ -o out/
    edge-convert mobilenet_v2 --weights imagenet --calib photos/ -o out/
    edge-convert my_model.keras --calib photos/ --val labelled/ -o out/
    edge-convert analyze model.tflite          # Edge TPU compatibility (converters.edgetpu_cli)
    edge-convert compile model_int8.tflite     # edgetpu_compiler wrapper (converters.edgetpu_cli)
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_classifier.errors import EdgeClassifierError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
_EDGETPU_SUBCOMMANDS = {"analyze": "main_analyze", "compile": "main_compile"}


def _size(text: str) -> tuple[int, int]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        vals = [int(p) for p in parts]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 224 or 224x224") from exc
    if len(vals) == 1:
        vals = vals * 2
    if len(vals) != 2 or min(vals) < 8:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 224 or 224x224 (height x width, at least 8)")
    return vals[0], vals[1]


def _floats(text: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(x) for x in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or R,G,B numbers") from exc
    if len(vals) not in (1, 3):
        raise argparse.ArgumentTypeError(f"{text!r}: give one number or three (R,G,B)")
    return vals


def _fraction(text: str) -> float:
    try:
        v = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction like 0.95 or 95%") from exc
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1 (or 0% and 100%)")
    return v


def build_parser() -> argparse.ArgumentParser:
    """The parser of the convert command."""
    from .sources import KERAS_APPS

    p = argparse.ArgumentParser(
        prog="edge-convert",
        description="Convert an ImageNet classifier to a full-integer INT8 .tflite that carries its labels and spec. "
        "Also: `edge-convert analyze MODEL` and `edge-convert compile MODEL` for the Edge TPU.",
    )
    p.add_argument(
        "model",
        help="efficientnet-lite0|1|2, a Keras application (" + ", ".join(KERAS_APPS) + "), a .keras/.h5 file or a SavedModel directory",
    )
    p.add_argument("--calib", required=True, type=Path, help="folder of calibration photos (searched recursively)")
    p.add_argument("-o", "--out", type=Path, default=Path("."), help="output folder (default: current)")
    p.add_argument("--val", type=Path, help="held-out validation folder; a sub-folder per class (label or id) adds accuracy")
    p.add_argument("--weights", help="imagenet (Keras download) | none (random, structure tests) | PATH of a local weights file")
    p.add_argument("--input-size", type=_size, help="HxW when the model does not fix it, e.g. 224x224")
    p.add_argument("--mean", type=_floats, help="normalisation mean (one value or R,G,B) when the model file does not say")
    p.add_argument("--std", type=_floats, help="normalisation std (one value or R,G,B) when the model file does not say")
    p.add_argument("--labels", help="labels file, one per line (ImageNet labels are built in for 1000/1001 outputs)")
    p.add_argument("--resize", choices=("stretch", "center_crop", "letterbox"), help="how frames are fitted (embedded in the spec)")
    p.add_argument("--name", help="output name (default: from the model)")
    p.add_argument("--io", choices=("uint8", "int8"), default="uint8", help="input/output tensor type (default uint8)")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weight scales instead of per-channel")
    p.add_argument("--num-calib", type=int, default=300, help="calibration samples (default 300)")
    p.add_argument("--augment", action="store_true", help="fill --num-calib with seeded random crops/flips when the folder is small")
    p.add_argument("--seed", type=int, default=0, help="seed for augmentation and the validation split")
    p.add_argument("--max-val", type=int, default=200, help="validation images at most (default 200)")
    p.add_argument("--min-agreement", type=_fraction, help="fail when INT8 top-1 agreement with float is below this (0.95 or 95%%)")
    p.add_argument("--edgetpu", action="store_true", help="also analyze and compile for the Edge TPU (needs edgetpu_compiler)")
    p.add_argument("--compiler", help="path of edgetpu_compiler for --edgetpu (default: found on PATH; implies --edgetpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def _edgetpu(argv: Sequence[str], sub: str) -> int:
    try:
        mod = importlib.import_module("converters.edgetpu_cli")
    except ImportError as exc:
        print(f"error: edge-convert {sub}: the Edge TPU tools are not installed ({exc})", file=sys.stderr)
        return EXIT_ERROR
    return int(getattr(mod, _EDGETPU_SUBCOMMANDS[sub])(list(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``edge-convert``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in _EDGETPU_SUBCOMMANDS:
        return _edgetpu(args_list[1:], args_list[0])
    args = build_parser().parse_args(args_list)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from .convert import ConvertOptions, compile_for_edgetpu, convert
    from .report import summary

    opts = ConvertOptions(
        model=args.model,
        calib=args.calib,
        out_dir=args.out,
        val=args.val,
        weights=args.weights,
        input_size=args.input_size,
        mean=args.mean,
        std=args.std,
        labels=args.labels,
        resize=args.resize,
        name=args.name,
        io=args.io,
        per_channel=not args.per_tensor,
        num_calib=args.num_calib,
        augment=args.augment,
        seed=args.seed,
        max_val=args.max_val,
        min_agreement=args.min_agreement,
        progress=not args.no_progress,
        command=["edge-convert", *args_list],
    )
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
