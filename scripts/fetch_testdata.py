#!/usr/bin/env python3
"""Fetch the public test data the suite reads from ``../shared/testdata`` beside the checkout.

The project's CI has ``../shared`` laid out beside the clone. Anyone who cloned the project from its public home can
get the same Coral files (google-coral/test_data, pinned to one commit, each file checked against its sha256) and,
with ``--insects``, the ants/bees photo set PyTorch's transfer-learning tutorial uses (checked as a whole). Without
them the tests that need them are skipped with one reason; ``../shared/reference`` (compiler logs and error texts the
project captured) is not public, and the few tests that read it stay skipped.

Usage::

    python scripts/fetch_testdata.py              # ../shared/testdata/coral
    python scripts/fetch_testdata.py --insects    # also ../shared/testdata/insects/train
    python scripts/fetch_testdata.py --dest DIR   # somewhere else (then point the tests at it with a symlink)

Only the standard library is used, so it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

CORAL_COMMIT = "c21de4450f88a20ac5968628d375787745932a5a"
CORAL_BASE = f"https://raw.githubusercontent.com/google-coral/test_data/{CORAL_COMMIT}/"

# name -> sha256 of the file the suite was written against.
CORAL_FILES: dict[str, str] = {
    "bird.bmp": "3fd22d6ed352b8e721d9982e38ed655f8429e168bb53ad205c6f3cdfa848e994",
    "cat.bmp": "34f235786382686111728287fd26d4c24dd8c25de8233469d6eeb301888ce0a9",
    "deeplabv3_mnv2_dm05_pascal_quant.tflite": "0470d2a782aa54eeeb99d32e7b6b3fb7722905c7c4f5d26bd957ec861366d48b",
    "deeplabv3_mnv2_dm05_pascal_quant_edgetpu.tflite": "4ccdb19b91c9b0f5917095f5163408326711f06eb0599e3d0fde9b9791f62895",
    "grace_hopper.bmp": "c43444bf3b1b1e3080551ca194bd231da4b67f20fc91454502915a6b806b614f",
    "imagenet_labels.txt": "b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1",
    "mobilenet_v1_0.25_128_quant.tflite": "cb273c23ee76374b05b9583177e28aa19744858a7679c56a250e83d0333da785",
    "mobilenet_v1_0.25_128_quant_edgetpu.tflite": "a4cb1e493346542248687939fbd7421ab92d74c58b1f0a0018b8f1bdddfcef7e",
    "mobilenet_v1_0.5_160_quant.tflite": "3cc6d2ca460abd2e0f699a6d0d2550c6b61c6e3b0e27a3616e384ea74cb86f43",
    "mobilenet_v1_0.5_160_quant_edgetpu.tflite": "e8fc376452b2134637da71016e3d22a6013550bf40d032854c2cb5699da7c16e",
    "mobilenet_v2_1.0_224_quant.tflite": "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776",
    "model_invoking_error.tflite": "a7a16572697abc95456ed8ef2ed632b08966958eb12a35533eb47310bf9888a4",
    "parrot.jpg": "a8fba9e7e29439fa414c13129aad661f2289ff891231920a7c33641b076f1833",
    "posenet_mobilenet_v1_075_353_481_16_quant_decoder.tflite": (
        "db1b5e8d7d6a5030bf1880346b81a52ac3a95682db8bff5d5d7b2f97712c93e2"
    ),
    "posenet_mobilenet_v1_075_353_481_16_quant_decoder_edgetpu.tflite": (
        "a0f588a04965da43f45702658b890a54bbb968fd53d8e891fceacb9d38ae8dd8"
    ),
    "sunflower.bmp": "896b5e31cee42ebe32ee91251fc42041ca03c767fe02bd7ebc0e37d45f4a45b2",
    "tf2_mobilenet_v2_1.0_224_ptq.tflite": "5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c",
    "LICENSE": "f9946796a8a5bd5981565142fa42e3b0cc36aef6f80e86beaf5905b3c0fef1b5",
}
# Not in Coral's repository: a 1280x720 camera-sized frame of the cat, made here from cat.bmp (no sha256 to check).
DERIVED = "cat_720p.jpg"

INSECTS_URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"
INSECTS_COUNT = 245
# sha256 over "ants/name.jpg sha256\n" lines of train/ants and train/bees, sorted by path.
INSECTS_DIGEST = "08f80452e5da7c37488050fa1d73f59084601a7a5a169b059e6074b47830b62e"


class FetchError(Exception):
    """A download failed or its bytes are not the ones the suite was written against."""


def sha256(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def download(url: str, timeout: float = 60.0) -> bytes:
    """The bytes at ``url``.

    Raises:
        FetchError: the server could not be reached or answered with an error.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - fixed https URLs above
            return bytes(response.read())
    except (urllib.error.URLError, OSError) as exc:
        raise FetchError(f"{url}: cannot download ({exc}); check the internet connection or a proxy (HTTPS_PROXY)") from exc


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, so an interrupted fetch leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as tmp:
        tmp.write(data)
    Path(tmp.name).replace(path)


def fetch_coral(dest: Path, base: str = CORAL_BASE) -> list[str]:
    """Fetch and check every Coral file into ``dest``; files already there with the right sha256 are kept.

    Returns:
        the names downloaded (empty when everything was already there).

    Raises:
        FetchError: a download failed or a file's sha256 differs.
    """
    fetched: list[str] = []
    for name, digest in sorted(CORAL_FILES.items()):
        target = dest / name
        if target.is_file() and sha256(target.read_bytes()) == digest:
            continue
        data = download(base + name)
        if sha256(data) != digest:
            raise FetchError(f"{base + name}: sha256 {sha256(data)} is not the pinned {digest}; the file was not written")
        write_atomic(target, data)
        fetched.append(name)
    if not (dest / DERIVED).is_file():
        write_atomic(dest / DERIVED, camera_frame(dest / "cat.bmp"))
        fetched.append(DERIVED)
    return fetched


def camera_frame(photo: Path) -> bytes:
    """A 1280x720 JPEG of ``photo`` (scaled to the frame's height, centred on a grey frame), for the loop tests."""
    from PIL import Image  # installed with the project; only this derived file needs it

    with Image.open(photo) as im:
        rgb = im.convert("RGB")
    scale = 720 / rgb.height
    rgb = rgb.resize((round(rgb.width * scale), 720), Image.Resampling.LANCZOS)
    frame = Image.new("RGB", (1280, 720), (118, 118, 118))
    frame.paste(rgb, ((1280 - rgb.width) // 2, 0))
    out = io.BytesIO()
    frame.save(out, "JPEG", quality=90)
    return out.getvalue()


def insects_digest(root: Path) -> tuple[int, str]:
    """(file count, combined sha256) of the photos under ``root`` (``ants/``, ``bees/``)."""
    h = hashlib.sha256()
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for p in files:
        h.update(f"{p.relative_to(root).as_posix()} {sha256(p.read_bytes())}\n".encode())
    return len(files), h.hexdigest()


def fetch_insects(dest: Path, url: str = INSECTS_URL) -> bool:
    """Fetch the ants/bees training photos into ``dest/train``; False when they were already there.

    Raises:
        FetchError: the download failed, the zip is unreadable, or its photos are not the pinned set.
    """
    train = dest / "train"
    if train.is_dir() and insects_digest(train) == (INSECTS_COUNT, INSECTS_DIGEST):
        return False
    data = download(url, timeout=300)
    with tempfile.TemporaryDirectory(dir=dest.parent if dest.parent.is_dir() else None) as tmp:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                members = [m for m in zf.namelist() if m.startswith("hymenoptera_data/train/") and not m.endswith("/")]
                zf.extractall(tmp, members)
        except zipfile.BadZipFile as exc:
            raise FetchError(f"{url}: not a readable zip ({exc})") from exc
        got = Path(tmp) / "hymenoptera_data" / "train"
        count, digest = insects_digest(got)
        if (count, digest) != (INSECTS_COUNT, INSECTS_DIGEST):
            raise FetchError(f"{url}: {count} photos with digest {digest}, not the pinned {INSECTS_COUNT} / {INSECTS_DIGEST}")
        dest.mkdir(parents=True, exist_ok=True)
        got.replace(train)
    return True


def main(argv: list[str] | None = None) -> int:
    """Command line: fetch into ``--dest`` (default ``../shared/testdata`` beside the checkout)."""
    repo = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=repo.parent / "shared" / "testdata", help="the testdata folder")
    parser.add_argument("--insects", action="store_true", help="also fetch the ants/bees training photos (45 MB zip)")
    args = parser.parse_args(argv)
    try:
        fetched = fetch_coral(args.dest / "coral")
        print(
            f"coral: {len(fetched)} file(s) fetched, {len(CORAL_FILES) + 1 - len(fetched)} already there, "
            f"in {args.dest / 'coral'}"
        )
        if args.insects:
            print(
                "insects: "
                + ("fetched" if fetch_insects(args.dest / "insects") else "already there")
                + f" in {args.dest / 'insects'}"
            )
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing half-written was left", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
