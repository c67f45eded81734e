"""Vigil's exceptions, one hierarchy.

    VigilError
     ├── ConfigError        a config file or a parameter is wrong; the message names the key
     ├── DataError          input data (a CSV file, a sample) cannot be used
     ├── SourceError        a metrics source failed
     │    ├── SourceUnavailable   down, refusing, timing out, or answering 5xx
     │    └── QueryRejected       the server refused the query itself (bad PromQL)
     ├── NotifyError        a notification could not be delivered
     ├── StateError         a saved state cannot be read or does not fit
     └── StoreError         the store in data_dir cannot be written now (disk full, read-only)
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "ConfigError", "DataError", "NotifyError", "QueryRejected", "SourceError", "SourceUnavailable",
    "StateError", "StoreError", "VigilError", "redact", "redact_url",
]


class VigilError(Exception):
    """Base class of every error Vigil raises on purpose."""


class ConfigError(VigilError):
    """A configuration value is wrong; the message says which key, what, and what is right."""


class DataError(VigilError):
    """Input data cannot be used; the message says where (file, line) and why."""


class SourceError(VigilError):
    """A metrics source failed (down, slow, or rejected the query)."""


class SourceUnavailable(SourceError):
    """The source is down, refuses connections, times out or answers 5xx; worth retrying."""


class QueryRejected(SourceError):
    """The server refused the query itself (for Prometheus: its own error text); not retried."""


class NotifyError(VigilError):
    """A notification could not be delivered."""


class StateError(VigilError):
    """A saved state cannot be read or does not match the configuration."""


class StoreError(VigilError):
    """A write to the store failed (disk full, read-only, I/O error); nothing of it was kept, so it
    can be retried whole."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret in it written ``***``, the longest first (a token inside a URL).

    >>> redact("GET https://h/hook/s3cret?k=s3cret", ["s3cret", "https://h/hook/s3cret?k=s3cret"])
    'GET ***'
    """
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return text


# scheme://user:password@ where the password runs to the last @ before the host's end (/ ? # or a space)
_PASSWORD = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://[^\s/?#:]*:)[^\s/?#]*@")


def redact_url(text: str) -> str:
    """`text` with the password of every URL in it written ``***`` (the user name stays).

    >>> redact_url("prometheus.url is 'http://vigil:s3cr@t@prom:x/api'; write a port")
    "prometheus.url is 'http://vigil:***@prom:x/api'; write a port"
    >>> redact_url("http://prom:9090/api?who=a@b")
    'http://prom:9090/api?who=a@b'
    """
    return _PASSWORD.sub(r"\1***@", text)
