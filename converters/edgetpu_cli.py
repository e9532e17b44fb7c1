"""``edge-convert analyze`` and ``edge-convert compile``: the Edge TPU side of the converter's command line.

:func:`register` adds both subcommands to ``edge-convert`` (:mod:`.cli`); :func:`main_analyze` and
:func:`main_compile` run one of them from an argument list, and ``python -m edge_classifier.convert.edgetpu_cli
analyze|compile ...`` works too.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from edge_classifier.errors import EdgeClassifierError

from .cli_support import check_output_folder
from .edgetpu_ops import DEFAULT_RUNTIME_VERSION

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FULLY_MAPPED = 3
EXIT_INTERRUPTED = 130


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the INT8 .tflite model")
    p.add_argument("--json", action="store_true", help="print a JSON report for tools")
    p.add_argument(
        "--require-full",
        action="store_true",
        help=f"exit with status {EXIT_NOT_FULLY_MAPPED} unless every op runs on the Edge TPU",
    )
    p.add_argument(
        "-a",
        "--enable-multiple-subgraphs",
        dest="multiple_subgraphs",
        action="store_true",
        help="allow several Edge TPU subgraphs (the compiler's -a)",
    )
    p.add_argument(
        "-m",
        "--min-runtime-version",
        type=int,
        default=None,
        help=f"lowest Edge TPU runtime to support (the compiler's -m; default {DEFAULT_RUNTIME_VERSION})",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="native log lines too")


_ANALYZE_DESCRIPTION = (
    "Predict, without edgetpu_compiler, which ops of an INT8 model run on the Edge TPU, why the others stay on the CPU, "
    "and what would fix them."
)
_COMPILE_DESCRIPTION = "Compile an INT8 model with edgetpu_compiler, check the result, and compare it with the prediction."


def register(sub: Any) -> None:
    """Add ``analyze`` and ``compile`` to ``edge-convert``."""
    p = sub.add_parser(
        "analyze", help="predict which ops run on the Edge TPU (no compiler needed)", description=_ANALYZE_DESCRIPTION
    )
    _analyze_arguments(p)
    p.set_defaults(func=run_analyze)
    p = sub.add_parser(
        "compile", help="compile for the Edge TPU with edgetpu_compiler and check the result", description=_COMPILE_DESCRIPTION
    )
    _compile_arguments(p)
    p.set_defaults(func=run_compile)


def _analyze_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--summary", action="store_true", help="omit the per-op table")


def _compile_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--compiler", help="path of edgetpu_compiler (default: found on PATH)")
    p.add_argument("-o", "--out-dir", help="output folder (default: beside the model)")
    p.add_argument("--timeout", type=_seconds, default=600.0, help="seconds before the compiler is stopped (default 600)")
    p.add_argument("-s", "--show-operations", action="store_true", help="accepted for compatibility; always on")
    p.add_argument("-n", "--num-segments", type=int, help="split into N segments for pipelining (the compiler's -n)")
    p.add_argument("-d", "--search-delegate", action="store_true", help="search for the largest part that compiles (-d)")
    p.add_argument("-k", "--delegate-search-step", type=int, help="step of that search (-k)")
    p.add_argument("-i", "--intermediate-tensors", help="comma-separated tensor names to expose as outputs (-i)")
    p.add_argument("-t", "--compiler-timeout", type=int, help="the compiler's own timer in seconds (-t, compiler 16)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 86400:  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 and at most 86400 (a day)")
    return value


def analyze_parser() -> argparse.ArgumentParser:
    """Arguments of ``edge-convert analyze``."""
    p = argparse.ArgumentParser(prog="edge-convert analyze", description=_ANALYZE_DESCRIPTION)
    _analyze_arguments(p)
    return p


def compile_parser() -> argparse.ArgumentParser:
    """Arguments of ``edge-convert compile``."""
    p = argparse.ArgumentParser(prog="edge-convert compile", description=_COMPILE_DESCRIPTION)
    _compile_arguments(p)
    return p


def main_analyze(argv: Sequence[str]) -> int:
    """Run ``edge-convert analyze``; returns the exit status."""
    return run_analyze(analyze_parser().parse_args(list(argv)))


def run_analyze(args: argparse.Namespace) -> int:
    """``edge-convert analyze`` with parsed arguments; returns the exit status."""
    from .edgetpu_analysis import analyze_model

    try:
        report = analyze_model(
            args.model,
            multiple_subgraphs=args.multiple_subgraphs,
            min_runtime_version=args.min_runtime_version or DEFAULT_RUNTIME_VERSION,
        )
    except EdgeClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_text(per_op=not args.summary))
    return EXIT_NOT_FULLY_MAPPED if args.require_full and not report.fully_mapped else EXIT_OK


def main_compile(argv: Sequence[str]) -> int:
    """Run ``edge-convert compile``; returns the exit status."""
    return run_compile(compile_parser().parse_args(list(argv)))


def run_compile(args: argparse.Namespace) -> int:
    """``edge-convert compile`` with parsed arguments; returns the exit status."""
    from .edgetpu_compiler import CompileOptions, compile_model

    options = CompileOptions(
        min_runtime_version=args.min_runtime_version,
        num_segments=args.num_segments,
        multiple_subgraphs=args.multiple_subgraphs,
        search_delegate=args.search_delegate,
        delegate_search_step=args.delegate_search_step,
        intermediate_tensors=tuple(t for t in (args.intermediate_tensors or "").split(",") if t),
        compiler_timeout_s=args.compiler_timeout,
    )
    try:
        if args.out_dir is not None:
            check_output_folder(args.out_dir, "--out-dir")
        result = compile_model(args.model, out_dir=args.out_dir, compiler=args.compiler, timeout=args.timeout, options=options)
    except EdgeClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted: no output written", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.format_text())
    return EXIT_NOT_FULLY_MAPPED if args.require_full and not result.fully_mapped else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``analyze`` / ``compile`` (for ``python -m edge_classifier.convert.edgetpu_cli``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"analyze": main_analyze, "compile": main_compile}
    if not argv or argv[0] not in commands:
        print("usage: edge-convert {analyze|compile} MODEL [options]  (-h for help)", file=sys.stderr)
        return EXIT_USAGE
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
