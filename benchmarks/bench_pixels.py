"""Pixels in at the model's speed: each path beside the bare interpreter's invoke, measured in the same process.

Every figure comes from a child process of its own (so its peak RSS is its own), which times the path in chunks
interleaved with chunks of bare ``invoke()`` calls of a second interpreter of the same model and threads: both see
the same machine load, and the ratio is taken per round (medians over rounds).

1. ``classify()`` on a decoded 1280x720 RGB array against the bare invoke. Goal: at most 1.15x.
2. The loop (``edge_classifier.loop.stream``) on a 720p MJPEG source against the model-bound FPS (1 / median bare
   invoke). Goal: at least 0.9. Sources: an .avi file of MJPG frames and a local HTTP MJPEG stream (tests/mjpeg_server.py
   in a process of its own, sending 10% faster than the model-bound rate), each read whole by OpenCV/FFmpeg (the
   baseline, ``full_frames=True``) and read raw and decoded reduced. Plus a prototype of overlap in the loop: the
   capture thread also frames frame N+1 while frame N is in the interpreter (``predict_framed``).
3. A folder of photos made here from the shared photos at ImageNet-like sizes: photos per second against the
   invoke-bound rate (1 / median bare invoke), today's ``predict(path)`` one after another (the exact path) against
   :func:`edge_classifier.prefetch.predict_photos` (workers decoding, reduced where it helps, and framing ahead).
   Goal: at least 0.6, with top-1 agreeing with the exact path within the stated tolerance (95%).

All of it with the default threads and with ``--threads 1`` (a Pi Zero 2 or Edge TPU host, where a core is free).

Usage:
    .venv/bin/python benchmarks/bench_pixels.py [--model PATH] [--photos 1000] [--threads 0 1] [--only array loop folder]

Needs ../shared/testdata (coral photos and insects) beside the repository.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "testdata"
CORAL = SHARED / "coral"
INSECTS = SHARED / "insects" / "train"
TOLERANCE = 0.95

# Long sides of ImageNet's photos: most were stored at Flickr's 500-pixel size, some smaller, a few large originals.
SIZE_MIX: tuple[tuple[float, tuple[int, int]], ...] = (
    (0.72, (500, 500)),
    (0.10, (300, 480)),
    (0.12, (640, 1280)),
    (0.06, (1600, 3000)),
)

SERVER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from tests.mjpeg_server import MjpegServer, jpeg_of
srv = MjpegServer(jpeg_of(Path(sys.argv[2]), (1280, 720), quality=90), fps=float(sys.argv[3])).start()
print(srv.port, flush=True)
sys.stdin.read()  # serve until the parent closes stdin
srv.stop()
"""


# --- shared helpers ------------------------------------------------------------------------------------------------
def bare_interpreter(model: Path, threads: int) -> Callable[[], None]:
    """A second interpreter of the model with its input set: a callable running invoke() alone."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(model), num_threads=threads)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.full(d["shape"], 128, d["dtype"]))
    for _ in range(20):
        it.invoke()
    return it.invoke  # type: ignore[no-any-return]


def timed(fn: Callable[[], object], n: int) -> list[float]:
    """Seconds of each of ``n`` calls."""
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def peak_rss_mib() -> float:
    """This process's peak resident set size so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- 1. classify() on a 720p array ---------------------------------------------------------------------------------
def child_array(model: Path, threads: int, runs: int) -> dict[str, Any]:
    """classify(720p array), predict_framed(224x224), decoding the 720p JPEG whole and reduced, and the bare invoke,
    in alternating blocks of 10."""
    from PIL import Image

    from edge_classifier import Classifier
    from edge_classifier.decode import decode_jpeg
    from edge_classifier.preprocess import fit_to_spec, min_source_size

    frame = np.asarray(Image.open(CORAL / "cat_720p.jpg").convert("RGB"))
    jpeg = (CORAL / "cat_720p.jpg").read_bytes()
    with Classifier(model, num_threads=threads) as clf:
        framed = fit_to_spec(frame, clf.spec, "fast")
        need = min_source_size(clf.spec)
        fns = {"invoke": bare_interpreter(model, clf.runtime_info.num_threads), "classify": lambda: clf.classify(frame),
               "framed": lambda: clf.predict_framed(framed), "decode_full": lambda: decode_jpeg(jpeg),
               "decode_reduced": lambda: decode_jpeg(jpeg, need)}  # fmt: skip
        times: dict[str, list[float]] = {k: [] for k in fns}
        for fn in fns.values():
            timed(fn, 20)
        while min(len(v) for v in times.values()) < runs:
            for name, fn in fns.items():
                times[name] += timed(fn, 10)
        threads_used = clf.runtime_info.num_threads
    m = {k: med(v) * 1000 for k, v in times.items()}
    return {"threads": threads_used, "invoke_ms": m["invoke"], "classify_ms": m["classify"], "framed_ms": m["framed"],
            "ratio": m["classify"] / m["invoke"], "framed_ratio": m["framed"] / m["invoke"], "rss": peak_rss_mib(),
            "decode_full_ms": m["decode_full"], "decode_reduced_ms": m["decode_reduced"]}  # fmt: skip


# --- 2. the loop on MJPEG sources ------------------------------------------------------------------------------------
def write_mjpeg(path: Path, frames: int, size: tuple[int, int] = (1280, 720), quality: int = 90) -> Path:
    """``frames`` frames of the 720p cat drifting slowly (every frame differs), as an .avi of MJPG frames."""
    cat = cv2.imread(str(CORAL / "cat_720p.jpg"))
    assert cat is not None, CORAL / "cat_720p.jpg"
    base = cv2.resize(cat, (size[0] + 64, size[1] + 36), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, size)
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, quality)
    for i in range(frames):
        dx, dy = (i // 2) % 64, (i // 4) % 36
        writer.write(np.ascontiguousarray(base[dy : dy + size[1], dx : dx + size[0]]))
    writer.release()
    return path


def overlap_prototype(clf: Any, source: Any, frames: int) -> Iterator[Any]:
    """The loop with framing moved into the capture thread: frame N+1 is decoded and framed while N is invoked.

    A prototype for the measurement only (one-slot hand-over, file sources, no smoothing or drop accounting).
    """
    from edge_classifier.preprocess import fit_to_spec

    slot: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=1)
    stop = threading.Event()
    w_h = clf.spec.input_size
    source.prefer_size(w_h[1], w_h[0])
    source.open()

    def capture() -> None:
        try:
            for frame in source:
                framed = fit_to_spec(frame.rgb, clf.spec, "fast")
                while not stop.is_set():
                    try:
                        slot.put(framed, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        finally:
            slot.put(None)

    thread = threading.Thread(target=capture, daemon=True)
    thread.start()
    try:
        for _ in range(frames):
            framed = slot.get()
            if framed is None:
                return
            yield clf.predict_framed(framed)
    finally:
        stop.set()
        while thread.is_alive():
            try:
                slot.get_nowait()
            except queue.Empty:
                thread.join(0.05)
        source.close()


def child_loop(model: Path, threads: int, kind: str, video: Path, rounds: int, chunk: int) -> dict[str, Any]:
    """Loop FPS on one source against the model-bound FPS, in interleaved chunks."""
    from edge_classifier import Classifier, LoopOptions
    from edge_classifier.loop import stream
    from edge_classifier.sources import OpenCvSource

    server = None
    with Classifier(model, num_threads=threads) as clf:
        bare = bare_interpreter(model, clf.runtime_info.num_threads)
        bound = 1.0 / med(timed(bare, 200))
        where, reading, loop = kind.split("-")  # file|http, full|reduced, loop|overlap
        if where == "http":
            fps = 1.1 * bound
            server = subprocess.Popen([sys.executable, "-c", SERVER, str(REPO), str(CORAL / "cat_720p.jpg"), f"{fps:.1f}"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert server.stdout is not None
            spec = f"http://127.0.0.1:{server.stdout.readline().strip()}/stream.mjpg"
        else:
            spec = str(video)
        try:
            source = OpenCvSource(spec, full_frames=reading == "full", read_timeout=10.0)
            total = rounds * (chunk + 1) + 20
            results: Iterator[Any] = (
                stream(clf, source, LoopOptions(max_frames=total)) if loop == "loop" else overlap_prototype(clf, source, total)
            )
            for _ in range(20):  # warm-up: decoder start, first allocations
                next(results)
            loop_fps, bound_fps, ratios = [], [], []
            for _ in range(rounds):
                # The first frame of a round was made ready during the bare invokes: the clock starts after it.
                next(results)
                t0 = time.perf_counter()
                for _ in range(chunk):
                    next(results)
                lf = chunk / (time.perf_counter() - t0)
                bf = 1.0 / med(timed(bare, chunk))
                loop_fps.append(lf)
                bound_fps.append(bf)
                ratios.append(lf / bf)
            results.close()  # type: ignore[attr-defined]
            mode = source.mode
        finally:
            if server is not None:
                assert server.stdin is not None
                server.stdin.close()
                server.wait(10)
        threads_used = clf.runtime_info.num_threads
    return {"threads": threads_used, "kind": kind, "mode": mode, "bound_fps": med(bound_fps), "loop_fps": med(loop_fps),
            "ratio": med(ratios), "rss": peak_rss_mib()}  # fmt: skip


# --- 3. a folder of photos ------------------------------------------------------------------------------------------
def make_photos(root: Path, count: int, seed: int = 16) -> list[Path]:
    """``count`` JPEGs (quality 90) from the shared photos, each at a long side drawn from :data:`SIZE_MIX`."""
    from PIL import Image

    rng = random.Random(seed)
    sources = (
        sorted(CORAL.glob("*.bmp"))
        + sorted(CORAL.glob("*.jpg"))
        + sorted(p for p in INSECTS.rglob("*") if p.is_file() and p.suffix != ".md")
    )
    weights = [w for w, _ in SIZE_MIX]
    paths = []
    for i in range(count):
        src = sources[i % len(sources)]
        with Image.open(src) as im:
            rgb = im.convert("RGB")
        lo, hi = rng.choices([r for _, r in SIZE_MIX], weights)[0]
        long_side = rng.randint(lo, hi)
        scale = long_side / max(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        path = root / f"{i:04d}.jpg"
        rgb.resize(size, Image.Resampling.BICUBIC).save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def child_folder(model: Path, threads: int, how: str, folder: Path, chunk: int, jobs: int | None, out: Path) -> dict[str, Any]:
    """Photos per second over the folder against the invoke-bound rate; the top-1 class id of each photo to ``out``."""
    from edge_classifier import Classifier
    from edge_classifier.errors import EdgeClassifierError
    from edge_classifier.prefetch import default_jobs, predict_photos

    paths = sorted(folder.glob("*.jpg"))
    with Classifier(model, num_threads=threads) as clf:
        bare = bare_interpreter(model, clf.runtime_info.num_threads)
        n_jobs = jobs or default_jobs(clf.runtime_info.num_threads)
        if how == "exact":
            results: Iterator[Any] = ((p, clf.predict(p)) for p in paths)
        else:
            results = predict_photos(clf, paths, jobs=n_jobs)
        labels: list[int] = []

        def take(n: int) -> int:
            for _, pred in itertools.islice(results, n):
                labels.append(-1 if isinstance(pred, EdgeClassifierError) else int(pred.classes[0].id))
            return n

        # Rounds of ``chunk`` photos, each followed by ``chunk`` bare invokes. While the bare invokes run, the workers
        # fill their queue (2 photos a job) and finish what they hold: those photos of the next round were prepared
        # during the pause, so the clock starts after them (skipped alike for the exact path, to time the same photos).
        head = 3 * n_jobs
        rates, bound, ratios = [], [], []
        while len(labels) + head + chunk <= len(paths):
            take(head)
            t0 = time.perf_counter()
            rate = take(chunk) / (time.perf_counter() - t0)
            b = 1.0 / med(timed(bare, chunk))
            rates.append(rate)
            bound.append(b)
            ratios.append(rate / b)
        take(len(paths))
        threads_used = clf.runtime_info.num_threads
    out.write_text(json.dumps(labels))
    return {"threads": threads_used, "how": how, "jobs": n_jobs if how != "exact" else 0, "photos": len(labels),
            "rate": med(rates), "bound": med(bound), "ratio": med(ratios), "rss": peak_rss_mib()}  # fmt: skip


# --- the parent -----------------------------------------------------------------------------------------------------
def run_child(args: list[str]) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"child {args[:3]} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def describe_machine() -> str:
    import platform

    flags = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
        avx = [f for f in ("avx512_vnni", "avx512f", "avx2") if f" {f}" in info]
        flags = f"{model}; {', '.join(avx) or 'no AVX2'}"
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{cores} cores ({flags}), Python {platform.python_version()}, load average {load:.1f} at the start"


def main(argv: list[str] | None = None) -> int:
    """Run the children and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=CORAL / "mobilenet_v2_1.0_224_quant.tflite")
    ap.add_argument(
        "--threads", type=int, nargs="+", default=[0, 1], help="interpreter threads to run with (0: the default, all cores)"
    )
    ap.add_argument("--photos", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--chunk", type=int, default=30)
    ap.add_argument("--runs", type=int, default=300, help="calls per function for the array measurement")
    ap.add_argument("--only", nargs="+", choices=("array", "loop", "folder"), default=["array", "loop", "folder"])
    ap.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0

    from ai_edge_litert import __version__ as litert_version  # type: ignore[attr-defined]

    print(f"machine: {describe_machine()}; ai-edge-litert {litert_version}; model {args.model.name}")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        for threads in args.threads:
            t = str(threads or "")
            label = f"--threads {threads}" if threads else "default threads"
            print(f"\n=== {label} ===")
            if "array" in args.only:
                r = run_child(["array", str(args.model), t, str(args.runs)])
                print(
                    f"\n1. classify() on a 1280x720 RGB array ({r['threads']} threads; medians of {args.runs} calls, interleaved)"
                )
                print(f"   {'what':38s} {'ms':>7s} {'x invoke':>9s}")
                print(f"   {'bare invoke()':38s} {r['invoke_ms']:7.3f} {1.0:9.2f}")
                print(f"   {'classify(720p frame), fast resize':38s} {r['classify_ms']:7.3f} {r['ratio']:9.2f}   (goal <= 1.15)")
                print(f"   {'predict_framed(224x224 framed)':38s} {r['framed_ms']:7.3f} {r['framed_ratio']:9.2f}")
                print(
                    f"   {'decode the 720p JPEG whole':38s} {r['decode_full_ms']:7.3f} "
                    f"{r['decode_full_ms'] / r['invoke_ms']:9.2f}"
                )
                print(
                    f"   {'decode it reduced (1/2: 640x360)':38s} {r['decode_reduced_ms']:7.3f} "
                    f"{r['decode_reduced_ms'] / r['invoke_ms']:9.2f}"
                )
                print(f"   peak RSS {r['rss']:.0f} MiB")
            if "loop" in args.only:
                video = d / "mjpeg720.avi"
                if not video.exists():
                    write_mjpeg(video, args.rounds * args.chunk + 60)
                print(
                    f"\n2. the loop on 720p MJPEG ({args.rounds} rounds of {args.chunk} frames / "
                    f"{args.chunk} bare invokes; medians)"
                )
                print(f"   {'source':44s} {'bound fps':>9s} {'loop fps':>9s} {'ratio':>6s} {'RSS MiB':>8s}  mode")
                for kind in (
                    "file-full-loop",
                    "file-reduced-loop",
                    "file-reduced-overlap",
                    "http-full-loop",
                    "http-reduced-loop",
                ):
                    r = run_child(["loop", str(args.model), t, kind, str(video), str(args.rounds), str(args.chunk)])
                    name = {"file-full-loop": ".avi, decoded whole by FFmpeg (baseline)",
                            "file-reduced-loop": ".avi, raw JPEG decoded reduced",
                            "file-reduced-overlap": ".avi, reduced + framing in capture (proto)",
                            "http-full-loop": "HTTP MJPEG, decoded whole (baseline)",
                            "http-reduced-loop": "HTTP MJPEG, raw JPEG decoded reduced"}[kind]  # fmt: skip
                    print(
                        f"   {name:44s} {r['bound_fps']:9.1f} {r['loop_fps']:9.1f} {r['ratio']:6.2f} {r['rss']:8.0f}  {r['mode']}"
                    )
            if "folder" in args.only:
                folder = d / "photos"
                if not folder.exists():
                    folder.mkdir()
                    t0 = time.perf_counter()
                    paths = make_photos(folder, args.photos)
                    sizes = [Path(p).stat().st_size for p in paths]
                    print(f"\n(made {len(paths)} photos in {time.perf_counter() - t0:.0f} s, {sum(sizes) / 2**20:.0f} MiB)")
                print(
                    f"\n3. a folder of {args.photos} photos, ImageNet-like sizes "
                    "(rounds of 100 photos / 100 bare invokes; medians)"
                )
                print(f"   {'path':44s} {'photos/s':>9s} {'invoke-bound/s':>14s} {'ratio':>6s} {'RSS MiB':>8s}")
                labels = {}
                for how in ("exact", "prefetch"):
                    out = d / f"labels_{how}.json"
                    r = run_child(["folder", str(args.model), t, how, str(folder), "100", "0", str(out)])
                    labels[how] = json.loads(out.read_text())
                    name = (
                        "predict(path) one by one (today, baseline)"
                        if how == "exact"
                        else f"predict_photos, {r['jobs']} worker thread(s)"
                    )
                    print(f"   {name:44s} {r['rate']:9.1f} {r['bound']:14.1f} {r['ratio']:6.2f} {r['rss']:8.0f}   (goal >= 0.6)")
                a, b = labels["exact"], labels["prefetch"]
                agree = sum(x == y for x, y in zip(a, b, strict=True)) / max(1, len(a))
                print(
                    f"   top-1 agreement with the exact path: {100 * agree:.1f}% of {len(a)} (tolerance {100 * TOLERANCE:.0f}%)"
                )
    return 0


def child(argv: list[str]) -> dict[str, Any]:
    """Dispatch one measurement in this (child) process."""
    what, model, threads_text = argv[0], Path(argv[1]), argv[2]
    threads = int(threads_text) if threads_text else None
    if what == "array":
        return child_array(model, threads, int(argv[3]))  # type: ignore[arg-type]
    if what == "loop":
        return child_loop(model, threads, argv[3], Path(argv[4]), int(argv[5]), int(argv[6]))  # type: ignore[arg-type]
    return child_folder(model, threads, argv[3], Path(argv[4]), int(argv[5]), int(argv[6]) or None, Path(argv[7]))  # type: ignore[arg-type]


if __name__ == "__main__":
    raise SystemExit(main())
