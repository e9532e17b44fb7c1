"""The conversion report: ``<name>_report.json`` and the summary printed at the end."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any


def versions() -> dict[str, str]:
    """Versions of everything that shaped the converted file."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in (
        "edge-classifier",
        "tensorflow-cpu",
        "tensorflow",
        "keras",
        "numpy",
        "ai-edge-litert",
        "opencv-python-headless",
        "pillow",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def write_report(report: dict[str, Any], path: Path) -> Path:
    """Write the report as indented JSON (flushed and closed before returning)."""
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def summary(report: dict[str, Any]) -> str:
    """A short human summary of a report."""
    out = report["output"]
    lines = [
        f"model      {report['source']}",
        f"wrote      {out['tflite']}  ({out['size_bytes'] / 1e6:.2f} MB, "
        f"float {report['float']['size_estimate_bytes'] / 1e6:.2f} MB)",
        f"input      {report['check']['input']['dtype']} {report['check']['input']['shape']} "
        f"scale {report['check']['input']['scale']:.6g} zero point {report['check']['input']['zero_point']}",
        f"spec       {report['spec']}",
        "ops        " + ", ".join(f"{k} x{v}" for k, v in report["check"]["ops"].items()),
        f"calibrated {report['calibration']['samples']} samples from {report['calibration']['images']} images "
        f"({report['calibration']['augmented']} augmented) in {report['times_s']['quantize']:.1f} s",
    ]
    val = report.get("validation")
    if val:
        held = "held-out" if val["held_out"] else "NOT held out (calibration images)"
        lines.append(
            f"validation {val['images']} {held} images: top-1 agreement {_pct(val['top1_agreement'])}, "
            f"top-5 overlap {_pct(val['top5_overlap'])}, mean TV distance {val['mean_total_variation']:.4f}"
        )
        if val["labelled_images"]:
            lines.append(
                f"accuracy   top-1 on {val['labelled_images']} labelled images: float {_pct(val['float_top1_accuracy'])}, "
                f"INT8 {_pct(val['int8_top1_accuracy'])}"
            )
    tpu = report["check"].get("edgetpu_analysis")
    if tpu:
        if tpu["fatal"]:
            verdict = "edgetpu_compiler would reject it: " + "; ".join(tpu["fatal"])
        elif tpu["fully_mapped"]:
            verdict = f"all {tpu['total_ops']} ops predicted on the Edge TPU"
        else:
            verdict = (
                f"{tpu['edgetpu_ops']} of {tpu['total_ops']} ops predicted on the Edge TPU; CPU: {', '.join(tpu['cpu_ops'])}"
            )
        lines.append(f"edgetpu    {verdict} (details: edge-convert analyze {out['tflite']})")
    for w in report["check"]["warnings"]:
        lines.append(f"warning    {w}")
    lines.append(f"report     {out['report']}")
    return "\n".join(lines)
