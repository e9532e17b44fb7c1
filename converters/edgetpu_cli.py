"""``edge-convert analyze`` and ``edge-convert compile``: the Edge TPU side of the converter's command line.

``converters.cli`` dispatches to :func:`main_analyze` and :func:`main_compile`; until then run
``python -m converters.edgetpu_cli analyze|compile ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from edge_classifier.errors import EdgeClassifierError

from .edgetpu_ops import DEFAULT_RUNTIME_VERSION

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FULLY_MAPPED = 3
EXIT_INTERRUPTED = 130


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the INT8 .tflite model")
    p.add_argument("--json", action="store_true", help="print a JSON report for tools")
    p.add_argument("--require-full", action="store_true",
                   help=f"exit with status {EXIT_NOT_FULLY_MAPPED} unless every op runs on the Edge TPU")
    p.add_argument("-a", "--enable-multiple-subgraphs", dest="multiple_subgraphs", action="store_true",
                   help="allow several Edge TPU subgraphs (the compiler's -a)")
    p.add_argument("-m", "--min-runtime-version", type=int, default=None,
                   help=f"lowest Edge TPU runtime to support (the compiler's -m; default {DEFAULT_RUNTIME_VERSION})")


def analyze_parser() -> argparse.ArgumentParser:
    """Arguments of ``edge-convert analyze``."""
    p = argparse.ArgumentParser(
        prog="edge-convert analyze",
        description="Predict, without edgetpu_compiler, which ops of an INT8 model run on the Edge TPU, why the others "
                    "stay on the CPU, and what would fix them.",
    )
    _common(p)
    p.add_argument("--summary", action="store_true", help="omit the per-op table")
    return p


def compile_parser() -> argparse.ArgumentParser:
    """Arguments of ``edge-convert compile``."""
    p = argparse.ArgumentParser(
        prog="edge-convert compile",
        description="Compile an INT8 model with edgetpu_compiler, check the result, and compare it with the prediction.",
    )
    _common(p)
    p.add_argument("--compiler", help="path of edgetpu_compiler (default: found on PATH)")
    p.add_argument("-o", "--out-dir", help="output folder (default: beside the model)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds before the compiler is stopped (default 600)")
    p.add_argument("-s", "--show-operations", action="store_true", help="accepted for compatibility; always on")
    p.add_argument("-n", "--num-segments", type=int, help="split into N segments for pipelining (the compiler's -n)")
    p.add_argument("-d", "--search-delegate", action="store_true", help="search for the largest part that compiles (-d)")
    p.add_argument("-k", "--delegate-search-step", type=int, help="step of that search (-k)")
    p.add_argument("-i", "--intermediate-tensors", help="comma-separated tensor names to expose as outputs (-i)")
    p.add_argument("-t", "--compiler-timeout", type=int, help="the compiler's own timer in seconds (-t, compiler 16)")
    return p


def main_analyze(argv: Sequence[str]) -> int:
    """Run ``edge-convert analyze``; returns the exit status."""
    args = analyze_parser().parse_args(list(argv))
    from .edgetpu_analysis import analyze_model

    try:
        report = analyze_model(
            args.model, multiple_subgraphs=args.multiple_subgraphs,
            min_runtime_version=args.min_runtime_version or DEFAULT_RUNTIME_VERSION,
        )
    except EdgeClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format_text(per_op=not args.summary))
    return EXIT_NOT_FULLY_MAPPED if args.require_full and not report.fully_mapped else EXIT_OK


def main_compile(argv: Sequence[str]) -> int:
    """Run ``edge-convert compile``; returns the exit status."""
    args = compile_parser().parse_args(list(argv))
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
    """Dispatch ``analyze`` / ``compile`` (for ``python -m converters.edgetpu_cli``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"analyze": main_analyze, "compile": main_compile}
    if not argv or argv[0] not in commands:
        print("usage: python -m converters.edgetpu_cli {analyze|compile} MODEL [options]  (-h for help)", file=sys.stderr)
        return EXIT_USAGE
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
