"""Schemathesis against a real `vigil run`: every operation of /openapi.json, fuzzed.

One `vigil run` replays a CSV file with a spike and requires a bearer token, so every
endpoint has something to answer: a series, an open event, and a notification a real
webhook receiver took. Schemathesis's command line (``python -m schemathesis.cli``) loads
the live /openapi.json and, for each operation, sends the boundary values of every
parameter (its coverage phase), 200 generated requests, valid and invalid, and
sequences that follow the document's links, such as a listed series' id into
/api/v1/series/{series_id} (its stateful phase); two workers, a fixed seed.

- With the token, every answer is documented: no 5xx (but /check_health's 503, its
  answer while a series is anomalous, and /readyz's "not ready"), and a status code, a
  content type and a body the document lists for that operation.
- Without the token, or with a wrong one, every answer is still documented, and nothing
  but the probes (/healthz, /readyz) answers anything but 401: each request and answer of
  the run is read back from its HAR report.

The rate limit is raised so that the fuzzer is not throttled into 429s. The pytest
integration (`schemathesis.pytest.from_fixture`) is not used: schemathesis 4.32 reads
``Function._nodeid``, which pytest 9 no longer has. A failure shows schemathesis's own
report, each case with a curl command that reproduces it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from support.processes import VigilProcess
from support.receivers import HookServer
from support.servers import wait_until
from support.sources import spike_csv

TOKEN = "fuzz-token-3f9c"  # noqa: S105 - this test's own token
AUTH = f"Authorization: Bearer {TOKEN}"
PROBES = {"/healthz", "/readyz"}  # open by design: src/vigil/http/health.py OPEN
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
SEED = 20260131  # the same requests on every run, so that a failure found once is found again
ROWS, SPIKE = 240, 200

# Per operation: /check_health answers 503 while a series is anomalous, /readyz while a source fails.
SCHEMATHESIS_TOML = """\
[generation]
database = "none"

[[operations]]
include-path-regex = "^/(check_health|readyz)$"
checks.not_a_server_error.expected-statuses = ["2XX", "3XX", "4XX", "503"]
"""


@pytest.fixture(scope="module")
def vigil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VigilProcess]:
    root = tmp_path_factory.mktemp("fuzz")
    spike_csv(root / "cpu.csv", ROWS, SPIKE)
    (root / "token").write_text(TOKEN + "\n")
    with HookServer() as hook:
        config = {
            "data_dir": "data",
            "host": {"enabled": False},
            "server": {"token": {"file": str(root / "token")}, "rate_limit": 100_000},
            "detection": {
                "detector": "ewma",
                "params": {"ewma": {"warmup": 5}},
                "calibration_min_samples": 10,
                "min_rel_deviation": 0.3,  # noise is about 4 %: only the spike opens an event
                "resolve_after": 1000,  # and it is still firing while the fuzzer runs
            },
            "replay": [{"name": "cpu", "path": str(root / "cpu.csv"), "value_column": "cpu", "speed": 6000}],
            "notify": {"receivers": [{"name": "agent", "type": "webhook", "url": f"{hook.url}/events"}]},
        }
        with VigilProcess(root / "vigil", config) as vigil:
            vigil.start()
            wait_until(lambda: _sent(vigil), 30, 0.2, "the spike's event, sent to the receiver")
            yield vigil
            assert vigil.alive(), f"vigil died under the fuzzer:\n{vigil.log()[-5000:]}"
            vigil.stop()
        assert "Traceback" not in vigil.log(), f"vigil logged a traceback:\n{vigil.log()[-5000:]}"


def _sent(vigil: VigilProcess) -> bool:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    page = httpx.get(f"{vigil.url}/api/v1/notifications", params={"state": "sent"}, headers=headers, timeout=5)
    return page.status_code == 200 and page.json()["total"] >= 1


def run_schemathesis(directory: Path, location: str, *args: str) -> tuple[str, list[dict[str, Any]]]:
    """Run ``schemathesis run location *args`` with `CHECKS`; its output and the HAR entries of every exchange.

    Fails the test, showing schemathesis's report, when it found anything or could not run.
    One worker: with two, hypothesis's threads parse lambdas' sources at once, and CPython
    3.11's ast module keeps one recursion counter for all threads, so a run
    could die of "AST constructor recursion depth mismatch" before testing anything.
    """
    directory.mkdir(parents=True, exist_ok=True)
    config, har = directory / "schemathesis.toml", directory / "exchanges.har"
    config.write_text(SCHEMATHESIS_TOML)
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color", "run", location,
        "--checks", CHECKS, "--workers", "1", "--seed", str(SEED), "--request-timeout", "10",
        "--output-sanitize", "false", "--report", "har", "--report-har-path", str(har), *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=400, cwd=directory, check=False)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        start = output.find("= FAILURES =")
        report = output[output.rfind("\n", 0, start) + 1 :] if start >= 0 else output[-8000:]
        pytest.fail(f"schemathesis found problems (exit {result.returncode}):\n{report}", pytrace=False)
    return output, json.loads(har.read_text())["log"]["entries"]


def _operation(path: str) -> str:
    if path.startswith("/api/v1/anomalies/") and path.endswith("/feedback"):
        return "/api/v1/anomalies/{event_id}/feedback"
    if path.startswith("/api/v1/mutes/"):
        return "/api/v1/mutes/{mute_id}"
    for prefix, template in (("/api/v1/series/", "/api/v1/series/{series_id}"),
                             ("/api/v1/anomalies/", "/api/v1/anomalies/{event_id}")):
        if path.startswith(prefix):
            return template
    return path


def _openapi(vigil: VigilProcess) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = httpx.get(f"{vigil.url}/openapi.json", headers=headers, timeout=5)
    response.raise_for_status()
    doc: dict[str, Any] = response.json()
    return doc


def test_every_answer_with_the_token_is_documented(vigil: VigilProcess, tmp_path: Path) -> None:
    output, exchanges = run_schemathesis(tmp_path, f"{vigil.url}/openapi.json", "--header", AUTH, "--max-examples", "200")
    answered = Counter((_operation(urlsplit(e["request"]["url"]).path), e["response"]["status"]) for e in exchanges)
    # the run was not vacuous: every operation answered with data at least once, a real series' details too
    for path in _openapi(vigil)["paths"]:
        done = sum(n for (p, status), n in answered.items() if p == path and 200 <= status < 300)
        assert done > 0, f"{path} never answered 2xx in the run: {sorted(answered.items())}"
    assert "Stateful" in output and "Coverage" in output, output[-3000:]


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param((), id="no-token"),
        pytest.param(("--header", "Authorization: Bearer wrong"), id="wrong-token"),
        pytest.param(("--header", f"Authorization: {TOKEN}"), id="token-without-bearer"),
    ],
)
def test_nothing_answers_without_the_token(vigil: VigilProcess, tmp_path: Path, credentials: tuple[str, ...]) -> None:
    doc = tmp_path / "openapi.json"  # read with the token: without it, /openapi.json is refused too
    doc.write_text(json.dumps(_openapi(vigil)))
    examples = "200" if not credentials else "50"
    _, exchanges = run_schemathesis(
        tmp_path / "run", str(doc), "--url", vigil.url, "--phases", "examples,coverage,fuzzing",
        "--max-examples", examples, "--warnings", "off", *credentials,
    )
    served = [
        f"{e['request']['method']} {e['request']['url']} -> {e['response']['status']}"
        for e in exchanges
        if urlsplit(e["request"]["url"]).path not in PROBES and e["response"]["status"] != 401
    ]
    assert not served, f"{len(served)} of {len(exchanges)} requests answered without the token:\n" + "\n".join(
        served[:20]
    )
    refused = [e for e in exchanges if e["response"]["status"] == 401]
    assert len(refused) > 100
    challenges = {h["value"] for e in refused for h in e["response"]["headers"] if h["name"] == "www-authenticate"}
    assert challenges == {"Bearer"}
