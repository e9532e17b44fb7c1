"""Make docs/web_view.png, the README's picture of the live web view, from a real run.

A clip of the Coral reference photos (cat, parrot, Grace Hopper) plays in real time through Coral's MobileNetV2 with
the web sink on; headless Chromium (Debian's ``chromium``, driven by Playwright's Python package) opens the page once
two label events and some chart history exist, and the screenshot is reduced to a 256-colour PNG to stay small.

Usage (needs the dev extra's playwright, the system's chromium, and ../shared/testdata/coral):

    .venv/bin/python scripts/web_screenshot.py [--out docs/web_view.png]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORAL = REPO.parent / "shared" / "testdata" / "coral"
CHROMIUM = "/usr/bin/chromium"
sys.path.insert(0, str(REPO))

from edge_classifier import Classifier, LoopOptions, run_pipeline  # noqa: E402 - after the path is set
from edge_classifier.sinks.web import WebOptions, WebSink  # noqa: E402
from tests.clips import write_clip  # noqa: E402

# Seconds of each photo, at 10 frames per second: the cat first, so the page has history before the changes.
SCENES = (("cat.bmp", 9.0), ("parrot.jpg", 5.0), ("bird.bmp", 10.0))
FPS = 10


def main(argv: list[str] | None = None) -> int:
    """Run the loop with the web view, photograph the page, write the PNG; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "web_view.png")
    ap.add_argument("--width", type=int, default=1000, help="browser window width in CSS pixels")
    args = ap.parse_args(argv)
    if not CORAL.is_dir():
        print(f"{CORAL} is missing: python scripts/fetch_testdata.py fetches the Coral test data", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, Classifier(CORAL / "mobilenet_v2_1.0_224_quant.tflite") as clf:
        clip = write_clip(
            Path(tmp) / "scenes.avi", [(CORAL / name, round(s * FPS)) for name, s in SCENES], size=(640, 480), fps=FPS
        )
        sink = WebSink(WebOptions(port=0, camera="porch"), classifier=clf)
        run = threading.Thread(
            target=run_pipeline,
            args=(clf, str(clip), [sink], LoopOptions(smoothing=0.6, source_options={"realtime": True, "full_frames": True})),
            kwargs={"stats_interval": 0, "handle_signals": False},
        )
        run.start()
        try:
            while sink.server is None and run.is_alive():
                time.sleep(0.05)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                # bypass_csp: the page forbids eval, which Playwright needs for wait_for_function; the page itself is unchanged.
                page = browser.new_page(viewport={"width": args.width, "height": 800}, bypass_csp=True)
                page.goto(sink.url)
                # The chickadee after the cat and the parrot: three events, and a chart with history.
                page.wait_for_function("document.querySelectorAll('#events li[data-seq]').length >= 3", timeout=60_000)
                page.wait_for_timeout(3000)  # a few more chart points and frames after the last change
                png = page.screenshot(full_page=True)
                browser.close()
        finally:
            run.join()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    small.save(args.out, optimize=True)
    print(f"{args.out}: {image.width}x{image.height}, {args.out.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
