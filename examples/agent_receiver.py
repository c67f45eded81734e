#!/usr/bin/env python3
"""A minimal receiver of Vigil's anomaly events, as an AI agent or a script would run it.

Standard library only. It listens on 127.0.0.1:8765 and takes:

- ``POST /events``: one event JSON from a Vigil ``webhook`` receiver (``format: json``),
- ``POST /alertmanager``: Alertmanager's webhook JSON (``{"version": "4", "alerts": [...]}``)
  for alerts Vigil posted there (examples/alertmanager.yml routes them here).

Each message carries an idempotency key, ``"<event id>:<state>"``: the body's
``idempotency_key`` and the ``Idempotency-Key`` header for Vigil's own posts, the
``idempotency_key`` annotation for alerts that went through Alertmanager. Vigil delivers
at least once (a retry after a lost answer can repeat a message), and Alertmanager repeats
open alerts every ``repeat_interval``: the receiver acts once per key and answers 200 to
repeats. With ``--seen FILE`` the keys outlive a restart of the receiver.

It prints one line per thing to act on, such as::

    ACT firing   3f2a...:firing  cpu_utilization on web-1 is 97.2, expected 41.5 (band 30.1 to 52.9)
                 -> look at http://127.0.0.1:8080/api/v1/series/9c1e...
    ACT resolved 3f2a...:resolved  cpu_utilization on web-1 was 97.2, ...; resolved after 4 min

Usage::

    python examples/agent_receiver.py [--listen 127.0.0.1:8765] [--seen seen.txt] [--token-env AGENT_TOKEN]

With ``--token-env NAME`` a request must carry ``Authorization: Bearer <$NAME>`` (configure
the Vigil receiver with ``headers: {Authorization: {env: ...}}``). A body that is not
JSON gets 400, which Vigil takes as final (a receiver that rejects a body will not take it
later).
"""

from __future__ import annotations

import argparse
import hmac
import http.server
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

MAX_BODY = 1 << 20


class Seen:
    """Idempotency keys already acted on, optionally kept in a file (one key a line)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.keys: set[str] = set()
        self.lock = threading.Lock()
        if path is not None and path.exists():
            self.keys = set(path.read_text().split())

    def first_time(self, key: str) -> bool:
        with self.lock:
            if key in self.keys:
                return False
            self.keys.add(key)
            if self.path is not None:
                with self.path.open("a") as f:
                    f.write(key + "\n")
            return True


def act(state: str, key: str, summary: str, link: str | None) -> None:
    """What an agent would do; here, say it."""
    line = f"ACT {state:<8} {key}  {summary}"
    if link and state == "firing":
        line += f"\n             -> look at {link}"
    print(line, flush=True)


def from_vigil(body: dict[str, Any], header_key: str | None) -> list[tuple[str, str, str, str | None]]:
    key = body.get("idempotency_key") or header_key or f"{body.get('id')}:{body.get('state')}"
    return [(str(body.get("state")), str(key), str(body.get("summary", "")), body.get("series_url"))]


def from_alertmanager(body: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    out = []
    for alert in body.get("alerts") or []:
        notes = alert.get("annotations") or {}
        state = str(alert.get("status"))
        # Vigil's alerts name their event; others fall back on Alertmanager's fingerprint
        event = notes.get("event_id") or alert.get("fingerprint")
        out.append((state, f"{event}:{state}", str(notes.get("summary", "")), alert.get("generatorURL")))
    return out


def make_handler(seen: Seen, token: str | None) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def reply(self, status: int, text: str) -> None:
            data = json.dumps({"status": text}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if token is not None:
                given = self.headers.get("Authorization", "")
                if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                    return self.reply(401, "missing or wrong bearer token")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self.reply(413, "body too large")
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                return self.reply(400, "not JSON")
            if not isinstance(body, dict):
                return self.reply(400, "not a JSON object")
            if self.path == "/events":
                items = from_vigil(body, self.headers.get("Idempotency-Key"))
            elif self.path == "/alertmanager":
                items = from_alertmanager(body)
            else:
                return self.reply(404, "POST to /events or /alertmanager")
            for state, key, summary, link in items:
                if seen.first_time(key):
                    act(state, key, summary, link)
                else:
                    print(f"dup {key} (already acted on)", flush=True)
            return self.reply(200, "ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:8765", help="host:port (default 127.0.0.1:8765)")
    parser.add_argument("--seen", type=Path, help="file keeping the idempotency keys acted on")
    parser.add_argument("--token-env", help="environment variable holding the bearer token to require")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    token = None
    if args.token_env:
        token = os.environ.get(args.token_env)
        if not token:
            parser.error(f"environment variable {args.token_env} is not set")
    server = http.server.ThreadingHTTPServer((host or "127.0.0.1", int(port)), make_handler(Seen(args.seen), token))
    print(f"agent receiver on http://{host or '127.0.0.1'}:{server.server_address[1]} "
          "(POST /events, POST /alertmanager)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
