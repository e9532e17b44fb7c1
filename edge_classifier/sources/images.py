"""Frames from still images: one file, a folder (recursively) or a glob, in a stable sorted order."""

from __future__ import annotations

import glob as globmod
import logging
from pathlib import Path

import numpy as np

from ..errors import ImageError, SourceError
from ..preprocess import IMAGE_EXTENSIONS, list_images, load_image
from .base import Source

log = logging.getLogger(__name__)


def is_glob(text: str) -> bool:
    """True when ``text`` holds glob wildcards."""
    return any(ch in text for ch in "*?[")


def resolve_images(spec: str | Path) -> list[Path]:
    """The image files ``spec`` names, sorted: a file, every image under a folder, or a glob's matches.

    Raises:
        SourceError: nothing exists there, or it holds no image files.
    """
    text = str(spec)
    if is_glob(text):
        paths = sorted(Path(p) for p in globmod.glob(text, recursive=True) if Path(p).is_file())
        paths = [p for p in paths if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not paths:
            raise SourceError(
                text, "the pattern matches no image files", f"check the pattern; images end in {', '.join(IMAGE_EXTENSIONS)}"
            )
        return paths
    path = Path(text)
    if path.is_dir():
        paths = list_images(path)
        if not paths:
            raise SourceError(text, "the folder holds no image files", f"add images ending in {', '.join(IMAGE_EXTENSIONS)}")
        return paths
    if path.is_file():
        return [path]
    raise SourceError(text, "no such file or folder", "check the path")


class ImageSource(Source):
    """Each image once, as a frame; an unreadable image is logged, counted and skipped.

    Once :meth:`prefer_size` names the size the consumer needs, large JPEGs are decoded at a reduced scale that
    still covers it (see :func:`~edge_classifier.preprocess.load_image`); ``full_frames`` keeps every pixel.

    Args:
        spec: an image file, a folder (searched recursively) or a glob such as ``shots/*.jpg``.
        full_frames: always decode at full resolution (regions, recording, a web view need the whole picture).

    Raises (from ``open``):
        SourceError: nothing there, or no image files.
    """

    live = False

    def __init__(self, spec: str | Path, *, full_frames: bool = False) -> None:
        super().__init__()
        self.spec = spec
        self.name = str(spec)
        self.full_frames = full_frames
        self.paths: list[Path] = []
        self._next = 0
        self._min_size: tuple[int, int] | None = None

    def prefer_size(self, width: int, height: int) -> None:
        """Decode JPEGs reduced, to no less than ``width`` x ``height`` (unless ``full_frames``)."""
        if not self.full_frames:
            self._min_size = (max(1, int(width)), max(1, int(height)))

    def open(self) -> None:
        """List the images (the order is fixed here, sorted by path)."""
        self.paths = resolve_images(self.spec)
        self._next = 0
        log.info("%s: %d images", self.name, len(self.paths))

    def read(self) -> np.ndarray | None:
        """The next decodable image as RGB, or None after the last one."""
        while self._next < len(self.paths) and not self._interrupted.is_set():
            path = self.paths[self._next]
            self._next += 1
            try:
                return load_image(path, min_size=self._min_size)
            except ImageError as exc:
                self.decode_errors += 1
                log.warning("skipped an image (%d so far): %s", self.decode_errors, exc)
        return None

    @property
    def current_path(self) -> Path | None:
        """The file of the frame most recently read."""
        return self.paths[self._next - 1] if self._next else None
