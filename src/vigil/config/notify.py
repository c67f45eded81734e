"""The ``notify`` keys: receivers of anomaly events, and how hard Vigil tries to deliver."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from vigil.config.values import Duration, LinkUrl, Model, Name, Secret, SecretUrl

__all__ = ["Notify", "Receiver"]

_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class Receiver(Model):
    """Where anomaly events go: Alertmanager's API, or a webhook (event JSON, Teams, Slack).

    The URL and the headers are secrets (a webhook URL often carries its own token): they
    are never logged, never shown in errors or the API; logs name the receiver instead.
    """

    name: Name
    type: Literal["alertmanager", "webhook"]
    url: SecretUrl
    headers: dict[str, Secret] = Field(default_factory=dict)
    format: Literal["json", "teams", "slack"] = "json"
    timeout: Duration = 5.0
    concurrency: int = Field(2, ge=1, le=32, description="requests in flight at once to this receiver")
    queries: list[str] | None = None
    min_score: float = Field(0.0, ge=0, le=1)
    states: list[Literal["firing", "resolved"]] = Field(default_factory=lambda: ["firing", "resolved"], min_length=1)  # type: ignore[arg-type]
    repost_every: Duration = 60.0
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Receiver:
        problems = []
        only = {"alertmanager": ("repost_every", "labels"), "webhook": ("format",)}
        for kind, keys in only.items():
            for key in keys:
                if self.type != kind and key in self.model_fields_set:
                    problems.append(f"{key} is only for type {kind}; remove it from a receiver of type {self.type}")
        bad = sorted(k for k in self.labels if not _LABEL.fullmatch(k) or k.startswith("__"))
        if bad:
            problems.append(f"labels: {', '.join(bad)} are not label names; write letters, digits and _")
        bad = sorted(k for k in self.headers if not _HEADER.fullmatch(k))
        if bad:
            problems.append(f"headers: {', '.join(map(repr, bad))} are not header names; write such as Authorization")
        if len(set(self.states)) != len(self.states):
            problems.append("states lists a state twice; write [firing], [resolved] or [firing, resolved]")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Notify(Model):
    """Receivers, and how hard Vigil tries to deliver each message of its outbox."""

    receivers: list[Receiver] = Field(default_factory=list)
    max_attempts: int = Field(10, ge=1)
    give_up_after: Duration = 3600.0
    backoff: Duration = 1.0
    max_backoff: Duration = 300.0
    keep: Duration = 7 * 86400.0
    max_event_age: Duration = 3600.0
    external_url: LinkUrl | None = None

    @model_validator(mode="after")
    def _check(self) -> Notify:
        names = [r.name for r in self.receivers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"receiver names must be unique; {', '.join(dup)} appear more than once")
        if self.max_backoff < self.backoff:
            raise ValueError("max_backoff is below backoff; write a cap at least as long as the first delay")
        return self
