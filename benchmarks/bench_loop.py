"""Camera-loop benchmark: loop FPS against the model's own speed, and memory over a long run.

Two measurements, each side by side with a baseline taken in the same run:

1. Loop FPS (``stream`` over a video: decode in the capture thread, preprocess, invoke, postprocess)
   against the model-bound FPS, 1 / median bare ``invoke()`` of the same model with the same
   threads. Target: ratio >= 0.9. Done on a 1280x720 video (from cat_720p.jpg) and a 640x480 one.
2. Peak RSS of ``edge-classifier run`` (JSONL sink on) over --frames frames against a bare
   interpreter script (decode, resize, invoke, nothing else) on the same model and video.
   Target: within 1.5x, and no growth between frame 1,000 and the end (RSS sampled).

Usage:
    .venv/bin/python benchmarks/bench_loop.py [--frames 10000] [--model PATH]

Needs psutil (the dev extra) and ../shared/testdata/coral beside the repository.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CORAL = REPO.parent / "shared" / "testdata" / "coral"

BARE_SCRIPT = r"""
import sys, cv2, numpy as np
from ai_edge_litert.interpreter import Interpreter
model, video, frames, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
progress = open(sys.argv[5], "w")
it = Interpreter(model_path=model, num_threads=threads)
it.allocate_tensors()
inp = it.get_input_details()[0]
_, h, w, _ = inp["shape"]
cap = cv2.VideoCapture(video)
n = 0
while n < frames:
    ok, bgr = cap.read()
    if not ok:
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        continue
    rgb = cv2.cvtColor(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    it.set_tensor(inp["index"], rgb[None])
    it.invoke()
    it.get_tensor(it.get_output_details()[0]["index"])
    n += 1
    progress.write("\n")  # one line per frame, flushed, as the run's JSONL is
    progress.flush()
"""


def write_video(path: Path, image: Path, size: tuple[int, int], frames: int) -> Path:
    """``frames`` frames of ``image`` at ``size``, with a slow drift so every frame differs (mp4v)."""
    base = cv2.resize(cv2.imread(str(image)), (size[0] + 64, size[1] + 36), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, size)
    for i in range(frames):
        dx, dy = (i // 2) % 64, (i // 4) % 36
        writer.write(np.ascontiguousarray(base[dy : dy + size[1], dx : dx + size[0]]))
    writer.release()
    return path


class DecodedFrames:
    """A source replaying frames already decoded in memory: a camera that costs no decoding.

    The same loop over it shows what the pipeline itself costs, apart from video decoding (which
    on a 2-core machine takes CPU time the interpreter's threads would otherwise use).
    """

    def __new__(cls, video: Path, count: int) -> Any:
        from edge_classifier.sources.base import Source

        cap = cv2.VideoCapture(str(video))
        frames = []
        while len(frames) < count:
            ok, bgr = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        cap.release()

        class _Replay(Source):
            name = f"{video.name} (decoded in memory)"

            def __init__(self) -> None:
                super().__init__()
                self._i = 0

            def read(self) -> np.ndarray | None:
                if self._i >= len(frames):
                    return None
                self._i += 1
                return frames[self._i - 1]

        return _Replay()


def loop_vs_bare(model: Path, video: Any, rounds: int, chunk: int) -> tuple[float, float, float, dict[str, float]]:
    """Loop FPS and model-bound FPS, interleaved so both see the same machine load.

    Each round times ``chunk`` consecutive results of one running ``stream`` over the video, then
    ``chunk`` bare ``invoke()`` calls of a separate interpreter of the same model and threads.
    Returns the median over rounds of the loop FPS, the model-bound FPS (1 / median bare invoke),
    their per-round ratio, and median stage times of the loop.
    """
    from ai_edge_litert.interpreter import Interpreter

    from edge_classifier import Classifier, LoopOptions
    from edge_classifier.loop import stream

    loop_fps, bound_fps, ratios = [], [], []
    stages: dict[str, list[float]] = {}
    with Classifier(model) as clf:
        it = Interpreter(model_path=str(model), num_threads=clf.runtime_info.num_threads)
        it.allocate_tensors()
        inp = it.get_input_details()[0]
        it.set_tensor(inp["index"], np.full(inp["shape"], 128, dtype=inp["dtype"]))
        for _ in range(10):
            it.invoke()
        results = stream(clf, video, LoopOptions(max_frames=rounds * chunk + 10))
        for _ in range(10):  # warm-up: first frames pay for allocation and decoder start
            next(results)
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(chunk):
                r = next(results)
                for k, v in r.timings.items():
                    stages.setdefault(k, []).append(v)
            lf = chunk / (time.perf_counter() - t0)
            times = []
            for _ in range(chunk):
                t = time.perf_counter()
                it.invoke()
                times.append(time.perf_counter() - t)
            bf = 1.0 / statistics.median(times)
            loop_fps.append(lf)
            bound_fps.append(bf)
            ratios.append(lf / bf)
        results.close()  # type: ignore[attr-defined]
    med = statistics.median
    return med(loop_fps), med(bound_fps), med(ratios), {k: med(v) for k, v in stages.items()}


def sample_rss(cmd: list[str], progress_file: Path) -> tuple[float, list[tuple[int, float]]]:
    """Run ``cmd``; return peak RSS (MiB) and (frames done, RSS MiB) samples every 0.25 s.

    Frames done are the lines in ``progress_file`` so far (the JSONL of a run, one line per frame).
    """
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ps = psutil.Process(proc.pid)
    samples: list[tuple[int, float]] = []
    peak, done, offset = 0.0, 0, 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            break
        if progress_file.exists():
            with open(progress_file, "rb") as f:
                f.seek(offset)
                chunk = f.read()
            offset += len(chunk)
            done += chunk.count(b"\n")
        peak = max(peak, rss)
        samples.append((done, rss))
        time.sleep(0.25)
    if proc.wait() != 0:
        raise SystemExit(f"{cmd[:4]}... exited with {proc.returncode}")
    return peak, samples


def main(argv: list[str] | None = None) -> int:
    """Print both tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=CORAL / "mobilenet_v2_1.0_224_quant.tflite")
    ap.add_argument("--frames", type=int, default=10_000, help="frames for the memory run")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved loop/bare rounds per video")
    ap.add_argument("--chunk", type=int, default=30, help="frames (and bare invokes) per round")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        videos = {
            "1280x720": write_video(d / "v720.mp4", CORAL / "cat_720p.jpg", (1280, 720), args.rounds * args.chunk + 30),
            "640x480": write_video(d / "v480.mp4", CORAL / "cat_720p.jpg", (640, 480), args.rounds * args.chunk + 30),
        }
        print(
            f"model {args.model.name}; {args.rounds} interleaved rounds of {args.chunk} loop frames / "
            f"{args.chunk} bare invokes (medians)\n"
        )
        print(
            f"{'video':<19} {'bare invoke ms':>15} {'model-bound fps':>16} {'loop fps':>9} {'ratio':>6}   loop stage medians (ms)"
        )
        videos["1280x720 in memory"] = DecodedFrames(videos["1280x720"], args.rounds * args.chunk + 30)
        for name, video in videos.items():
            fps, bound, ratio, stages = loop_vs_bare(args.model, video, args.rounds, args.chunk)
            st = " ".join(f"{k} {v * 1000:.2f}" for k, v in stages.items())
            print(f"{name:<19} {1000 / bound:15.2f} {bound:16.1f} {fps:9.1f} {ratio:6.2f}   {st}")

        print(f"\nmemory over {args.frames} frames (640x480 video, looped by the bare script; one long file for run)")
        long_video = write_video(d / "long480.mp4", CORAL / "cat_720p.jpg", (640, 480), args.frames)
        jsonl = d / "run.jsonl"
        run_cmd = [sys.executable, "-m", "edge_classifier", "run", "--model", str(args.model), "--source", str(long_video),
                   "--jsonl", str(jsonl), "--quiet", "--stats-interval", "0", "--max-frames", str(args.frames)]  # fmt: skip
        run_peak, run_samples = sample_rss(run_cmd, jsonl)
        from edge_classifier import Classifier

        with Classifier(args.model) as clf:
            threads = clf.runtime_info.num_threads
        progress = d / "bare.progress"
        bare_cmd = [
            sys.executable,
            "-c",
            BARE_SCRIPT,
            str(args.model),
            str(long_video),
            str(args.frames),
            str(threads),
            str(progress),
        ]
        bare_peak, _ = sample_rss(bare_cmd, progress)
        after_1k = [rss for n, rss in run_samples if n >= 1000]
        at_1k = after_1k[0] if after_1k else float("nan")
        end = max(after_1k) if after_1k else float("nan")
        print(f"{'process':<28} {'peak RSS MiB':>12}")
        print(f"{'bare interpreter script':<28} {bare_peak:12.1f}")
        print(f"{'edge-classifier run':<28} {run_peak:12.1f}   ratio {run_peak / bare_peak:.2f} (target <= 1.5)")
        print(f"run RSS at frame ~1,000: {at_1k:.1f} MiB; highest after: {end:.1f} MiB; growth {end - at_1k:+.1f} MiB "
              f"({len(run_samples)} samples, last at frame {run_samples[-1][0] if run_samples else 0})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
