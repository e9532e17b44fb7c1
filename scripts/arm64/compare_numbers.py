"""Where arm64 numbers part from x86-64 ones: the resized input tensors and the raw model outputs, stage by stage.

Run ``dump`` on each machine (natively on x86-64, in the emulated arm64 root, on a real Pi), then ``compare``:

    python scripts/arm64/compare_numbers.py dump x86.npz [--feed OTHER.npz]
    python scripts/arm64/compare_numbers.py compare x86.npz arm64.npz

``dump`` stretches every reference photo to 224x224 with the runtime's fast (OpenCV bilinear cascade) and exact
(Pillow Lanczos) resize, quantizes it as the Classifier does, runs the two MobileNetV2 models with a plain LiteRT
interpreter and saves inputs, uint8 outputs and the chickadee/top-1 scores. With ``--feed`` it also runs this
machine's interpreter on the *other* machine's input tensors, which separates the resize from the kernels: same
tensors in, different scores out means the arithmetic differs, not the preprocessing.
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
CORAL = REPO.parent / "shared" / "testdata" / "coral"
MODELS = ("mobilenet_v2_1.0_224_quant", "tf2_mobilenet_v2_1.0_224_ptq")
PHOTOS = ("bird.bmp", "cat.bmp", "grace_hopper.bmp", "parrot.jpg", "sunflower.bmp")


def _interpreter(model: str):  # -> ai_edge_litert Interpreter (typed loosely: the wheel ships no stubs)
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(str(CORAL / f"{model}.tflite"), num_threads=1)
    interp.allocate_tensors()
    return interp


def _run(interp, tensor: np.ndarray) -> np.ndarray:
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    interp.set_tensor(inp["index"], tensor[None])
    interp.invoke()
    return interp.get_tensor(out["index"])[0].copy()


def dump(out: Path, feed: Path | None) -> None:
    """Save this machine's resized inputs and raw outputs (and, with ``feed``, outputs for the other's inputs)."""
    import cv2

    from edge_classifier import Classifier
    from edge_classifier.preprocess import quantize_pixels, resize_exact, resize_fast

    other = dict(np.load(feed)) if feed else {}
    data: dict[str, np.ndarray] = {
        "machine": np.array(platform.machine()),
        "versions": np.array(f"opencv {cv2.__version__}, numpy {np.__version__}, Python {platform.python_version()}"),
    }
    for model in MODELS:
        with Classifier(CORAL / f"{model}.tflite") as clf:
            spec = clf.spec
        interp = _interpreter(model)
        width, height = spec.input_size
        for photo in PHOTOS:
            rgb = np.asarray(Image.open(CORAL / photo).convert("RGB"))
            key = f"{model}/{photo}"
            for kind, resize in (("fast", resize_fast), ("exact", resize_exact)):
                tensor = quantize_pixels(np.ascontiguousarray(resize(rgb, width, height)), spec)
                data[f"{key}/{kind}/input"] = tensor
                data[f"{key}/{kind}/output"] = _run(interp, tensor)
                if f"{key}/{kind}/input" in other:
                    data[f"{key}/{kind}/output_on_fed"] = _run(interp, other[f"{key}/{kind}/input"])
    np.savez_compressed(out, **data)  # type: ignore[arg-type]  # numpy's stub wants a dict[str, ArrayLike]
    print(f"{out}: {data['machine']}, {data['versions']}")


def compare(a_path: Path, b_path: Path) -> None:
    """Print, per model and photo, how far the two machines' inputs and outputs lie apart."""
    a, b = dict(np.load(a_path)), dict(np.load(b_path))
    print(f"A = {a['machine']} ({a['versions']}); B = {b['machine']} ({b['versions']})")
    print("model/photo/resize: input |A-B| max, pixels differing; output top-1 A vs B (score); on A's input: B's top-1")
    for key in sorted(k[: -len("/input")] for k in a if k.endswith("/input")):
        ia, ib = a[f"{key}/input"].astype(int), b[f"{key}/input"].astype(int)
        oa, ob = a[f"{key}/output"].astype(int), b[f"{key}/output"].astype(int)
        ta, tb = int(oa.argmax()), int(ob.argmax())
        line = (
            f"{key}: input max {np.abs(ia - ib).max()}, {np.count_nonzero(ia != ib)} values differ; "
            f"top-1 {ta} {oa[ta] / 256:.3f} vs {tb} {ob[tb] / 256:.3f}; output max |A-B| {np.abs(oa - ob).max()}"
        )
        fed = b.get(f"{key}/output_on_fed")
        if fed is not None:
            fed = fed.astype(int)
            line += f"; B on A's input: {int(fed.argmax())} {fed.max() / 256:.3f}, max |A-B| {np.abs(oa - fed).max()}"
        print(line)


def main(argv: list[str]) -> int:
    """``dump OUT.npz [--feed OTHER.npz]`` or ``compare A.npz B.npz``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out", type=Path)
    d.add_argument("--feed", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "dump":
        dump(args.out, args.feed)
    else:
        compare(args.a, args.b)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
