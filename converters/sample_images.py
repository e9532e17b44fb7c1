"""License-clean calibration photos: the public-domain/CC0 images that ship inside the scikit-image wheel.

Used to regenerate the bundled default model without any image download::

    python -m edge_classifier.convert.sample_images photos/      # needs: pip install scikit-image
    edge-convert efficientnet-lite0 --calib photos/ --augment ...

The files are copied from the installed package (scikit-image itself is not imported); a
``LICENSES.txt`` beside them says where each came from.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from edge_classifier.errors import CalibrationError

# file in skimage/data -> license, as stated in skimage.data's docstrings (scikit-image 0.26).
SAMPLES: dict[str, str] = {
    "astronaut.png": "public domain (NASA)",
    "chelsea.png": "CC0 (Stefan van der Walt)",
    "coffee.png": "CC0 (Rachel Michetti)",
    "rocket.jpg": "public domain (SpaceX)",
    "camera.png": "CC0 (Lav Varshney)",
    "brick.png": "CC0 (CC0Textures)",
    "grass.png": "CC0 (CC0Textures)",
    "gravel.png": "CC0 (CC0Textures)",
}


def skimage_data_dir() -> Path:
    """The ``data`` folder of the installed scikit-image.

    Raises:
        CalibrationError: scikit-image is not installed.
    """
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise CalibrationError(
            "scikit-image", "is not installed, so its sample photos are not available", "pip install scikit-image"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def write_samples(dest: str | Path) -> list[Path]:
    """Copy the sample photos to ``dest`` (created) and write ``LICENSES.txt``; return the image paths.

    Raises:
        CalibrationError: scikit-image is missing or lacks one of the files.
    """
    src = skimage_data_dir()
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in SAMPLES:
        if not (src / name).is_file():
            raise CalibrationError(
                str(src / name),
                "is missing from the installed scikit-image",
                "pip install --force-reinstall scikit-image==0.26.0",
            )
        shutil.copyfile(src / name, out / name)
        written.append(out / name)
    lines = [f"{name}: {lic}, from scikit-image's skimage/data" for name, lic in SAMPLES.items()]
    (out / "LICENSES.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m edge_classifier.convert.sample_images DEST``."""
    p = argparse.ArgumentParser(description="Write scikit-image's public-domain/CC0 photos to a folder for calibration.")
    p.add_argument("dest")
    args = p.parse_args(argv)
    try:
        for path in write_samples(args.dest):
            print(path)
    except CalibrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
