"""The plain JSON body: the event document as it is, for any JSON receiver (an agent, a script)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vigil.outputs.notify.content import idempotency_key

__all__ = ["json_body"]


def json_body(event: Mapping[str, Any], link: str) -> dict[str, Any]:
    """The event document (`vigil.outputs.event`) plus ``idempotency_key`` and ``series_url``."""
    return {**event, "idempotency_key": idempotency_key(event), "series_url": link}
