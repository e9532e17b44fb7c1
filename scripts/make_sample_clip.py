"""Make edge_classifier/data/sample_clip.mp4, the clip `edge-classifier run` plays when no camera is present.

Three scenes from license-clean photos that ship inside scikit-image's wheel, each a slow zoom
(like a camera drifting), so the loop, the smoothing and the label events have something to show:

- chelsea: Chelsea the cat, CC0 (Stefan van der Walt)              -> "Egyptian cat"
- coffee:  a cup of espresso, CC0 (Rachel Michetti)                -> "espresso"
- rocket:  Falcon 9 launching DSCOVR, public domain (SpaceX)       -> "missile"

Usage (scikit-image is needed only here, not at run time):

    .venv/bin/pip install scikit-image
    .venv/bin/python scripts/make_sample_clip.py [--out edge_classifier/data/sample_clip.mp4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

SCENES = ("chelsea", "coffee", "rocket")
SIZE = (320, 240)  # width, height: a small camera frame
FPS = 10
FRAMES_PER_SCENE = 30


def zoom_frames(rgb: np.ndarray, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """``count`` BGR frames of ``size`` zooming slowly (100% -> 85%) into the centre of ``rgb``."""
    w, h = size
    ih, iw = rgb.shape[:2]
    # The largest centred crop with the output's aspect ratio.
    cw, ch = (iw, round(iw * h / w)) if iw * h <= ih * w else (round(ih * w / h), ih)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    out = []
    for i in range(count):
        z = 1.0 - 0.15 * i / max(1, count - 1)
        zw, zh = round(cw * z), round(ch * z)
        x, y = (iw - zw) // 2, (ih - zh) // 2
        out.append(cv2.resize(bgr[y : y + zh, x : x + zw], size, interpolation=cv2.INTER_AREA))
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the clip; prints its size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[1] / "edge_classifier" / "data" / "sample_clip.mp4"
    parser.add_argument("--out", type=Path, default=default)
    args = parser.parse_args(argv)
    try:
        import skimage.data
    except ImportError:
        print("error: scikit-image is needed to make the clip: .venv/bin/pip install scikit-image", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(args.out), cv2.VideoWriter.fourcc(*"mp4v"), FPS, SIZE)
    if not writer.isOpened():
        print(f"error: OpenCV cannot write {args.out}", file=sys.stderr)
        return 1
    try:
        for name in SCENES:
            for frame in zoom_frames(getattr(skimage.data, name)(), FRAMES_PER_SCENE, SIZE):
                writer.write(frame)
    finally:
        writer.release()
    print(f"{args.out}: {len(SCENES) * FRAMES_PER_SCENE} frames, {args.out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
