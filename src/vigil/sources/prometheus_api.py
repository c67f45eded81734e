"""Talking to the Prometheus HTTP API for one query: credentials, the POST, and what an answer means.

`PrometheusApi` is the HTTP side of `vigil.sources.prometheus.PrometheusSource`: it sends
a form-encoded ``POST`` with the query's credentials and returns the JSON body of a
successful answer, or raises:

- `SourceUnavailable` for connection refused, DNS failures, timeouts, 5xx (including
  503 "not ready") and any other HTTP failure, and for a body that is not the JSON the
  API documents (saying what came back);
- `QueryRejected` for a 400 or 422 with Prometheus' JSON error, with its ``errorType``
  and ``error``.

Messages name the query and the URL, never the credentials: every secret (a password,
a token, the basic-auth header) is replaced by ``***``, also when the server echoes it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx

from vigil.errors import ConfigError, QueryRejected, SourceUnavailable, redact, redact_url

__all__ = ["Auth", "PrometheusApi", "auth_headers", "seconds", "snippet", "split_credentials"]

Auth = tuple[str, str, str] | tuple[str, str] | None

_SHOW = 200  # characters of an unexpected body shown in a message
_HINTS = {
    401: " (check the credentials)",
    403: " (check the credentials)",
    404: " (is the URL the API's base, with any path prefix?)",
}


class PrometheusApi:
    """POSTs to one API base URL for the query `name` (`query` is its PromQL).

    `client`: an `httpx.AsyncClient` to use, which the caller closes; by default one is
    made on first use and closed by `close`. `timeout` is in seconds, for each request.
    """

    def __init__(
        self, name: str, query: str, url: str, timeout: float, headers: dict[str, str], secrets: list[str],
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self.query = query
        self.url = url
        self.timeout = timeout
        self.headers = headers
        self._secrets = secrets
        self._client = client
        self._own_client = client is None

    async def post(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        """The JSON body of a successful answer to ``POST url + path`` with form `params`."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        target = self.url.rstrip("/") + path
        try:
            response = await self._client.post(target, data=params, headers=self.headers, timeout=self.timeout)
        except httpx.TimeoutException as exc:
            raise self.unavailable(f"no answer within {self.timeout:g} s ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise self.unavailable(f"{type(exc).__name__}: {exc}") from exc
        body = await asyncio.to_thread(_json_of, response)  # a large answer is decoded off the event loop
        text = response.text
        status = response.status_code
        error = _error_text(body)
        if status in (400, 422) and error is not None:
            raise QueryRejected(
                self.redact(f"query {self.name!r} ({self.query}) was rejected by Prometheus at {self.url}: {error}")
            )
        if status >= 400:
            reason = error if error is not None else snippet(text) or "empty body"
            raise self.unavailable(f"HTTP {status} {response.reason_phrase}{_HINTS.get(status, '')}: {reason}")
        if not isinstance(body, dict):
            kind = response.headers.get("content-type", "no content type")
            raise self.unavailable(
                f"expected the Prometheus API's JSON, got HTTP {status} {kind}: {snippet(text) or 'empty body'}"
            )
        if body.get("status") != "success":
            raise self.unavailable(f"expected status 'success', got {snippet(json.dumps(body))}")
        return body

    def unavailable(self, reason: str) -> SourceUnavailable:
        """The error for a server that cannot answer the query now, and why."""
        return SourceUnavailable(
            self.redact(f"query {self.name!r}: Prometheus at {self.url} is unavailable: {reason}")
        )

    def redact(self, text: str) -> str:
        """`text` without the credentials, nor the password of any URL in it."""
        return redact_url(redact(text, self._secrets))

    async def close(self) -> None:
        """Close the HTTP client if this object made it."""
        if self._client is not None and self._own_client:
            await self._client.aclose()
        self._client = None


def seconds(ms: int) -> str:
    """Milliseconds as the API's seconds, exactly: ``1500`` -> ``'1.5'``, ``-250`` -> ``'-0.25'``."""
    whole, frac = divmod(abs(ms), 1000)
    text = f"{whole}.{frac:03d}".rstrip("0") if frac else str(whole)
    return f"-{text}" if ms < 0 else text


def snippet(text: str) -> str:
    """`text` on one line, cut to a length that fits in a message."""
    text = " ".join(text.split())
    return text if len(text) <= _SHOW else text[:_SHOW] + "..."


def _error_text(body: object) -> str | None:
    """``errorType: error`` from the API's JSON error, or None if the body is not one."""
    if isinstance(body, dict) and body.get("status") == "error" and "error" in body:
        kind = body.get("errorType")
        return f"{kind}: {body['error']}" if kind else str(body["error"])
    return None


def split_credentials(url: str, where: str) -> tuple[str, Auth]:
    """The URL without user info, and that user info as basic auth (or None).

    ConfigError, showing the URL without its user info, unless the scheme is http(s) and
    it has a host and no port or one from 1 to 65535.
    """
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number from 0 to 65535, an unclosed [IPv6] bracket
        usable = False
    if not usable:
        raise ConfigError(
            f"{where}: url is {_without_userinfo(url)!r}; "
            "write http(s)://host:port[/prefix] with a port from 1 to 65535"
        )
    if "@" not in parts.netloc:
        return url, None
    clean = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    return clean, ("basic", unquote(parts.username or ""), unquote(parts.password or ""))


def _without_userinfo(url: str) -> str:
    """`url` without whatever comes before an @ in its host part (it may hold a password)."""
    head, sep, rest = url.partition("://")
    if not sep:
        head, rest = "", url
    host = re.split(r"[/?#]", rest, maxsplit=1)[0]
    return head + sep + host.rpartition("@")[2] + rest[len(host):]


def auth_headers(auth: object, where: str) -> tuple[str | None, dict[str, str], list[str]]:
    """(kind, headers, secrets to redact) for an ``auth`` argument."""
    if auth is None:
        return None, {}, []
    if isinstance(auth, tuple) and len(auth) == 3 and auth[0] == "basic":
        user, password = str(auth[1]), str(auth[2])
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return "basic", {"Authorization": f"Basic {token}"}, [s for s in (password, token) if s]
    if isinstance(auth, tuple) and len(auth) == 2 and auth[0] == "bearer":
        token = str(auth[1])
        return "bearer", {"Authorization": f"Bearer {token}"}, [token] if token else []
    kind = auth[0] if isinstance(auth, tuple) and auth else type(auth).__name__
    raise ConfigError(
        f"{where}: auth of kind {kind!r} is not understood; "
        "write ('basic', user, password) or ('bearer', token)"
    )


def _json_of(response: httpx.Response) -> Any:
    """The body as JSON, or None when it is not JSON."""
    try:
        return decode_answer(response.text)
    except ValueError:
        return None


_IN_STEPS = 1 << 20  # characters from which an answer's result list is decoded item by item
_RESULT = re.compile(r'"result"\s*:\s*\[\s*')
_NEXT = re.compile(r"\s*([,\]])\s*")
_DECODER = json.JSONDecoder()


def decode_answer(text: str) -> Any:
    """The JSON of an API answer; ValueError when it is not JSON.

    A large answer's ``data.result`` list is decoded one item at a time: one call that
    decoded it whole would hold the interpreter lock for as long as it takes (most of a
    second at 100,000 series), and the API's event loop with it.

    >>> decode_answer('{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[]}]}}')
    {'status': 'success', 'data': {'resultType': 'matrix', 'result': [{'metric': {}, 'values': []}]}}
    """
    found = _RESULT.search(text) if len(text) >= _IN_STEPS else None
    if found is None:
        return json.loads(text)
    items, at = [], found.end()
    if text.startswith("]", at):
        at += 1
    else:
        while True:
            item, at = _DECODER.raw_decode(text, at)
            items.append(item)
            sep = _NEXT.match(text, at)
            if sep is None:
                raise ValueError(f"expected ',' or ']' at character {at}")
            at = sep.end()
            if sep.group(1) == "]":
                break
    body = json.loads(text[: found.start()] + '"result":[]' + text[at:])
    data = body.get("data") if isinstance(body, dict) else None
    if not (isinstance(data, dict) and data.get("result") == []):  # "result" was not where answers keep it
        return json.loads(text)
    data["result"] = items
    return body
