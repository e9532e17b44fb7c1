"""Regions, triggers and clips: what they cost, each beside a baseline measured in the same run.

1. Region framing: top-1 and the expected class's score on the Coral photos cut to boxes of five shapes
   (native, 3:4, 4:3, 1:2, 2:1), for each framing a region can use. Chooses the default (stretch).
2. Loop FPS with 0 (whole frame), 1, 2 and 4 regions on 1280x720 frames replayed from memory, against the
   model-bound FPS for that many invokes per frame (1 / (n x median bare invoke), interleaved rounds).
3. CPU seconds per minute of a mostly static 720p clip (a bird lands on the perch for 4 s of 20): decoding only,
   every frame, ``every=2`` and ``motion``; and whether each found the bird's events.
4. Peak RSS with ``pre=5`` clips at 720p, 30 fps, over --frames frames (a perch region, every=1), against the
   same run without clips, and RSS growth after frame 1,000; the pre-roll buffer's size per second at 720p.

Usage:
    .venv/bin/python benchmarks/bench_regions.py [--frames 10000] [--model PATH]

Needs psutil (the dev extra) and ../shared/testdata/coral beside the repository.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import resource
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
EXPECTED = {
    "cat.bmp": "Egyptian cat",
    "parrot.jpg": "macaw",
    "grace_hopper.bmp": "military uniform",
    "bird.bmp": "chickadee",
    "sunflower.bmp": "daisy",
}
PERCH = (800, 80, 360, 360)  # where the bird lands in the 720p scene
DOOR = (80, 200, 400, 480)  # a second region that stays still
FRAMINGS = {
    "stretch": ("stretch", 1.0),
    "center_crop": ("center_crop", 1.0),
    "model (center_crop 0.875)": ("center_crop", 0.875),
    "letterbox": ("letterbox", 1.0),
}


# --- 1. framing -------------------------------------------------------------------------------
def framing_table(models: list[Path]) -> None:
    """Top-1 and mean score of the expected class per framing, over 5 photos x 5 box shapes."""
    from edge_classifier import Classifier
    from edge_classifier.preprocess import fit_to_spec, load_image

    print("1. region framing: 5 Coral photos x 5 box shapes (native, 3:4, 4:3, 1:2, 2:1), the box cut from the photo")
    print(f"{'model':<38} {'framing':<26} {'top-1':>6} {'expected-class score':>21}")
    for model in models:
        with Classifier(model) as clf:
            spec = clf.spec
            for name, (mode, fraction) in FRAMINGS.items():
                framed_spec = dataclasses.replace(spec, resize=mode, crop_fraction=fraction)  # type: ignore[arg-type]
                hits, scores = 0, []
                for photo, label in EXPECTED.items():
                    img = load_image(CORAL / photo)
                    want = next(i for i, lab in enumerate(spec.labels) if lab.split(",")[0] == label)
                    for box in _boxes(img.shape[0], img.shape[1]):
                        y, x, h, w = box
                        pred = clf.predict_framed(fit_to_spec(img[y : y + h, x : x + w], framed_spec, "exact"))
                        hits += pred.classes[0].id == want
                        scores.append(float(pred.scores[want]))
                print(f"{model.name:<38} {name:<26} {hits:>3}/{len(scores):<2} {statistics.mean(scores):21.3f}")


def _boxes(h: int, w: int) -> list[tuple[int, int, int, int]]:
    out = [(0, 0, h, w)]
    for aspect in (3 / 4, 4 / 3, 1 / 2, 2 / 1):
        bw, bh = (int(h * aspect), h) if w / h > aspect else (w, int(w / aspect))
        out.append(((h - bh) // 2, (w - bw) // 2, bh, bw))
    return out


# --- scenes -------------------------------------------------------------------------------------
def _rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise SystemExit(f"cannot read {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def scene_frame(bird: bool, noise: np.ndarray) -> np.ndarray:
    """A 720p RGB frame: the cat photo, the parrot on the perch when ``bird``, camera-like noise."""
    base = _rgb(CORAL / "cat_720p.jpg")
    if bird:
        x, y, w, h = PERCH
        parrot = _rgb(CORAL / "parrot.jpg")
        base[y : y + h, x : x + w] = cv2.resize(parrot, (w, h), interpolation=cv2.INTER_AREA)
    return np.clip(base.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def noises(n: int = 6, sigma: float = 3.0) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(0, sigma, (720, 1280, 3)).astype(np.int16) for _ in range(n)]


def write_static_clip(path: Path, seconds: int = 20, bird_from: int = 10, bird_for: int = 4) -> Path:
    """A mostly static 720p mp4v clip at 30 fps: the bird sits on the perch from ``bird_from`` s for ``bird_for`` s."""
    ns = noises()
    frames = {
        False: [cv2.cvtColor(scene_frame(False, n), cv2.COLOR_RGB2BGR) for n in ns],
        True: [cv2.cvtColor(scene_frame(True, n), cv2.COLOR_RGB2BGR) for n in ns],
    }
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 30.0, (1280, 720))
    for i in range(seconds * 30):
        writer.write(frames[bird_from * 30 <= i < (bird_from + bird_for) * 30][i % len(ns)])
    writer.release()
    return path


def replay_source(
    frames: list[np.ndarray], count: int, fps: float | None = None, bird: list[bool] | None = None, progress: Path | None = None
) -> Any:
    """A Source replaying frames from memory (a camera that costs no decoding); with ``fps``, timed as a file.

    With ``progress``, the number of frames read so far is written there every 100 frames.
    """
    from edge_classifier.sources.base import Source

    class _Replay(Source):
        name = "720p replay"

        def __init__(self) -> None:
            super().__init__()
            self.fps = fps
            self._i = 0

        def read(self) -> np.ndarray | None:
            if self._i >= count:
                return None
            self._i += 1
            if progress is not None and self._i % 100 == 0:
                progress.write_text(str(self._i))
            if bird is not None:
                return frames[(self._i - 1) % (len(frames) // 2) + (len(frames) // 2 if bird[self._i - 1] else 0)]
            return frames[(self._i - 1) % len(frames)]

    return _Replay()


# --- 2. loop FPS vs regions -------------------------------------------------------------------------
def region_boxes(n: int) -> list[tuple[int, int, int, int]]:
    return [PERCH, DOOR, (480, 360, 300, 300), (0, 0, 320, 180)][:n]


def fps_table(model: Path, rounds: int, chunk: int) -> None:
    from ai_edge_litert.interpreter import Interpreter

    from edge_classifier import Classifier, LoopOptions
    from edge_classifier.loop import stream
    from edge_classifier.regions import Region

    print("\n2. loop FPS with regions, 1280x720 frames replayed from memory; model-bound = 1 / (invokes x median bare invoke)")
    print("   ratio: loop FPS / model-bound FPS per interleaved round; invoke share: the loop's time spent in its own invokes")
    print(f"{'regions':<14} {'invokes/frame':>13} {'model-bound fps':>16} {'loop fps':>9} {'ratio':>6} {'invoke share':>13}")
    frames = [scene_frame(i % 2 == 0, n) for i, n in enumerate(noises(4))]
    with Classifier(model) as clf:
        it = Interpreter(model_path=str(model), num_threads=clf.runtime_info.num_threads)
        it.allocate_tensors()
        inp = it.get_input_details()[0]
        it.set_tensor(inp["index"], np.full(inp["shape"], 128, dtype=inp["dtype"]))
        for _ in range(10):
            it.invoke()
        for n in (0, 1, 2, 4):
            regions = tuple(Region(f"r{i}", box) for i, box in enumerate(region_boxes(n)))
            invokes = max(1, n)
            results = stream(clf, replay_source(frames, rounds * chunk + 10), LoopOptions(regions=regions))
            for _ in range(5):
                next(results)
            loop_fps, bound_fps, ratios, shares = [], [], [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                inference = 0.0
                for _ in range(chunk):
                    inference += next(results).timings.get("inference", 0.0)
                wall = time.perf_counter() - t0
                loop_fps.append(chunk / wall)
                shares.append(inference / wall)  # the same frames' own invokes: immune to load drifting between rounds
                times = []
                for _ in range(chunk * invokes):
                    t = time.perf_counter()
                    it.invoke()
                    times.append(time.perf_counter() - t)
                bound_fps.append(1.0 / (invokes * statistics.median(times)))
                ratios.append(loop_fps[-1] / bound_fps[-1])  # per round: both saw the same machine load
            results.close()  # type: ignore[attr-defined]
            lf, bf = statistics.median(loop_fps), statistics.median(bound_fps)
            row = f"{n or 'whole frame':<14} {invokes:>13} {bf:16.1f} {lf:9.1f} {statistics.median(ratios):6.2f}"
            print(f"{row} {statistics.median(shares):13.2f}")


# --- 3. CPU per minute with triggers ------------------------------------------------------------------
def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_table(model: Path, clip: Path, seconds: int) -> None:
    from edge_classifier import Classifier, LoopOptions
    from edge_classifier.loop import FrameLoop
    from edge_classifier.regions import Region
    from edge_classifier.sources import open as open_source

    print(
        f"\n3. CPU seconds per minute of a mostly static 720p clip ({seconds} s at 30 fps, "
        "a bird on the perch for 4 s), 2 regions"
    )
    print(f"{'mode':<22} {'CPU s / min of video':>21} {'invokes':>8} {'frames classified':>18}   events (perch)")
    regions = (Region("perch", PERCH, states={"bird": ["bird"]}), Region("door", DOOR))
    t0 = cpu_seconds()
    src = open_source(clip)
    src.open()
    n = sum(1 for _ in src)
    src.close()
    print(f"{'decode only':<22} {(cpu_seconds() - t0) * 60 / seconds:21.1f} {0:>8} {0:>18}   ({n} frames)")
    with Classifier(model) as clf:
        for name, opts in (
            ("every frame", LoopOptions(regions=regions)),
            ("every=2", LoopOptions(regions=regions, every=2.0)),
            ("motion", LoopOptions(regions=regions, motion=True)),
        ):
            t0 = cpu_seconds()
            loop = FrameLoop(clf, clip, opts)
            results = list(loop)
            cpu = cpu_seconds() - t0
            invokes = sum(r.classified for res in results for r in res.regions)
            events = [
                (e.frame_index, getattr(e, "state", ""))
                for res in results
                for e in res.events
                if getattr(e, "region", "") == "perch"
            ]
            print(f"{name:<22} {cpu * 60 / seconds:21.1f} {invokes:>8} {len(results):>18}   {events}")


# --- 4. memory with clips --------------------------------------------------------------------------
def child(args: argparse.Namespace) -> int:
    """One memory run (a subprocess of its own, so its RSS is its own); prints a JSON line of facts."""
    from edge_classifier import Classifier, LoopOptions
    from edge_classifier.regions import Region
    from edge_classifier.session import run_pipeline
    from edge_classifier.sinks import CallbackSink, JsonlSink
    from edge_classifier.sinks.clips import ClipSink

    ns = noises()
    frames = [scene_frame(False, n) for n in ns] + [scene_frame(True, n) for n in ns]
    bird = [(i // args.toggle) % 2 == 1 for i in range(args.frames)]  # the bird comes and goes (every 50 s)
    sinks: list[Any] = [JsonlSink(args.progress.with_suffix(".jsonl"))]
    facts: dict[str, Any] = {"ring_peak_mb": 0.0}
    clips = None
    if args.child == "clips":
        clips = ClipSink(args.clips_dir, pre=5.0, post=5.0, max_mb=300)
        sinks.append(clips)

        def note(_: Any) -> None:
            assert clips is not None
            facts["ring_peak_mb"] = max(facts["ring_peak_mb"], clips.ring.nbytes / 1e6)
            if len(clips.ring):
                facts["jpeg_kb"] = clips.ring.nbytes / len(clips.ring) / 1e3

        sinks.append(CallbackSink(note))
    with Classifier(args.model) as clf:
        # every=1: the memory under test is the clips', not the model's; the perch is classified once a second.
        opts = LoopOptions(regions=(Region("perch", PERCH),), every=1.0)
        source = replay_source(frames, args.frames, fps=30.0, bird=bird, progress=args.progress)
        stats = run_pipeline(clf, source, sinks, opts, stats_file=io.StringIO(), handle_signals=False)
    facts.update(frames=stats.frames, written=clips.written if clips else 0)
    print(json.dumps(facts))
    return 0


def sample_rss(cmd: list[str], progress: Path) -> tuple[float, list[tuple[int, float]], str]:
    """Run ``cmd``; peak RSS (MiB), (frames read, RSS MiB) samples every 0.25 s, and its stdout."""
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    samples: list[tuple[int, float]] = []
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss / 2**20
            done = int(progress.read_text() or 0) if progress.exists() else 0
        except psutil.NoSuchProcess:
            break
        except ValueError:  # caught mid-write
            continue
        samples.append((done, rss))
        time.sleep(0.25)
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:4]}... exited with {proc.returncode}: {err[-2000:]}")
    return max(s for _, s in samples), samples, out


def memory_table(model: Path, frames: int, tmp: Path) -> None:
    print(f"\n4. peak RSS over {frames} frames of 1280x720 at 30 fps (perch region, every=1; the bird comes and goes every 50 s)")
    print(f"{'run':<26} {'peak RSS MiB':>12} {'at frame 1,000':>15} {'max after MiB':>14} {'growth MiB':>11}   facts")
    for mode in ("none", "clips"):
        progress = tmp / f"{mode}.progress"
        cmd = [sys.executable, __file__, "--child", mode, "--model", str(model), "--frames", str(frames),
               "--progress", str(progress), "--clips-dir", str(tmp / f"clips-{mode}")]  # fmt: skip
        peak, samples, out = sample_rss(cmd, progress)
        after = [rss for n, rss in samples if n >= min(1000, frames // 10)] or [float("nan")]
        facts = json.loads(out.strip().splitlines()[-1])
        label = "no clips (baseline)" if mode == "none" else "clips pre=5 post=5"
        print(f"{label:<26} {peak:12.1f} {after[0]:15.1f} {max(after):14.1f} {max(after) - after[0]:+11.1f}   {facts}")
        marks = [frames * k // 5 for k in range(1, 6)]
        at = [max((rss for n, rss in samples if m - frames // 10 < n <= m), default=float("nan")) for m in marks]
        print(f"{'':<26} highest RSS by frame " + ", ".join(f"{m}: {v:.0f}" for m, v in zip(marks, at, strict=True)) + " MiB")
        if mode == "clips" and "jpeg_kb" in facts:
            per_s = facts["jpeg_kb"] * 30 / 1e3
            print(f"pre-roll buffer: {facts['jpeg_kb']:.0f} kB per 720p frame (JPEG q80) = "
                  f"{per_s:.1f} MB per second of pre-roll at 30 fps;"
                  f" pre=5 holds 6 s (+1 s slack) = {per_s * 6:.0f} MB, peak seen {facts['ring_peak_mb']:.1f} MB")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Print the four tables (or run one memory child)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=CORAL / "mobilenet_v2_1.0_224_quant.tflite")
    ap.add_argument("--frames", type=int, default=10_000, help="frames for the memory runs")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved loop/bare rounds per region count")
    ap.add_argument("--chunk", type=int, default=20, help="frames per round")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: framing,fps,cpu,memory")
    ap.add_argument("--child", choices=("none", "clips"), help=argparse.SUPPRESS)
    ap.add_argument("--progress", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--clips-dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--toggle", type=int, default=1500, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    skip = set(args.skip.split(","))
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        if "framing" not in skip:
            framing_table([args.model, CORAL / "tf2_mobilenet_v2_1.0_224_ptq.tflite"])
        if "fps" not in skip:
            fps_table(args.model, args.rounds, args.chunk)
        if "cpu" not in skip:
            cpu_table(args.model, write_static_clip(d / "static.mp4"), 20)
        if "memory" not in skip:
            memory_table(args.model, args.frames, d)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
