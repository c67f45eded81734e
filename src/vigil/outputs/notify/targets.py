"""Receivers as the sender sees them: each one's URL and headers read, and kept secret.

`build_targets` reads every configured receiver's secrets into a `Target`; `base_url` is
how messages link back to Vigil. Receiver URLs and headers are secrets: a `Target` never
shows them (its repr, `Target.redact`), and `hide_secrets_in_http_logs` keeps them out of
the HTTP libraries' own log lines.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx

from vigil.config import Config, Notify
from vigil.errors import ConfigError, redact

__all__ = ["Target", "base_url", "build_targets", "hide_secrets_in_http_logs"]

_HOLD_INTERVALS = 4  # endsAt of a firing alert: this many re-post intervals ahead


@dataclass
class Target:
    """A receiver with its secrets read: where and how to post."""

    name: str
    type: str
    url: str
    headers: dict[str, str]
    format: str = "json"
    timeout: float = 5.0
    concurrency: int = 2
    repost_every: float = 60.0
    labels: dict[str, str] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    wake: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    failing: bool = field(default=False, repr=False)
    next_repost: float = field(default=0.0, repr=False)
    store_trouble: str | None = field(default=None, repr=False)  # why the outbox refused the last write

    def __repr__(self) -> str:  # never the URL or the headers
        return f"Target({self.name!r}, {self.type})"

    @property
    def channel(self) -> str:
        """What its messages look like: ``alertmanager``, or a webhook's format (json, teams, slack)."""
        return self.type if self.type == "alertmanager" else self.format

    @property
    def hold(self) -> float:
        """Seconds past now at which Alertmanager ends a firing alert that is not re-posted."""
        return _HOLD_INTERVALS * self.repost_every

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)


def _secret_parts(url: str, headers: dict[str, str]) -> tuple[str, ...]:
    """The URL and the parts of it that may hold a token, longest first, and the header values."""
    parts = {url, *headers.values()}
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is not None:
        parts |= {str(parsed), parsed.query.decode(errors="replace"), parsed.path}
        parts |= {p for p in parsed.path.split("/") if len(p) >= 8}
    return tuple(sorted((p for p in parts if len(p) >= 4 and p != "/"), key=len, reverse=True))


def build_targets(notify: Notify) -> list[Target]:
    """Read every receiver's secrets; ConfigError naming the key when one cannot be read or is no URL."""
    out = []
    for i, r in enumerate(notify.receivers):
        where = f"notify.receivers[{i}]"
        try:
            url = r.url.get().strip()
            headers = {k: v.get() for k, v in r.headers.items()}
        except ConfigError as exc:
            raise ConfigError(f"{where} ({r.name}): {exc}") from None
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{where}.url ({r.name}): the secret does not hold a URL starting with http:// or https:// "
                "(its text is not shown)"
            )
        if r.type == "alertmanager" and not url.rstrip("/").endswith("/api/v2/alerts"):
            url = url.rstrip("/") + "/api/v2/alerts"
        out.append(Target(
            name=r.name, type=r.type, url=url, headers=headers, format=r.format, timeout=r.timeout,
            concurrency=r.concurrency, repost_every=r.repost_every, labels=dict(r.labels),
            secrets=_secret_parts(url, headers),
        ))
    return out


def base_url(config: Config) -> str:
    """How receivers link back to Vigil: `notify.external_url`, else the listen address."""
    if config.notify.external_url:
        return config.notify.external_url.rstrip("/")
    host = config.server.host
    if host in ("0.0.0.0", "::", ""):  # a link, not a bind
        host = socket.gethostname()
    return f"http://{host}:{config.server.port}"


class _Redact(logging.Filter):
    """Rewrites log records of the HTTP libraries so that no secret URL part is written."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(s in text for s in self.secrets):
            record.msg, record.args = redact(text, self.secrets), ()
        return True


_HTTP_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy")


def hide_secrets_in_http_logs(targets: Sequence[Target]) -> None:
    """Keep the targets' secrets out of the HTTP libraries' log lines (httpx logs each request's URL)."""
    redact = _Redact([s for t in targets for s in t.secrets])
    for name in _HTTP_LOGGERS:
        logging.getLogger(name).addFilter(redact)
