"""The live web view for headless cameras: one page, an MJPEG stream, snapshots, a JSON status and events.

Use it as a sink (:class:`edge_classifier.sinks.web.WebSink`); :mod:`.options` holds the options and the
security rule, :mod:`.state` what the loop feeds in O(1), :mod:`.server` the HTTP server and its threads.
"""

from __future__ import annotations

from .options import DEFAULT_HOST, DEFAULT_PORT, PASSWORD_ENV, WebOptions, check_options, is_loopback, parse_address

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "PASSWORD_ENV", "WebOptions", "check_options", "is_loopback", "parse_address"]
