"""The delivery loop: sends the outbox's pending messages, retries, gives up, re-posts.

One asyncio task per receiver, each with its own HTTP client, at most `concurrency`
requests in flight and a hard `timeout` per request, so a slow, hanging or dead receiver
only ever delays itself: never detection (the engine's ticks) and never another receiver.

Outcome of one attempt (every request carries the ``Idempotency-Key`` header):

- 2xx: ``sent``.
- 4xx other than 408 and 429: ``dead`` at once; a receiver that rejects a body will not
  take it later (the error, without URL or headers, is kept in ``last_error``).
- 5xx, 408, 429, a timeout or a connection error: retried after an exponential backoff
  with full jitter, ``uniform(0, min(max_backoff, backoff * 2**(attempts - 1)))`` (at
  least the ``Retry-After`` of a 429 or 503), until ``max_attempts`` attempts or
  ``give_up_after`` seconds since the message was queued; then ``dead``.

Alertmanager receivers also get every open event they were told about re-posted each
``repost_every`` (with ``endsAt`` four intervals ahead), so Alertmanager never resolves
an alert by timeout while Vigil is up, and resolves it by itself if Vigil goes away. These
re-posts are not outbox messages: they are derived from the outbox's sent firings and the
engine's open events, and counted in ``vigil_alertmanager_reposts_total``.

Receiver URLs and headers are secrets: they never appear in logs (httpx's own request
log lines included), in ``last_error`` or in the API; logs name the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from vigil.config import Notify
from vigil.errors import StoreError
from vigil.metrics import Metrics
from vigil.outputs.notify.channels import BODIES
from vigil.outputs.notify.content import series_link
from vigil.outputs.notify.outbox import Message, Outbox
from vigil.outputs.notify.targets import Target, hide_secrets_in_http_logs

__all__ = ["Sender"]

log = logging.getLogger("vigil.notify")

_RETRY_STATUS = (408, 429)


class Sender:
    """Delivers `outbox` messages to `targets` until stopped.

    Parameters
    ----------
    outbox, targets, settings, metrics
        The queue, the receivers (`build_targets`), the retry settings and the counters.
    link_base
        Vigil's URL for links in messages (`base_url`).
    open_events
        Ids of the events open now (`Engine.open_event_ids`); only those are re-posted to
        Alertmanager. None: every firing event Alertmanager was told about.
    clock, random
        Injectable time (Unix seconds) and a uniform [0, 1) draw, for the backoff.
    transport
        An httpx transport for every client (tests); None: the network.
    idle
        Longest wait between two looks at the outbox when nothing wakes the loop.
    grace
        Seconds in-flight requests get to finish at stop; unfinished messages stay
        pending and go out after the restart.
    """

    def __init__(
        self,
        outbox: Outbox,
        targets: Sequence[Target],
        settings: Notify,
        metrics: Metrics,
        link_base: str,
        open_events: Callable[[], set[str]] | None = None,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = random.random,
        transport: httpx.AsyncBaseTransport | None = None,
        idle: float = 1.0,
        grace: float = 2.0,
    ) -> None:
        self.outbox = outbox
        self.targets = {t.name: t for t in targets}
        self.settings = settings
        self.metrics = metrics
        self.link_base = link_base
        self.open_events = open_events
        self.clock = clock
        self.random = random
        self.transport = transport
        self.idle = idle
        self.grace = grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}
        hide_secrets_in_http_logs(targets)
        outbox.on_enqueue = self.wake
        for t in targets:
            for result in ("sent", "retry", "dead"):
                metrics.notifications.labels(t.name, result)
            metrics.notifications_pending.labels(t.name).set(0)
            if t.type == "alertmanager":
                for result in ("ok", "failed"):
                    metrics.reposts.labels(t.name, result)

    # -- public --------------------------------------------------------------------------

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after `attempts` failed ones (full jitter)."""
        cap = min(self.settings.max_backoff, self.settings.backoff * 2.0 ** max(attempts - 1, 0))
        return self.random() * cap

    def wake(self, receivers: set[str] | None = None) -> None:
        """Tell the workers of `receivers` (all when None) to look now; safe from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        names = self.targets if receivers is None else receivers
        for name in names:
            t = self.targets.get(name)
            if t is not None:
                try:
                    loop.call_soon_threadsafe(t.wake.set)
                except RuntimeError:  # the loop closed meanwhile
                    return

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; in-flight requests get `grace` seconds, then stop."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        for t in self.targets.values():
            t.wake = asyncio.Event()
            t.next_repost = self.clock()  # at once: alerts may have timed out while Vigil was down
        workers = [asyncio.create_task(self._worker(t, stop)) for t in self.targets.values()]
        try:
            while not stop.is_set():
                try:
                    removed = await asyncio.to_thread(self.outbox.prune, self.clock() - self.settings.keep)
                    if removed:
                        log.debug("outbox: %d sent or dead messages older than notify.keep deleted", removed)
                except Exception:  # housekeeping must not stop delivery
                    log.exception("outbox: pruning old messages failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=600)
        finally:
            self._stopping = True
            for t in self.targets.values():
                t.wake.set()
            if workers:
                _, late = await asyncio.wait(workers, timeout=self.grace)
                for task in late:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
            await self.aclose()
            self._loop = None

    async def step(self, receiver: str) -> int:
        """One round for `receiver`: deliver what is due now, re-post if due; how many were tried."""
        t = self.targets[receiver]
        if receiver not in self._limits:
            self._limits[receiver] = asyncio.Semaphore(t.concurrency)
        client = self._clients.get(t.name)
        if client is None:
            client = await asyncio.to_thread(self._client, t)
        if t.type == "alertmanager" and self.clock() >= t.next_repost:
            t.next_repost = self.clock() + t.repost_every
            await self._repost(t, client)
        batch = await asyncio.to_thread(self.outbox.due, t.name, self.clock(), 4 * t.concurrency)
        if batch:
            await asyncio.gather(*(self._deliver(t, client, m, self._limits[receiver]) for m in batch))
        pending = await asyncio.to_thread(self.outbox.pending, t.name)
        self.metrics.notifications_pending.labels(t.name).set(pending)
        return len(batch)

    async def aclose(self) -> None:
        """Close the HTTP clients (`run` does it on the way out)."""
        clients, self._clients = self._clients, {}
        self._limits.clear()
        for client in clients.values():
            await client.aclose()

    # -- per receiver --------------------------------------------------------------------

    def _client(self, t: Target) -> httpx.AsyncClient:
        """The receiver's client; made in a worker thread (loading CA certificates takes a while)."""
        client = self._clients.get(t.name)
        if client is None:
            client = self._clients[t.name] = httpx.AsyncClient(
                timeout=t.timeout, transport=self.transport, follow_redirects=False,
                limits=httpx.Limits(max_connections=t.concurrency, max_keepalive_connections=t.concurrency),
            )
        return client

    async def _worker(self, t: Target, stop: asyncio.Event) -> None:
        while not (stop.is_set() or self._stopping):
            nxt: float | None = None
            try:
                t.wake.clear()
                if await self.step(t.name):
                    continue
                nxt = await asyncio.to_thread(self.outbox.next_due, t.name)
                t.store_trouble = None
            except StoreError as exc:  # a full disk: said once, retried; the messages wait in the outbox
                if str(exc) != t.store_trouble:
                    log.warning("receiver %s: %s; delivery waits and retries", t.name, exc)
                t.store_trouble = str(exc)
            except Exception:  # a bug: say it, wait, go on
                log.exception("receiver %s: delivery loop failed; retrying", t.name)
            wait = self.idle if nxt is None else min(max(nxt - self.clock(), 0.005), self.idle)
            if t.type == "alertmanager":
                wait = min(wait, max(t.next_repost - self.clock(), 0.0))
            if wait > 0 and not t.wake.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(t.wake.wait(), timeout=wait)

    def _body(self, t: Target, event: dict[str, Any]) -> Any:
        return BODIES[t.channel](event, series_link(self.link_base, event), t, self.clock())

    async def _post(
        self, t: Target, client: httpx.AsyncClient, body: Any, key: str | None
    ) -> tuple[str, str | None, float]:
        """One POST: ("sent" | "retry" | "dead", error without secrets, Retry-After seconds)."""
        headers = dict(t.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        try:
            async with asyncio.timeout(t.timeout):
                r = await client.post(t.url, json=body, headers=headers)
        except TimeoutError:
            return "retry", f"no answer within {t.timeout:g} s (timeout)", 0.0
        except httpx.HTTPError as exc:
            return "retry", t.redact(f"{type(exc).__name__}: {exc}".rstrip(": ")), 0.0
        except Exception as exc:  # noqa: BLE001 - an odd failure of the HTTP stack: retried, given up in the end
            log.debug("receiver %s: unexpected %s while posting", t.name, type(exc).__name__)
            return "retry", t.redact(f"{type(exc).__name__}: {exc}".rstrip(": ")), 0.0
        if 200 <= r.status_code < 300:
            return "sent", None, 0.0
        text = " ".join(r.text[:200].split())
        error = t.redact(f"HTTP {r.status_code}" + (f": {text}" if text else ""))
        if r.status_code >= 500 or r.status_code in _RETRY_STATUS:
            return "retry", error, _retry_after(r.headers.get("retry-after"), self.clock())
        if 300 <= r.status_code < 400:
            return "dead", error + " (a redirect: configure the final URL)", 0.0
        return "dead", error, 0.0

    async def _deliver(self, t: Target, client: httpx.AsyncClient, m: Message, limit: asyncio.Semaphore) -> None:
        try:
            body = self._body(t, m.event)
        except Exception as exc:  # a payload that cannot be rendered never will be
            log.exception("receiver %s: cannot render message %s", t.name, m.key)
            outcome, retry_after = "dead", 0.0
            error: str | None = f"cannot render the message: {type(exc).__name__}: {exc}"
        else:
            async with limit:
                outcome, error, retry_after = await self._post(t, client, body, m.key)
        now = self.clock()
        attempts = m.attempts + 1
        next_at: float | None = None
        if outcome == "retry":
            too_old = now - m.created_at >= self.settings.give_up_after
            if attempts >= self.settings.max_attempts or too_old:
                why = f"{attempts} attempts" if not too_old else f"{now - m.created_at:.0f} s (notify.give_up_after)"
                outcome, error = "dead", f"gave up after {why}; last error: {error}"
            else:
                delay = max(self.backoff(attempts), min(retry_after, self.settings.max_backoff))
                next_at = now + delay
        status = {"sent": "sent", "retry": "pending", "dead": "dead"}[outcome]
        await asyncio.to_thread(self.outbox.record, m.id, status, attempts, next_at, error)
        self.metrics.notifications.labels(t.name, outcome).inc()
        if outcome == "sent":
            if t.failing:
                log.info("receiver %s: delivering again", t.name)
            t.failing = False
            log.debug("receiver %s: sent %s", t.name, m.key)
        elif outcome == "retry":
            if not t.failing:
                log.warning("receiver %s: delivery failed (%s); retrying with backoff", t.name, error)
            t.failing = True
        else:
            log.warning("receiver %s: message %s is dead: %s", t.name, m.key, error)

    async def _repost(self, t: Target, client: httpx.AsyncClient) -> None:
        events = await asyncio.to_thread(self.outbox.firing_sent, t.name)
        if self.open_events is not None and events:
            open_now = await asyncio.to_thread(self.open_events)
            events = [e for e in events if e.get("id") in open_now]
        if not events:
            return
        body = [alert for e in events for alert in self._body(t, e)]
        outcome, error, _ = await self._post(t, client, body, None)
        self.metrics.reposts.labels(t.name, "ok" if outcome == "sent" else "failed").inc()
        if outcome != "sent":
            log.warning("receiver %s: re-posting %d open alerts failed (%s)", t.name, len(events), error)


def _retry_after(value: str | None, now: float) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date); 0 when absent or odd."""
    if not value:
        return 0.0
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(when.timestamp() - now, 0.0)
