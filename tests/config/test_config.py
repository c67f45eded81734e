"""The config file: defaults, every error at once with where/what/what-is-right, secrets.

Files are written to `tmp_path` and read with `load_config`, as `vigil run --config` does.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest
from pydantic import ValidationError

from vigil.config import (
    DEFAULT_EXPORT,
    EXPORTS,
    Config,
    Detection,
    Secret,
    Server,
    example_config,
    load_config,
    parse_duration,
)
from vigil.detection.settings import DEFAULTS
from vigil.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vigil.yml"
    path.write_text(textwrap.dedent(text))
    return path


def errors_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    return str(info.value)


PROM = """\
prometheus:
  url: http://127.0.0.1:9090
  queries:
    - name: api
      query: up
"""


# -- defaults ------------------------------------------------------------------------------


def test_no_config_file_watches_this_host() -> None:
    config = load_config(None)
    assert config.host_enabled
    assert config.prometheus is None and config.replay == []
    assert config.server.host == "127.0.0.1"
    assert config.server.port == 8080
    assert config.server.token is None


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == Config()


def test_host_is_off_by_default_once_prometheus_is_configured(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, PROM))
    assert not config.host_enabled
    assert config.prometheus is not None
    assert config.prometheus.queries[0].step == 15.0


def test_host_can_be_enabled_next_to_prometheus(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, PROM + "host:\n  enabled: true\n  interval: 2s\n"))
    assert config.host_enabled
    assert config.host.interval == 2.0


def test_export_defaults_to_score_and_anomaly_and_a_query_list_replaces_it(tmp_path: Path) -> None:
    assert load_config(None).exports() == {"host": ("score", "anomaly")}
    config = load_config(write(tmp_path, PROM + textwrap.dedent("""\
            - name: full
              query: up
              export: [bounds, observed, expected, anomaly, score, bounds]
            - name: none
              query: up
              export: []
        host:
          enabled: true
          export: [warming_up]
        replay:
          - name: seed
            path: seed.csv
          - name: seed_band
            path: seed.csv
            export: [observed, expected, bounds]
        export: [anomaly]
        """)))
    assert config.exports() == {
        "host": ("warming_up",),
        "api": ("anomaly",),  # the top-level export
        "full": ("score", "anomaly", "expected", "bounds", "observed"),  # once each, in one order
        "none": (),
        "seed": ("anomaly",),
        "seed_band": ("expected", "bounds", "observed"),
    }
    assert Config().export == ("score", "anomaly") == DEFAULT_EXPORT
    assert set(EXPORTS) == {"score", "anomaly", "expected", "bounds", "observed", "warming_up"}


def test_example_config_parses_and_equals_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, example_config()))
    assert config == Config()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("15s", 15.0, id="seconds"),
        pytest.param("1m", 60.0, id="minutes"),
        pytest.param("1.5h", 5400.0, id="fraction"),
        pytest.param("2d", 172800.0, id="days"),
        pytest.param("1w", 604800.0, id="weeks"),
        pytest.param("250ms", 0.25, id="milliseconds"),
        pytest.param(" 15s ", 15.0, id="spaces"),
    ],
)
def test_durations_are_read_with_their_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


# -- errors, each with where, what and what is right ---------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "snapshot_every: 15\n",
            "snapshot_every is 15; write a duration such as '15s'",
            id="duration-bare-number",
        ),
        pytest.param(
            "limits:\n  evict_after: '15'\n",
            "limits.evict_after is '15'; write a duration such as '15s'",
            id="duration-no-unit",
        ),
        pytest.param(
            f"snapshot_every: {'9' * 400}s\n",
            f"snapshot_every is '{'9' * 400}s'; write a duration such as '15s'",
            id="duration-beyond-a-float",
        ),
        pytest.param(
            f"detection:\n  false_alarms: {'9' * 400}/day\n",
            f"detection.false_alarms is '{'9' * 400}/day'; write a rate such as '1/month'",
            id="rate-beyond-a-float",
        ),
        pytest.param(
            "host:\n  interval: 5 seconds\n",
            "host.interval is '5 seconds'; write a duration such as '15s'",
            id="duration-spelled-out",
        ),
        pytest.param(
            "server:\n  listen: localhost\n",
            "server.listen is 'localhost'; write host:port, such as 127.0.0.1:8080",
            id="listen-without-port",
        ),
        pytest.param(
            "server:\n  listen: '127.0.0.1:http'\n",
            "server.listen is '127.0.0.1:http'; write host:port",
            id="listen-port-not-a-number",
        ),
        pytest.param(
            "server:\n  listen: 127.0.0.1:99999\n",
            "server.listen is '127.0.0.1:99999'; the port 99999 is not one from 1 to 65535; write host:port",
            id="listen-port-over-65535",
        ),
        pytest.param(
            "server:\n  listen: 127.0.0.1:0\n",
            "server.listen is '127.0.0.1:0'; the port 0 is not one from 1 to 65535",
            id="listen-port-zero",
        ),
        pytest.param(
            "server:\n  listen: nosuchhost.invalid:8080\n",
            "server.listen is 'nosuchhost.invalid:8080'; the host nosuchhost.invalid does not resolve to an address; "
            "write an address of this machine, such as 127.0.0.1 or 0.0.0.0",
            id="listen-host-unresolvable",
        ),
        pytest.param(
            "server:\n  lisen: 127.0.0.1:8080\n",
            "server.lisen is not a known key; check its spelling",
            id="unknown-nested-key",
        ),
        pytest.param(
            "snapshot: 1m\n",
            "snapshot is not a known key",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "prometheus:\n  url: 127.0.0.1:9090\n  queries: [{name: a, query: up}]\n",
            "prometheus.url is '127.0.0.1:9090'; write a URL starting with http:// or https://",
            id="url-without-scheme",
        ),
        pytest.param(
            "prometheus:\n  url: ftp://example.org\n  queries: [{name: a, query: up}]\n",
            "prometheus.url is 'ftp://example.org'; write a URL starting with http://",
            id="url-wrong-scheme",
        ),
        pytest.param(
            "prometheus:\n  url: http://prom:notaport\n  queries: [{name: a, query: up}]\n",
            "prometheus.url is 'http://prom:notaport'; the port 'notaport' is not a number from 1 to 65535; "
            "write a URL such as http://127.0.0.1:9090",
            id="url-port-not-a-number",
        ),
        pytest.param(
            "prometheus:\n  url: http://prom:65536\n  queries: [{name: a, query: up}]\n",
            "prometheus.url is 'http://prom:65536'; the port '65536' is not a number from 1 to 65535",
            id="url-port-over-65535",
        ),
        pytest.param(
            "prometheus:\n  url: 'http://:9090'\n  queries: [{name: a, query: up}]\n",
            "prometheus.url is 'http://:9090'; the URL has no host; write http(s)://host[:port][/prefix]",
            id="url-without-host",
        ),
        pytest.param(
            "notify:\n  external_url: https://vigil:pw@vigil.example.org\n",
            "notify.external_url is 'https://vigil:***@vigil.example.org'; the URL holds user:password@, "
            "which every link would show; write it without",
            id="link-url-with-credentials",
        ),
        pytest.param(
            "prometheus:\n  url: http://x:9090\n",
            "prometheus.queries is missing; it is required",
            id="missing-queries",
        ),
        pytest.param(
            "prometheus:\n  url: http://x:9090\n  queries: [{name: a, query: up, step: '15'}]\n",
            "prometheus.queries[0].step is '15'; write a duration such as '15s'",
            id="query-step-no-unit",
        ),
        pytest.param(
            "prometheus:\n  url: http://x:9090\n  queries: [{name: 'my query', query: up}]\n",
            "prometheus.queries[0].name is 'my query'; write a name of letters, digits",
            id="query-name-with-space",
        ),
        pytest.param(
            "detection:\n  detector: magic\n",
            "detection: detector is 'magic'; write one of default, ensemble, ewma, iforest, level, seasonal, shift, spike, volatility, zscore",
            id="unknown-detector",
        ),
        pytest.param(
            "detection:\n  persistence: 6/5\n",
            "detection: persistence is '6/5'; write K/N with 1 <= K <= N <= 62, such as '3/5'",
            id="persistence-k-over-n",
        ),
        pytest.param(
            "detection:\n  persistence: three\n",
            "detection: persistence is 'three'; write K/N",
            id="persistence-not-a-fraction",
        ),
        pytest.param(
            "detection:\n  threshold: 1.5\n",
            "detection.threshold is 1.5; Input should be less than 1",
            id="threshold-over-one",
        ),
        pytest.param(
            "detection:\n  direction: up\n",
            "detection.direction is 'up'; Input should be 'above', 'below' or 'both'",
            id="direction",
        ),
        pytest.param(
            "detection:\n  valid_range: [100, 0]\n",
            "detection: valid_range is [100.0, 0.0]; write [low, high] with low < high",
            id="valid-range-reversed",
        ),
        pytest.param(
            "server:\n  max_request_bytes: 10\n",
            "server.max_request_bytes is 10; Input should be greater than or equal to 1024",
            id="request-cap-too-small",
        ),
        pytest.param(
            PROM + "replay:\n  - name: api\n    path: x.csv\n",
            "query names must be unique; api appear more than once",
            id="duplicate-query-names",
        ),
        pytest.param(
            "host:\n  enabled: true\nreplay:\n  - name: host\n    path: x.csv\n",
            "query names must be unique; host appear more than once",
            id="replay-named-like-the-host",
        ),
        pytest.param(
            PROM + "      detection: {threshold: 2}\n",
            "prometheus.queries[0].detection: threshold is 2; Input should be less than 1",
            id="query-override-bad-value",
        ),
        pytest.param(
            PROM + "      detection: {detector: magic}\n",
            "prometheus.queries[0].detection: detector is 'magic'; write one of",
            id="query-override-unknown-detector",
        ),
        pytest.param(
            PROM + "      detection: {treshold: 0.9}\n",
            "prometheus.queries[0].detection: treshold is not a known key",
            id="query-override-unknown-key",
        ),
        pytest.param(
            "host:\n  detection: {persistence: 6/5}\n",
            "host.detection: persistence is '6/5'; write K/N",
            id="host-override-persistence",
        ),
        pytest.param(
            "export: [score, bands]\n",
            "export is ['score', 'bands']; 'bands' is not a name of exported families; "
            "write a list of some of score, anomaly, expected, bounds, observed, warming_up",
            id="export-unknown-name",
        ),
        pytest.param(
            PROM + "      export: [upper, lower]\n",
            "prometheus.queries[0].export is ['upper', 'lower']; 'upper', 'lower' are not names of exported "
            "families; write a list of some of score, anomaly, expected, bounds, observed, warming_up",
            id="query-export-unknown-names",
        ),
        pytest.param(
            "host:\n  export: score\n",
            "host.export is 'score'; write a list of some of score, anomaly, expected, bounds, observed, "
            "warming_up, such as [score, anomaly]",
            id="host-export-not-a-list",
        ),
        pytest.param(
            "replay:\n  - name: seed\n    path: x.csv\n    export: {score: true}\n",
            "replay[0].export: write a list of some of score, anomaly",
            id="replay-export-a-mapping",
        ),
    ],
)
def test_each_error_names_the_key_the_value_and_what_is_right(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = errors_of(tmp_path, text)
    assert expected in message
    assert str(tmp_path / "vigil.yml") in message


def test_every_field_error_is_listed_at_once(tmp_path: Path) -> None:
    message = errors_of(
        tmp_path,
        """\
        server:
          listen: localhost
          bogus: 1
        snapshot_every: 15
        limits:
          evict_after: '15'
        detection:
          detector: magic
          persistence: 6/5
        prometheus:
          url: ftp://x
          queries:
            - name: a
              query: up
              step: '15'
        """,
    )
    assert "7 errors:" in message
    for part in (
        "server.listen is 'localhost'",
        "server.bogus is not a known key",
        "snapshot_every is 15",
        "limits.evict_after is '15'",
        "detector is 'magic'",
        "persistence is '6/5'",
        "prometheus.url is 'ftp://x'",
        "prometheus.queries[0].step is '15'",
    ):
        assert part in message
    assert len(message.splitlines()) == 8  # the heading, then one line per error


def test_duplicate_names_and_every_bad_override_are_listed_together(tmp_path: Path) -> None:
    message = errors_of(
        tmp_path,
        """\
        prometheus:
          url: http://127.0.0.1:9090
          queries:
            - name: api
              query: up
              detection: {threshold: 2, direction: up}
            - name: api
              query: up
            - name: other
              query: up
              detection: {persistence: 6/5}
        """,
    )
    assert "api appear more than once" in message
    assert "prometheus.queries[0].detection: threshold is 2" in message
    assert "prometheus.queries[0].detection: direction is 'up'" in message
    assert "prometheus.queries[2].detection: persistence is '6/5'" in message
    assert "detection: config:" not in message


def test_a_good_override_changes_only_its_query(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, PROM + "      detection: {direction: above, threshold: 0.99}\n")
    )
    assert config.prometheus is not None
    mine = config.detection_for(config.prometheus.queries[0].detection)
    assert (mine.direction, mine.threshold) == ("above", 0.99)
    assert mine.resolve_after == Detection().resolve_after
    assert config.detection == Detection()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param("server:\n  listen: [1\n", "line 3, column 1", id="unclosed-bracket"),
        pytest.param("a: 1\n\tb: 2\n", "line 2, column 1", id="tab-indent"),
        pytest.param("server:\n  listen: 'x\n", "line 3, column 1", id="unclosed-quote"),
    ],
)
def test_not_yaml_says_where(tmp_path: Path, text: str, where: str) -> None:
    message = errors_of(tmp_path, text)
    assert "not valid YAML" in message
    assert where in message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("- server\n- prometheus\n", id="list"),
        pytest.param("just words\n", id="scalar"),
    ],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    message = errors_of(tmp_path, text)
    assert "the top level must be a mapping of keys" in message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*nope\.yml"):
        load_config(tmp_path / "nope.yml")


# -- secrets -------------------------------------------------------------------------------


def test_secret_from_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TEST_TOKEN", "from-env")
    assert Secret(env="VIGIL_TEST_TOKEN").get() == "from-env"


def test_secret_from_a_file_is_stripped(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    assert Secret(file=tmp_path / "token").get() == "from-file"


def test_secret_from_the_value() -> None:
    assert Secret(value="inline").get() == "inline"


def test_missing_environment_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="environment variable VIGIL_NOT_SET is not set"):
        Secret(env="VIGIL_NOT_SET").get()


def test_missing_secret_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=re.escape(f"cannot read secret file {tmp_path / 'gone'}")
    ):
        Secret(file=tmp_path / "gone").get()


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="none"),
        pytest.param({"env": "A", "value": "b"}, id="env-and-value"),
        pytest.param({"env": "A", "file": "/x"}, id="env-and-file"),
    ],
)
def test_secret_takes_exactly_one_source(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="give exactly one of env, file or value"):
        Secret.model_validate(fields)


def test_secret_repr_never_shows_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = Secret(value="hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "***" in repr(secret)
    config = Config(server=Server(token=secret))
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(config)
    monkeypatch.setenv("VIGIL_TEST_TOKEN", "from-env")
    assert "from-env" not in repr(Secret(env="VIGIL_TEST_TOKEN"))
    assert "VIGIL_TEST_TOKEN" in repr(Secret(env="VIGIL_TEST_TOKEN"))


def test_secrets_in_a_file_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TEST_TOKEN", "t0k")
    (tmp_path / "prom-token").write_text("p4ss\n")
    config = load_config(
        write(
            tmp_path,
            f"""\
            server:
              token: {{env: VIGIL_TEST_TOKEN}}
            prometheus:
              url: https://prom.example:9090
              bearer_token: {{file: {tmp_path / "prom-token"}}}
              queries: [{{name: a, query: up}}]
            """,
        )
    )
    assert config.server.token is not None and config.server.token.get() == "t0k"
    assert config.prometheus is not None and config.prometheus.bearer_token is not None
    assert config.prometheus.bearer_token.get() == "p4ss"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        pytest.param("server:\n  token: hunter2-plain\n", "hunter2-plain", id="plain-string"),
        pytest.param(
            "server:\n  token: {value: 123456789}\n", "123456789", id="value-not-a-string"
        ),
        pytest.param(
            "prometheus:\n  url: http://x:9090\n  bearer_token: tok-abc\n  queries: [{name: a, query: up}]\n",
            "tok-abc",
            id="bearer-plain-string",
        ),
    ],
)
def test_a_badly_written_secret_is_not_echoed_in_the_error(
    tmp_path: Path, text: str, secret: str
) -> None:
    message = errors_of(tmp_path, text)
    assert secret not in message
    assert "token" in message


QUERY = "  queries: [{name: a, query: up}]\n"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        pytest.param("prometheus:\n  url: http://vigil:hunter2@prom:notaport\n" + QUERY, "prometheus.url", id="bad-port"),
        pytest.param("prometheus:\n  url: 'http://vigil:hun@ter2@prom:x'\n" + QUERY, "prometheus.url", id="password-with-at"),
        pytest.param("prometheus:\n  url: htp://vigil:hunter2@prom:9090\n" + QUERY, "prometheus.url", id="bad-scheme"),
        pytest.param("prometheus:\n  url: vigil:hunter2@prom:9090\n" + QUERY, "prometheus.url", id="no-scheme"),
        pytest.param("prometheus: ['http://vigil:hunter2@prom:9090']\n", "prometheus", id="inside-a-list"),
        pytest.param("notify:\n  external_url: http://vigil:hunter2@x:0\n", "notify.external_url", id="link-url"),
        pytest.param(
            "notify:\n  receivers: [{name: r, type: webhook, url: 'http://vigil:hunter2@hook:0/x'}]\n",
            "notify.receivers[0].url",
            id="receiver-url",
        ),
    ],
)
def test_a_password_in_a_url_is_never_shown(tmp_path: Path, text: str, key: str) -> None:
    message = errors_of(tmp_path, text)
    assert "hunter2" not in message and "ter2" not in message
    assert f"{tmp_path / 'vigil.yml'}: {key}" in message
    assert len(message.splitlines()) == 1


def test_basic_auth_password_must_be_a_secret_reference(tmp_path: Path) -> None:
    path = tmp_path / "vigil.yml"
    path.write_text(
        "prometheus: {url: 'http://p:9090', basic_auth: {username: u, password: hunter2},"
        " queries: [{name: q, query: up}]}"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "prometheus.basic_auth.password" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_the_detection_keys_default_to_the_pipelines_settings() -> None:
    """`detection:` adds no defaults of its own: with no key set it is `DEFAULTS`, key for key."""
    assert Detection().settings() == DEFAULTS
    assert Detection().persistence == DEFAULTS.decision.persistence == "1/1"
    changed = Detection(detector="ewma", persistence="2/3", hold=4, calibrate=False).settings()
    assert changed == dataclasses.replace(
        DEFAULTS, detector="ewma", hold=4, calibrate=False, decision=dataclasses.replace(DEFAULTS.decision, k=2, n=3),
    )
