"""Web view benchmark: what watching costs the camera loop, and how fast a label change reaches the page.

Two measurements, each beside a baseline taken in the same run:

1. Loop FPS over a 640x480 clip read as fast as the model goes (not real time), with the web view off (the
   baseline), on with 0 viewers, with 1 viewer and with 5 viewers of /stream.mjpg. The viewers run in a process
   of their own, as a phone's browser would, and read every frame the server sends. Configurations run in a
   shuffled order over several rounds; each run's FPS is divided by the same round's baseline, and the median of
   those ratios is reported. Goal: >= 0.95 with one viewer.
2. Time from a label change in the loop (the moment the sink sees the new top label) to the change arriving as a
   server-sent event (a Python client), and to the page's label text changing in headless Chromium (Debian's
   ``chromium`` driven by Playwright), over a real-time clip alternating cat and parrot. Printed beside the
   loop's own capture-to-result latency.

Usage:
    .venv/bin/python benchmarks/bench_web.py [--frames 600] [--rounds 3] [--changes 8] [--no-browser]

Needs ../shared/testdata/coral beside the repository; part 2's page timing needs playwright and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2

REPO = Path(__file__).resolve().parents[1]
CORAL = REPO.parent / "shared" / "testdata" / "coral"
sys.path.insert(0, str(REPO))

from edge_classifier import Classifier, LoopOptions, run_pipeline  # noqa: E402 - after the path is set
from edge_classifier.sinks.callback import CallbackSink  # noqa: E402
from edge_classifier.sinks.web import WebOptions, WebSink  # noqa: E402
from tests.clips import write_clip  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
WARMUP_FRAMES = 60

# N threads, each connecting (retrying until the server listens) and reading /stream.mjpg until it closes.
VIEWERS_SCRIPT = r"""
import socket, sys, threading, time
port, n = int(sys.argv[1]), int(sys.argv[2])
counts = [0] * n
def view(i):
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            break
        except OSError:
            time.sleep(0.01)
    s.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: x\r\n\r\n")
    while True:
        try:
            chunk = s.recv(1 << 16)
        except OSError:
            break
        if not chunk:
            break
        counts[i] += chunk.count(b"--frame")
    s.close()
threads = [threading.Thread(target=view, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(" ".join(map(str, counts)))
"""


def free_port() -> int:
    """A port free now on 127.0.0.1 (the server binds it with SO_REUSEADDR)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loop_fps(clf: Classifier, clip: Path, viewers: int | None) -> tuple[float, float, float]:
    """(loop FPS, the process's CPU ms per frame, stream frames each viewer got per second) for one configuration.

    FPS and CPU are taken after the warm-up frames. CPU time counts every thread of this process (capture,
    inference, the web view's), so it shows the web view's cost even when other programs make the FPS noisy.
    ``viewers`` None runs without the web view at all.
    """
    times: list[float] = []
    cpu: list[float] = []

    def note(result: Any) -> None:
        times.append(time.perf_counter())
        cpu.append(time.process_time())

    sinks: list[Any] = [CallbackSink(note)]
    proc = None
    if viewers is not None:
        port = free_port()
        sinks.insert(0, WebSink(WebOptions(port=port), environ={}))
        if viewers:
            proc = subprocess.Popen(
                [sys.executable, "-c", VIEWERS_SCRIPT, str(port), str(viewers)], stdout=subprocess.PIPE, text=True
            )
    # The same pause before every configuration: the viewers' interpreter starts (they connect as soon as the
    # server listens), and whatever the previous run left behind settles, for the baseline as for the others.
    time.sleep(0.5)
    # Full frames in every configuration, as a run with a web view reads them: the difference is the web view alone.
    options = LoopOptions(source_options={"full_frames": True})
    run_pipeline(clf, str(clip), sinks, options, stats_interval=0, stats_file=io.StringIO(), handle_signals=False)
    span = times[-1] - times[WARMUP_FRAMES]
    fps = (len(times) - 1 - WARMUP_FRAMES) / span
    cpu_ms = (cpu[-1] - cpu[WARMUP_FRAMES]) * 1000 / (len(cpu) - 1 - WARMUP_FRAMES)
    stream_fps = 0.0
    if proc is not None:
        out, _ = proc.communicate(timeout=30)
        counts = [int(c) for c in out.split()]
        stream_fps = statistics.mean(counts) / (times[-1] - times[0])
    return fps, cpu_ms, stream_fps


def encode_cost(clf: Classifier, clip: Path, max_fps: float = 10.0) -> str:
    """The web view's own work per streamed frame (annotate + JPEG of a 640x480 frame), as a share of one core.

    Measured on the CPU alone, so it holds where a shared machine makes loop FPS noisy.
    """
    from edge_classifier.results import Frame, Result
    from edge_classifier.web.render import view_jpeg

    cap = cv2.VideoCapture(str(clip))
    ok, bgr = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError(f"cannot read {clip}")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    pred = clf.predict(rgb)
    result = Result(Frame(rgb, 0, time.monotonic(), "bench"), pred.classes, pred.scores)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        view_jpeg(result, 30.0, 960)
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1000
    return (
        f"encode (annotate + JPEG) of a {rgb.shape[1]}x{rgb.shape[0]} frame: {ms:.2f} ms median = "
        f"{ms * max_fps / 10:.1f}% of one core at {max_fps:g} fps"
    )


def part1(clf: Classifier, tmp: Path, frames: int, rounds: int) -> None:
    clip = write_clip(
        tmp / "fast.avi", [(CORAL / "cat.bmp", frames // 2), (CORAL / "parrot.jpg", frames - frames // 2)], size=(640, 480)
    )
    configs: list[tuple[str, int | None]] = [
        ("no web view (baseline)", None),
        ("web view, 0 viewers", 0),
        ("web view, 1 viewer", 1),
        ("web view, 5 viewers", 5),
    ]
    fps: dict[str, list[float]] = {name: [] for name, _ in configs}
    stream: dict[str, list[float]] = {name: [] for name, _ in configs}
    cpu: dict[str, list[float]] = {name: [] for name, _ in configs}
    loop_fps(clf, clip, None)  # warm caches and the interpreter once, unmeasured
    order = random.Random(14)  # a fixed seed: the same shuffled order on every run of the benchmark
    for r in range(rounds):
        for name, viewers in order.sample(configs, len(configs)):  # no configuration always runs first
            f, c, s = loop_fps(clf, clip, viewers)
            fps[name].append(f)
            cpu[name].append(c)
            stream[name].append(s)
        print(f"[bench_web] round {r + 1}/{rounds}: " + ", ".join(f"{fps[n][-1]:.1f}" for n, _ in configs), file=sys.stderr)
    base_name = configs[0][0]
    print(
        f"\n1. Loop FPS, {frames} frames of 640x480 per run, median of {rounds} interleaved rounds (goal: >= 0.95 with 1 viewer)"
    )
    print("   (ratio: median over the rounds of FPS / the same round's baseline FPS, so drifting machine load cancels out)")
    print("   (CPU: all of this process's threads per loop frame; its ratio is baseline / configuration, so below 1 costs)")
    print(f"   {'configuration':<26} {'loop fps':>9} {'ratio':>7} {'CPU ms/frame':>13} {'ratio':>7} {'stream fps/viewer':>18}")
    for name, _ in configs:
        ratio = statistics.median(f / b for f, b in zip(fps[name], fps[base_name], strict=True))
        cpu_ratio = statistics.median(b / c for c, b in zip(cpu[name], cpu[base_name], strict=True))
        s = statistics.median(stream[name])
        print(
            f"   {name:<26} {statistics.median(fps[name]):9.1f} {ratio:7.3f} "
            f"{statistics.median(cpu[name]):13.2f} {cpu_ratio:7.3f}"
            f" {s if s else float('nan'):18.1f}"
        )
    print(f"   one encode serves every viewer; {encode_cost(clf, clip)}")


class SseClient(threading.Thread):
    """Reads /api/events/stream; records (label, loop-side change time, arrival time) per region change."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.changes: list[tuple[str, float, float]] = []
        self.loop_latency_ms: list[float] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/api/events/stream")
        r = conn.getresponse()
        name = None
        try:
            while True:
                line = r.fp.readline()
                if not line:
                    return
                text = line.decode().rstrip("\n")
                if text.startswith("event: "):
                    name = text[7:]
                elif text.startswith("data: "):
                    data = json.loads(text[6:])
                    if name == "state" and data["regions"]:
                        reg = data["regions"][0]
                        if not self.changes or self.changes[-1][0] != reg["label"]:
                            self.changes.append((reg["label"], reg["since"], time.time()))
                    elif name == "status" and data.get("latency_ms", {}).get("p50") is not None:
                        self.loop_latency_ms.append(data["latency_ms"]["p50"])
        except OSError:
            return
        finally:
            r.close()
            conn.close()


def part2(clf: Classifier, tmp: Path, changes: int, browser: bool) -> None:
    # 4 s of cat first, so the browser has loaded the page before the first change.
    segments = [(CORAL / ("cat.bmp" if i % 2 == 0 else "parrot.jpg"), 40 if i == 0 else 20) for i in range(changes + 1)]
    clip = write_clip(tmp / "alternating.avi", segments, size=(640, 480), fps=10)
    port = free_port()
    sink = WebSink(WebOptions(port=port), environ={})
    page_log: list[dict[str, Any]] = []
    result: dict[str, Any] = {}

    def loop() -> None:
        result["stats"] = run_pipeline(
            clf,
            str(clip),
            [sink],
            LoopOptions(source_options={"realtime": True, "full_frames": True}),
            stats_interval=0,
            stats_file=io.StringIO(),
            handle_signals=False,
        )

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    while sink.server is None:
        time.sleep(0.01)
    sse = SseClient(port)
    sse.start()
    if browser:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = b.new_page(bypass_csp=True)
            # Record every change of the label's text with the browser's wall clock (the same clock as the loop's here).
            page.add_init_script(
                "window.__labels = []; document.addEventListener('DOMContentLoaded', () => {"
                " const el = document.getElementById('label');"
                " new MutationObserver(() => window.__labels.push({text: el.textContent, t: Date.now() / 1000}))"
                ".observe(el, {childList: true, characterData: true, subtree: true}); });"
            )
            page.goto(sink.url)
            t.join()
            page_log = page.evaluate("window.__labels")
            b.close()
    t.join()
    sse.join(5)
    loop_changes = sse.changes[1:]  # the first is the initial label, not a change
    sse_ms = [(arrived - since) * 1000 for _, since, arrived in loop_changes]
    page_ms = []
    ready = page_log[0]["t"] if page_log else float("inf")  # the page's first label: changes before it are not timed
    for label, since, _ in loop_changes:
        if since <= ready:
            continue
        shown = [e["t"] for e in page_log if e["text"] == label and e["t"] >= since - 0.001]
        if shown:
            page_ms.append((min(shown) - since) * 1000)
    frame_ms = statistics.median(sse.loop_latency_ms) if sse.loop_latency_ms else float("nan")
    print(f"\n2. Label change in the loop -> shown, {len(loop_changes)} changes at 10 fps real time (ms: median / max)")
    print(f"   {'baseline: loop capture->result p50':<40} {frame_ms:8.1f}")
    print(f"   {'server-sent event received':<40} {_med_max(sse_ms)}")
    if browser:
        print(f"   {'page label text changed (Chromium)':<40} {_med_max(page_ms)}   ({len(page_ms)} of {len(loop_changes)} seen)")


def _med_max(values: list[float]) -> str:
    if not values:
        return "     n/a"
    return f"{statistics.median(values):8.1f} / {max(values):.1f}"


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print them; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=600, help="frames per loop-FPS run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the four configurations")
    ap.add_argument("--changes", type=int, default=8, help="label changes timed in part 2")
    ap.add_argument("--no-browser", action="store_true", help="time the server-sent events only")
    ap.add_argument("--model", type=Path, default=CORAL / "mobilenet_v2_1.0_224_quant.tflite")
    args = ap.parse_args(argv)
    browser = not args.no_browser and Path(CHROMIUM).exists()
    if not args.no_browser and not browser:
        print(f"[bench_web] {CHROMIUM} missing: timing the server-sent events only", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp, Classifier(args.model) as clf:
        print(f"model {args.model.name} on {clf.runtime_info.device} ({clf.runtime_info.runtime})")
        part1(clf, Path(tmp), args.frames, args.rounds)
        part2(clf, Path(tmp), args.changes, browser)
    return 0


if __name__ == "__main__":
    sys.exit(main())
