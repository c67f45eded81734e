"""The `notify:` block: receivers, secrets, filters, delivery settings and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.config import Config, Notify, Receiver, Secret, example_config, load_config
from vigil.errors import ConfigError
from vigil.outputs.notify import build_targets
from vigil.service import build_service


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "vigil.yml"
    path.write_text(text)
    return load_config(path)


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text)
    return str(info.value)


HOST = "host: {enabled: true}\n"


def test_defaults() -> None:
    n = Notify()
    assert n.receivers == [] and n.max_attempts == 10 and n.give_up_after == 3600.0
    assert (n.backoff, n.max_backoff, n.keep, n.external_url) == (1.0, 300.0, 7 * 86400.0, None)
    assert n.max_event_age == 3600.0
    r = Receiver(name="x", type="webhook", url="http://x")  # type: ignore[arg-type]
    assert (r.format, r.timeout, r.concurrency, r.min_score) == ("json", 5.0, 2, 0.0)
    assert (r.states, r.queries, r.repost_every, r.labels, r.headers) == (["firing", "resolved"], None, 60.0, {}, {})


def test_a_plain_url_is_a_secret_given_by_value(tmp_path: Path) -> None:
    cfg = load(tmp_path, HOST + "notify:\n  receivers: [{name: hook, type: webhook, url: 'http://hooks.internal/x'}]\n")
    url = cfg.notify.receivers[0].url
    assert isinstance(url, Secret) and url.get() == "http://hooks.internal/x"
    assert "hooks.internal" not in repr(cfg)


def test_urls_and_headers_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "teams-url").write_text("https://example.test/workflows/abc?sig=s3cr3t\n")
    monkeypatch.setenv("AGENT_TOKEN", "Bearer tok")
    cfg = load(tmp_path, HOST + """notify:
  receivers:
    - {name: teams, type: webhook, format: teams, url: {file: teams-url}}
    - {name: agent, type: webhook, url: 'http://127.0.0.1:8765/e', headers: {Authorization: {env: AGENT_TOKEN}}}
    - {name: am, type: alertmanager, url: 'http://127.0.0.1:9093/', labels: {team: ops}}
""")
    teams, agent, am = build_targets(cfg.notify)
    assert teams.url == "https://example.test/workflows/abc?sig=s3cr3t", "file relative to the config, stripped"
    assert agent.headers == {"Authorization": "Bearer tok"}
    assert am.url == "http://127.0.0.1:9093/api/v2/alerts" and am.labels == {"team": "ops"}
    assert "s3cr3t" not in repr(teams) and "tok" not in repr(agent)


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        pytest.param("[{name: a, url: 'http://x'}]", "notify.receivers[0].type is missing", id="type-missing"),
        pytest.param("[{name: a, type: email, url: 'http://x'}]", "notify.receivers[0].type is 'email'",
                     id="type-unknown"),
        pytest.param("[{name: a, type: alertmanager, url: 'http://x', format: teams}]",
                     "format is only for type webhook", id="format-on-alertmanager"),
        pytest.param("[{name: a, type: webhook, url: 'http://x', repost_every: 1m, labels: {a: b}}]",
                     "repost_every is only for type alertmanager; remove it from a receiver of type webhook; "
                     "labels is only for type alertmanager", id="alertmanager-keys-on-webhook"),
        pytest.param("[{name: a, type: webhook, url: 'http://x', format: teams-card}]",
                     "notify.receivers[0].format is 'teams-card'", id="format-unknown"),
        pytest.param("[{name: a, type: webhook, url: 'http://x', timeout: 5}]",
                     "notify.receivers[0].timeout is 5; write a duration", id="timeout-bare-number"),
        pytest.param("[{name: a, type: webhook, url: 'http://x', states: [firing, firing]}]",
                     "states lists a state twice", id="state-twice"),
        pytest.param("[{name: a, type: webhook, url: 'http://x', states: [open]}]",
                     "notify.receivers[0].states[0] is 'open'", id="state-unknown"),
        pytest.param("[{name: a, type: webhook, url: 'http://x', min_score: 2}]",
                     "notify.receivers[0].min_score is 2", id="min-score-above-one"),
        pytest.param("[{name: a, type: alertmanager, url: 'http://x', labels: {bad-name: v}}]",
                     "labels: bad-name are not label names", id="label-name"),
        pytest.param("[{name: a, type: webhook, url: 'http://x', headers: {'Bad Header': {value: v}}}]",
                     "headers: 'Bad Header' are not header names", id="header-name"),
        pytest.param("[{name: a, type: webhook, url: 'http://x', verb: PUT}]",
                     "notify.receivers[0].verb is not a known key", id="unknown-key"),
        pytest.param("[{name: a, type: webhook, url: 'http://x'}, {name: a, type: webhook, url: 'http://y'}]",
                     "notify: receiver names must be unique; a appear more than once", id="duplicate-names"),
        pytest.param("[{name: a, type: webhook, url: 'http://x', queries: [nope]}]",
                     "notify.receivers[0].queries names nope, not a configured query; write some of host",
                     id="unknown-query"),
    ],
)
def test_receiver_errors_name_the_key(tmp_path: Path, block: str, expected: str) -> None:
    assert expected in error(tmp_path, HOST + f"notify:\n  receivers: {block}\n")


def test_delivery_setting_errors(tmp_path: Path) -> None:
    text = error(tmp_path, HOST + "notify: {max_attempts: 0, backoff: 1m, max_backoff: 10s}\n")
    assert "notify.max_attempts is 0" in text
    text = error(tmp_path, HOST + "notify: {backoff: 1m, max_backoff: 10s}\n")
    assert "max_backoff is below backoff" in text


@pytest.mark.parametrize(
    "url",
    ["'ftp://hooks.example/T0/s3cr3tT0k3n'", "'hooks.example/T0/s3cr3tT0k3n'", "12345678901234"],
    ids=["wrong-scheme", "no-scheme", "a-number"],
)
def test_a_bad_receiver_url_is_never_echoed(tmp_path: Path, url: str) -> None:
    text = error(tmp_path, HOST + f"notify:\n  receivers: [{{name: a, type: webhook, url: {url}}}]\n")
    assert "notify.receivers[0].url" in text
    assert "s3cr3tT0k3n" not in text and "12345678901234" not in text


def test_a_plain_header_value_is_refused_without_being_shown(tmp_path: Path) -> None:
    text = error(tmp_path, HOST + "notify:\n  receivers: [{name: a, type: webhook, url: 'http://x', "
                 "headers: {Authorization: 'Bearer hunter2'}}]\n")
    assert "notify.receivers[0].headers.Authorization" in text and "{env: NAME}" in text
    assert "hunter2" not in text


def test_a_secret_that_cannot_be_read_or_is_no_url_fails_at_build(tmp_path: Path) -> None:
    cfg = load(tmp_path, HOST + "notify:\n  receivers: [{name: a, type: webhook, url: {env: HOOK_URL}}]\n")
    with pytest.raises(ConfigError, match=r"notify.receivers\[0\] \(a\): environment variable HOOK_URL is not set"):
        build_targets(cfg.notify)
    (tmp_path / "url").write_text("not-a-url-but-s3cr3t")
    cfg = load(tmp_path, HOST + "notify:\n  receivers: [{name: a, type: webhook, url: {file: url}}]\n")
    with pytest.raises(ConfigError) as info:
        build_targets(cfg.notify)
    assert "notify.receivers[0].url (a)" in str(info.value) and "s3cr3t" not in str(info.value)


def test_build_service_wires_an_outbox_and_a_sender_only_when_receivers_exist(tmp_path: Path) -> None:
    plain = build_service(Config(data_dir=tmp_path / "a"))
    assert plain.outbox is None and plain.sender is None
    cfg = load(tmp_path, f"data_dir: {tmp_path / 'b'}\n" + HOST
               + "notify:\n  receivers: [{name: a, type: webhook, url: 'http://127.0.0.1:9/x'}]\n")
    service = build_service(cfg)
    assert service.outbox is not None and service.sender is not None
    assert list(service.sender.targets) == ["a"]
    assert service.sender.link_base == "http://127.0.0.1:8080"
    service.store.close()
    plain.store.close()


def test_the_documented_notify_example_is_a_valid_config(tmp_path: Path) -> None:
    lines = example_config().splitlines()
    out, live = [], False
    for line in lines:
        if line.startswith(("# prometheus:", "# notify:")):
            live = True
        elif line.startswith("# replay:"):
            live = False
        out.append(line[2:] if live and line.startswith("# ") else line)
    cfg = load(tmp_path, "\n".join(out) + "\n")
    assert [r.name for r in cfg.notify.receivers] == ["alertmanager", "teams", "agent"]
    assert cfg.notify.receivers[1].format == "teams" and cfg.notify.receivers[2].queries == ["api_latency"]


def test_check_config_reads_every_receiver_secret(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vigil.cli import app

    path = tmp_path / "vigil.yml"
    path.write_text(HOST + "notify:\n  receivers: [{name: a, type: webhook, url: {file: missing-url}}]\n")
    result = CliRunner().invoke(app, ["check-config", str(path)])
    assert result.exit_code != 0
    assert "notify.receivers[0] (a): cannot read secret file" in result.output
    (tmp_path / "missing-url").write_text("https://hooks.example.test/abc\n")
    result = CliRunner().invoke(app, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 receivers" in result.output and "hooks.example" not in result.output
