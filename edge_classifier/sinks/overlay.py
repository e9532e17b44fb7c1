"""An annotated preview window (label, score, FPS) through ``cv2.imshow``; q or Esc ends the run."""

from __future__ import annotations

import os
import sys

import cv2

from ..errors import SinkError
from ..results import Result
from .annotate import FpsMeter, annotate


def gui_problem() -> str | None:
    """Why a window cannot be shown here (no GUI in this OpenCV build, no display), or None."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:") and "NONE" in line.upper():
            return "this OpenCV build has no GUI (opencv-python-headless)"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "there is no display (DISPLAY and WAYLAND_DISPLAY are unset)"
    return None


class OverlaySink:
    """Shows each frame with its label in a window; runs in the inference thread (imshow is quick).

    Args:
        title: the window title.

    Attributes:
        name: how messages refer to this output (``preview window``).
        stop_requested: set when the user pressed q or Esc, or closed the window.

    Raises (from ``start``):
        SinkError: no GUI in this OpenCV build or no display, with the fix.
    """

    blocking = False

    def __init__(self, title: str = "edge-classifier") -> None:
        self.title = title
        self.name = "preview window"
        self.stop_requested = False
        self._open = False
        self._meter = FpsMeter()

    def start(self) -> None:
        """Open the window, or explain why it cannot be opened."""
        problem = gui_problem()
        if problem:
            raise SinkError(
                "--show",
                problem,
                "install the GUI build: pip uninstall -y opencv-python-headless && pip install opencv-python "
                "(and run on a desktop or with ssh -X); or drop --show and use --record out.mp4",
            )
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise SinkError(
                "--show", f"OpenCV cannot open a window ({exc})", "install opencv-python (not -headless) or drop --show"
            ) from exc
        self._open = True

    def write(self, result: Result) -> None:
        """Draw and show one frame; polls the keyboard for q/Esc."""
        fps = self._meter.update(result.frame.t_capture)
        cv2.imshow(self.title, annotate(result.frame.rgb, result, fps))
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.stop_requested = True

    def close(self) -> None:
        """Close the window."""
        if self._open:
            self._open = False
            try:
                cv2.destroyWindow(self.title)
                cv2.waitKey(1)
            except cv2.error:
                pass
