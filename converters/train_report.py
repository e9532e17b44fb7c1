"""The training report: ``<name>_train_report.json``, a self-contained HTML page, and the printed summary.

The page needs no internet and no plotting library: its pictures (training curve, per-class accuracy float vs
INT8, confusion matrix) are drawn with Pillow and embedded as ``data:`` URIs with the thumbnails of the
misclassified validation photos. Class names are written by the page itself (HTML text, so any script shows);
the pictures draw a name only when the bundled font has its letters, and a class number otherwise.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

FLOAT_COLOUR = (66, 133, 244)
INT8_COLOUR = (234, 67, 53)
VAL_COLOUR = (52, 168, 83)
GRID = (225, 225, 225)
INK = (33, 33, 33)
_THUMB = 160


def write_json(report: Mapping[str, Any], path: Path) -> Path:
    """Write the report as indented JSON."""
    path.write_text(json.dumps(report, indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


# --- drawing ---------------------------------------------------------------------------------------------
def _font(size: int = 13) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def drawable_name(name: str, index: int, width: int = 18) -> str:
    """``name`` (shortened) when the bundled font can draw it (Latin-1 letters), else ``#index``."""
    try:
        name.encode("latin-1")
    except UnicodeEncodeError:
        return f"#{index}"
    return name if len(name) <= width else name[: width - 1] + "~"


def _png(img: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def curve_png(history: Sequence[Mapping[str, Any]]) -> bytes:
    """The training curve: accuracy (train, validation) above, loss below, one point per epoch of every phase.

    A dashed line marks where fine-tuning starts; a ring marks the epoch whose weights were kept.
    """
    from PIL import Image, ImageDraw

    w, h, left, right = 720, 465, 60, 20
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = _font(12)
    n = max(1, len(history))
    panels: tuple[tuple[str, int, int, float, float | None], ...] = (
        ("accuracy", 30, 200, 0.0, 1.0),
        ("loss", 250, 420, 0.0, None),
    )
    xs = [left + (w - left - right) * (i / max(1, n - 1)) for i in range(n)]
    for key, top, bottom, lo, hi in panels:
        vals = [float(r[k]) for r in history for k in (key, f"val_{key}") if r.get(k) is not None]
        top_v = hi if hi is not None else max([*vals, 1e-3]) * 1.1
        low_v = lo if hi is not None else 0.0
        if key == "accuracy" and vals:
            low_v = min(0.5, float(np.floor(min(vals) * 10) / 10))

        def y_of(v: float, top: int = top, bottom: int = bottom, low_v: float = low_v, top_v: float = top_v) -> float:
            return bottom - (bottom - top) * (v - low_v) / max(top_v - low_v, 1e-9)

        for t in np.linspace(low_v, top_v, 5):
            y = y_of(float(t))
            d.line([(left, y), (w - right, y)], fill=GRID)
            d.text((4, y - 7), f"{t:.2f}", fill=INK, font=font)
        d.rectangle([left, top, w - right, bottom], outline=INK)
        d.text((left + 4, top - 18), key, fill=INK, font=font)
        # Validation first and wider, so the training line stays visible where the two coincide.
        for series, colour, width in ((f"val_{key}", VAL_COLOUR, 4), (key, FLOAT_COLOUR, 2)):
            pts = [(xs[i], y_of(float(r[series]))) for i, r in enumerate(history) if r.get(series) is not None]
            if len(pts) > 1:
                d.line(pts, fill=colour, width=width)
            for x, y in pts:
                d.ellipse([x - width / 2 - 1, y - width / 2 - 1, x + width / 2 + 1, y + width / 2 + 1], fill=colour)
        for i, r in enumerate(history):
            if r.get("kept") and r.get(f"val_{key}") is not None:
                x, y = xs[i], y_of(float(r[f"val_{key}"]))
                d.ellipse([x - 6, y - 6, x + 6, y + 6], outline=INK, width=2)
    for i in range(1, n):
        if history[i].get("phase") != history[i - 1].get("phase"):
            x = (xs[i] + xs[i - 1]) / 2
            for y0 in range(30, 420, 10):
                d.line([(x, y0), (x, y0 + 5)], fill=INK)
            d.text((x + 4, 34), str(history[i].get("phase")), fill=INK, font=font)
    step = max(1, int(np.ceil(n / 12)))
    for i in range(0, n, step):
        d.line([(xs[i], 420), (xs[i], 424)], fill=INK)
        d.text((xs[i] - 4, 425), str(i + 1), fill=INK, font=font)
    d.text((left, h - 18), "epoch (all phases)", fill=INK, font=font)
    for j, (label, colour) in enumerate((("training", FLOAT_COLOUR), ("validation", VAL_COLOUR), ("kept", INK))):
        x = w - 300 + j * 95
        if label == "kept":
            d.ellipse([x, h - 18, x + 12, h - 6], outline=colour, width=2)
        else:
            d.rectangle([x, h - 16, x + 14, h - 8], fill=colour)
        d.text((x + 18, h - 20), label, fill=INK, font=font)
    return _png(img)


def per_class_png(classes: Sequence[str], float_acc: Sequence[float | None], int8_acc: Sequence[float | None]) -> bytes:
    """Horizontal bars: validation accuracy of each class, float beside INT8."""
    from PIL import Image, ImageDraw

    row, left, right, top = 34, 170, 70, 30
    w = 720
    h = top + 40 + row * max(1, len(classes))
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = _font(12)
    span = w - left - right
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = left + span * t
        d.line([(x, top), (x, h - 30)], fill=GRID)
        d.text((x - 10, h - 26), f"{t:.0%}", fill=INK, font=font)
    for i, name in enumerate(classes):
        y = top + 4 + i * row
        d.text((6, y + 8), drawable_name(name, i), fill=INK, font=font)
        for j, (acc, colour) in enumerate(((float_acc[i], FLOAT_COLOUR), (int8_acc[i], INT8_COLOUR))):
            y0 = y + j * 14
            if acc is None:
                d.text((left + 4, y0), "no validation photos", fill=INK, font=font)
                continue
            d.rectangle([left, y0, left + span * float(acc), y0 + 11], fill=colour)
            d.text((left + span * float(acc) + 4, y0 - 1), f"{float(acc):.1%}", fill=INK, font=font)
    for j, (label, colour) in enumerate((("float", FLOAT_COLOUR), ("INT8", INT8_COLOUR))):
        x = left + j * 75
        d.rectangle([x, 6, x + 14, 16], fill=colour)
        d.text((x + 18, 3), label, fill=INK, font=font)
    return _png(img)


def confusion_png(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> bytes:
    """The confusion matrix: rows are the true classes, columns the predicted ones, shaded by each row's share."""
    from PIL import Image, ImageDraw

    m = np.asarray(matrix, dtype=np.int64)
    k = len(classes)
    cell = int(max(26, min(72, 560 // max(1, k))))
    left, top = 160, 40
    w, h = max(330, left + cell * k + 20), top + cell * k + 30
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = _font(12 if cell >= 40 else 10)
    rows = m.sum(axis=1, keepdims=True).clip(min=1)
    share = m / rows
    for i in range(k):
        for j in range(k):
            x0, y0 = left + j * cell, top + i * cell
            s = float(share[i, j])
            colour = (int(255 - 200 * s), int(255 - 140 * s), 255) if i == j else (255, int(255 - 190 * s), int(255 - 190 * s))
            d.rectangle([x0, y0, x0 + cell, y0 + cell], fill=colour, outline=GRID)
            text = str(int(m[i, j]))
            tw = d.textlength(text, font=font)
            d.text((x0 + (cell - tw) / 2, y0 + cell / 2 - 7), text, fill=INK, font=font)
        d.text((6, top + i * cell + cell / 2 - 7), drawable_name(classes[i], i), fill=INK, font=font)
    d.text((left, 8), "predicted ->", fill=INK, font=font)
    d.text((6, 8), "true", fill=INK, font=font)
    for j in range(k):
        label = drawable_name(classes[j], j, 10) if cell >= 60 else f"#{j}"
        d.text((left + j * cell + 2, top + k * cell + 6), label, fill=INK, font=font)
    return _png(img)


def thumbnail_jpeg(rgb: np.ndarray, size: int = _THUMB) -> bytes:
    """A small JPEG of a photo, for the misclassified gallery."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgb))
    img.thumbnail((size, size))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def data_uri(data: bytes, mime: str) -> str:
    """``data:`` URI of some bytes."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# --- the page --------------------------------------------------------------------------------------------
def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def render_html(report: Mapping[str, Any], thumbnails: Mapping[str, np.ndarray] | None = None) -> str:
    """The report as one HTML page with every picture embedded."""
    e = html.escape
    data, val, out = report["data"], report["validation"], report["output"]
    classes = data["classes"]
    thumbs = thumbnails or {}
    per_class = val["per_class"]
    curve = data_uri(curve_png(report["training"]["history"]), "image/png")
    bars = data_uri(
        per_class_png(classes, [r["float_accuracy"] for r in per_class], [r["int8_accuracy"] for r in per_class]), "image/png"
    )
    conf = data_uri(confusion_png(val["confusion_int8"], classes), "image/png")
    rows = "\n".join(
        f"<tr><td>{i}</td><td>{e(c)}</td><td>{data['photos'][c]}</td><td>{data['train'][c]}</td><td>{data['val'][c]}</td>"
        f"<td>{_pct(pc['float_accuracy'])}</td><td>{_pct(pc['int8_accuracy'])}</td></tr>"
        for i, (c, pc) in enumerate(zip(classes, per_class, strict=True))
    )
    gallery = []
    for m in val["misclassified"]:
        img = thumbs.get(m["image"])
        pic = f'<img src="{data_uri(thumbnail_jpeg(img), "image/jpeg")}" alt="">' if img is not None else ""
        gallery.append(
            f"<figure>{pic}<figcaption><b>{e(Path(m['image']).name)}</b><br>true: {e(m['truth'])}<br>"
            f"float: {e(m['float']['label'])} ({m['float']['score']:.2f})<br>"
            f"INT8: {e(m['int8']['label'])} ({m['int8']['score']:.2f})"
            "</figcaption></figure>"
        )
    tpu = report["check"].get("edgetpu_analysis") or {}
    tpu_line = (
        "all ops predicted on the Edge TPU" if tpu.get("fully_mapped")
        else f"{tpu.get('edgetpu_ops', '?')} of {tpu.get('total_ops', '?')} ops predicted on the Edge TPU" if tpu
        else "not analysed"
    )  # fmt: skip
    skipped = "".join(f"<li>{e(s['file'])}: {e(s['reason'])}</li>" for s in data["skipped"])
    warnings = "".join(f"<li>{e(w)}</li>" for w in data["warnings"])
    legend = ", ".join(f"#{i} = {e(c)}" for i, c in enumerate(classes))
    cpu_total = report.get("cpu_s", {}).get("total")
    cpu = f" (CPU {cpu_total:.0f} s)" if cpu_total is not None else ""
    # The longer table cells, built here so the template's lines stay short.
    blocks = report["training"]["fine_tune_blocks"]
    fine_tuned = ", last " + str(blocks) + " blocks fine-tuned" if blocks else ""
    photos_cell = (
        f"{e(data['folder'])}: {sum(data['photos'].values())} readable, {len(data['skipped'])} skipped; "
        f"validation: {e(data['val_source'])}"
    )
    total_s = report["times_s"].get("total", sum(v for k, v in report["times_s"].items() if k != "total"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Training report: {e(Path(out["tflite"]).name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1000px; color: #222 }}
table {{ border-collapse: collapse; margin: 1em 0 }} td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left }}
figure {{ display: inline-block; margin: 6px; width: 170px; vertical-align: top; font-size: 12px }}
img {{ max-width: 100% }} .big {{ font-size: 1.3em }}
</style></head><body>
<h1>Training report</h1>
<p class="big">Validation accuracy: float <b>{_pct(val["float_accuracy"])}</b>, INT8 <b>{_pct(val["int8_accuracy"])}</b>
on {val["images"]} held-out photos (float/INT8 agreement {_pct(val["top1_agreement"])}).</p>
<table>
<tr><th>model</th><td>{e(out["tflite"])} ({out["size_bytes"] / 1e6:.2f} MB)</td></tr>
<tr><th>base</th><td>{e(report["base"]["name"])}, new head of {len(classes)} classes{fine_tuned}</td></tr>
<tr><th>spec</th><td>{e(report["spec"])}</td></tr>
<tr><th>photos</th><td>{photos_cell}</td></tr>
<tr><th>Edge TPU</th><td>{e(tpu_line)}</td></tr>
<tr><th>time</th><td>{total_s:.0f} s{cpu}, peak memory {report["peak_rss_mb"]:.0f} MB</td></tr>
</table>
{"<h2>Warnings</h2><ul>" + warnings + "</ul>" if warnings else ""}
<h2>Per class</h2>
<table><tr><th>#</th><th>class</th><th>photos</th><th>train</th><th>val</th><th>float</th><th>INT8</th></tr>
{rows}
</table>
<img src="{bars}" alt="per-class validation accuracy, float and INT8">
<h2>Confusion matrix (INT8, validation)</h2>
<p>Rows: true class; columns: predicted class. {legend}</p>
<img src="{conf}" alt="confusion matrix">
<h2>Training curve</h2>
<img src="{curve}" alt="training curve">
<h2>Misclassified validation photos ({len(val["misclassified"])})</h2>
<div>{"".join(gallery) or "<p>None.</p>"}</div>
{"<h2>Skipped files</h2><ul>" + skipped + "</ul>" if skipped else ""}
<p><small>{e(" ".join(report.get("command") or []))}</small></p>
</body></html>
"""


def write_html(report: Mapping[str, Any], path: Path, thumbnails: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write the HTML page."""
    path.write_text(render_html(report, thumbnails), encoding="utf-8")
    return path


def summary(report: Mapping[str, Any]) -> str:
    """The human summary printed at the end of training."""
    data, val, out, tr = report["data"], report["validation"], report["output"], report["training"]
    head = tr["head"]
    lines = [
        f"classes    {len(data['classes'])}: " + ", ".join(f"{c} ({n})" for c, n in data["photos"].items()),
        f"base       {report['base']['name']}; head best at epoch {head['best_epoch']} of {head['epochs_run']}"
        + (f"; fine-tuned the last {tr['fine_tune_blocks']} blocks" if tr["fine_tune_blocks"] else ""),
        f"wrote      {out['tflite']}  ({out['size_bytes'] / 1e6:.2f} MB, full-integer INT8, labels and spec embedded)",
        f"spec       {report['spec']}",
    ]
    if val["images"]:
        lines.append(
            f"validation {val['images']} held-out photos ({data['val_source']}): float {_pct(val['float_accuracy'])}, "
            f"INT8 {_pct(val['int8_accuracy'])}, agreement {_pct(val['top1_agreement'])}"
        )
    else:
        lines.append("validation none (--val-split 0 and no --val): the accuracy is unknown")
    if data["skipped"]:
        lines.append(f"skipped    {len(data['skipped'])} unreadable file(s) (named in the report; -v lists them)")
    tpu = report["check"].get("edgetpu_analysis")
    if tpu:
        verdict = (
            f"all {tpu['total_ops']} ops predicted on the Edge TPU" if tpu["fully_mapped"]
            else f"{tpu['edgetpu_ops']} of {tpu['total_ops']} ops predicted on the Edge TPU; CPU: {', '.join(tpu['cpu_ops'])}"
        )  # fmt: skip
        lines.append(f"edgetpu    {verdict}")
    for w in [*data["warnings"], *report["check"].get("warnings", [])]:
        lines.append(f"warning    {w}")
    t = report["times_s"]
    cpu = report.get("cpu_s", {}).get("total")
    lines.append(
        f"time       {t.get('total', 0):.0f} s{f' (CPU {cpu:.0f} s)' if cpu is not None else ''}, "
        f"peak memory {report['peak_rss_mb']:.0f} MB"
    )
    lines.append(f"report     {out['html']}  (and {Path(out['report']).name})")
    return "\n".join(lines)
