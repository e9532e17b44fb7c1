"""Secrets out of everything a person reads: one redaction for every URL that reaches a log, an error or a record.

Cameras, brokers and webhooks are addressed by URLs that often carry a password (``rtsp://user:pw@cam/``,
``mqtt://user:pw@broker``, ``https://hooks.example/x?token=...``). :func:`redact_url` hides the password and secret
query values of one URL; :func:`redact_text` does it to every URL inside a longer text (an exception's message, a
log line); :class:`RedactingFilter` applies it to every log record a handler emits.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters whose values are credentials in the services people point cameras and webhooks at.
SECRET_KEYS = frozenset(
    {
        "password",
        "pass",
        "passwd",
        "pwd",
        "token",
        "access_token",
        "auth",
        "key",
        "api_key",
        "apikey",
        "secret",
        "sig",
        "signature",
    }
)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``url`` with its password (and secret query values) replaced by ``***``; other URLs unchanged.

    A URL that cannot be parsed is returned with everything between ``://`` and ``@`` masked, since it may
    still hold a password.
    """
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return re.sub(r"(://)[^/@\s]*@", rf"\g<1>{MASK}@", url)
    netloc = parts.netloc
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{parts.username}:{MASK}@{host}" if parts.username else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in SECRET_KEYS for k, _ in pairs):
            query = urlencode([(k, MASK if k.lower() in SECRET_KEYS else v) for k, v in pairs], safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted (see :func:`redact_url`)."""
    if "://" not in text:
        return text
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


class RedactingFilter(logging.Filter):
    """A handler filter that redacts URLs in every record's message, arguments included (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; always True."""
        if record.args:
            try:
                record.msg = record.getMessage()
                record.args = None
            except (TypeError, ValueError):
                return True
        if isinstance(record.msg, str):
            record.msg = redact_text(record.msg)
        return True
