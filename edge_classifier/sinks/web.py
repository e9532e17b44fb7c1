"""The live web view as a sink: the loop hands it each Result; a page, an MJPEG stream and a JSON API show them.

::

    from edge_classifier import Classifier
    from edge_classifier.pipeline import run_pipeline
    from edge_classifier.sinks.web import WebOptions, WebSink

    with Classifier("model.tflite") as clf:
        run_pipeline(clf, "picamera", [WebSink(WebOptions(port=8080), classifier=clf)])  # http://127.0.0.1:8080/

``write`` only stores a reference to the newest Result (:meth:`LiveState.update`, O(1)); the server, the JPEG
encoder and the event publisher run in threads of their own (:mod:`edge_classifier.web.server`), so a slow or
stalled browser can never hold up the camera.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..results import Result
from ..web.options import PASSWORD_ENV, WebOptions, check_options, parse_address
from ..web.state import LiveState

if TYPE_CHECKING:
    from ..web.server import WebServer

__all__ = ["PASSWORD_ENV", "WebOptions", "WebSink", "build_web_sink"]


class WebSink:
    """Serves the live web view while the loop runs; stops it (and frees the port) at ``close``.

    Args:
        options: address, password source and limits; validated here, before anything binds or the model loads.
        classifier: the running :class:`~edge_classifier.Classifier`, for the model and runtime the page shows
            (or set :attr:`backend` and :attr:`model` later).
        environ: where the password's environment variable is read (default: ``os.environ``).

    Attributes:
        state: what the loop fed so far (newest Result, counters, recent timings).

    Raises:
        ConfigError: a non-loopback address without a password (unless ``insecure``), an unreadable password
            file, or a bad limit.
        SinkError (from ``start``): the port is in use, or the address is not on this machine.
    """

    blocking = False  # write() stores a reference; the web view's own threads do the work

    def __init__(
        self, options: WebOptions | None = None, *, classifier: Any = None, environ: Mapping[str, str] | None = None
    ) -> None:
        self.options = options if options is not None else WebOptions()
        self._password = check_options(self.options, environ)
        self.state = LiveState(events=self.options.events)
        self.state.camera = self.options.camera or socket.gethostname() or "edge-classifier"
        if classifier is not None:
            self.describe(classifier)
        self.server: WebServer | None = None

    @property
    def backend(self) -> str | None:
        """The runtime's name shown in the status (``ai-edge-litert``, ...)."""
        return self.state.backend

    @backend.setter
    def backend(self, value: str | None) -> None:
        self.state.backend = value

    @property
    def model(self) -> str | None:
        """The model's name shown in the status."""
        return self.state.model

    @model.setter
    def model(self, value: str | None) -> None:
        self.state.model = value

    def describe(self, classifier: Any) -> None:
        """Take the model file name and the runtime from a loaded classifier."""
        self.state.model = classifier.model_path.name
        self.state.backend = classifier.runtime_info.runtime

    @property
    def url(self) -> str:
        """The page's address (with the real port once started)."""
        return self.server.url if self.server is not None else self.options.url

    @property
    def port(self) -> int:
        """The port listened on (the real one when the options said 0, once started)."""
        return self.server.port if self.server is not None else self.options.port

    def start(self) -> None:
        """Bind and start the server and its threads.

        Raises:
            SinkError: the port is in use, needs privileges, or the address is not on this machine.
        """
        # Deferred: http.server and the encoder load only when a web view is wanted (and importing the
        # server here at module level would make a cycle through edge_classifier.sinks).
        from ..web.server import WebServer

        if self.server is not None:
            return
        server = WebServer(self.options, self.state, self._password)
        server.start()
        self.server = server

    def write(self, result: Result) -> None:
        """Keep ``result`` as the newest (O(1), never blocks)."""
        self.state.update(result)

    def close(self) -> None:
        """Stop the server, end every stream and free the port; safe to call more than once."""
        server = self.server
        if server is not None:
            server.stop()


def build_web_sink(
    address: str | None = None,
    *,
    password_file: str | None = None,
    insecure: bool = False,
    max_fps: float | None = None,
    max_viewers: int | None = None,
    camera: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> WebSink:
    """The web sink the ``run`` options ask for, validated, not yet started (``run_pipeline`` starts it).

    Args:
        address: ``--web``'s value: ``HOST:PORT``, ``HOST``, ``:PORT`` or None/"" for 127.0.0.1:8080.
        password_file: ``--web-password-file``; without it the password comes from ``$EDGE_CLASSIFIER_WEB_PASSWORD``.
        insecure: ``--web-insecure``: allow a non-loopback address without a password.
        max_fps: ``--web-fps``: the live stream's frame-rate cap (default 10).
        max_viewers: simultaneous MJPEG viewers (default 8).
        camera: the camera's name in the page and the status (default: the host name).
        environ: where to read the password variable (default ``os.environ``).

    Raises:
        ConfigError: a bad address, a non-loopback address without a password (and no ``insecure``), or an
            unreadable password file.
    """
    host, port = parse_address(address)
    fields: dict[str, Any] = {"host": host, "port": port, "password_file": password_file, "insecure": insecure, "camera": camera}
    if max_fps is not None:
        fields["max_fps"] = max_fps
    if max_viewers is not None:
        fields["max_viewers"] = max_viewers
    return WebSink(WebOptions(**fields), environ=os.environ if environ is None else environ)
