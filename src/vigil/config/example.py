"""The documented example `vigil.yml`, rendered from the models' defaults so the two cannot drift."""

from __future__ import annotations

from vigil.config.detection import Detection
from vigil.config.export import DEFAULT_EXPORT
from vigil.config.model import Limits, Mcp, Server
from vigil.config.notify import Notify, Receiver
from vigil.config.values import duration_text, rate_text

__all__ = ["example_config"]


def example_config() -> str:
    """The documented example `vigil.yml`, with the defaults taken from the models."""
    d, lim, srv, mcp = Detection(), Limits(), Server(), Mcp()
    n = Notify()
    r = Receiver(name="x", type="webhook", url="http://x")
    return f"""\
# vigil.yml: every key is optional; shown values are the defaults unless marked "example".
server:
  listen: "{srv.listen}"          # host:port; 0.0.0.0 to listen on every interface
  # token: {{env: VIGIL_TOKEN}}     # bearer token required on the API (env, file or value)
  tokens: []                      # example: [{{name: alice, token: {{file: /run/secrets/alice}}}}]; signs her feedback
  max_request_bytes: {srv.max_request_bytes}
  rate_limit: {srv.rate_limit}               # requests per second per client
  allowed_hosts: {srv.allowed_hosts}               # Host names answered besides localhost and listen's host; "*": any
mcp:                              # the MCP server for AI agents at /mcp, behind the token (docs/mcp.md)
  enabled: {str(mcp.enabled).lower()}
  write: {str(mcp.write).lower()}                    # also the tools that change something: give_feedback, mute
data_dir: vigil-data              # events and detector state (SQLite)
# shard: auto/3                   # example: this replica's share of the series, i/N or auto/N
snapshot_every: 1m                # state snapshot interval (also saved at shutdown)
limits:
  max_series_per_query: {lim.max_series_per_query}
  # evict_after: 10m              # forget series absent this long (default: 10 steps of their query)
  history_points: {lim.history_points}            # recent points kept per series for the API
detection:                        # defaults for every query; a query may override keys
  detector: {d.detector}               # default (= ensemble: level, shift, volatility), or one of them, spike, seasonal, ewma, zscore, iforest
  params: {{}}                      # example: {{level: {{window: 500}}, shift: {{recent: 30}}}}
  false_alarms: "{rate_text(d.false_alarms)}"         # per series on normal behaviour, at any sample interval
  calibrate: {str(d.calibrate).lower()}
  calibration: {d.calibration}               # tail (rarity against false_alarms) or record
  threshold: {d.threshold}              # 0.99996: exactly as rare as false_alarms allows
  hold: {d.hold}                        # samples after a detection whose score is held at the threshold
  direction: {d.direction}                 # above, below or both
  min_abs_deviation: {d.min_abs_deviation}
  min_rel_deviation: {d.min_rel_deviation}
  persistence: "{d.persistence}"            # K/N: K of the last N samples hot
  resolve_after: {d.resolve_after}
  cooldown: {d.cooldown}
  # valid_range: [0, 100]         # example: impossible readings are ignored
export: [{", ".join(DEFAULT_EXPORT)}]          # per-series families on /metrics, one series each per input series (docs/alerting.md); a query may set its own
host:                             # this machine, through psutil
  # enabled: true                 # default: on when no other source is configured
  interval: 5s
# prometheus:                     # example
#   url: http://127.0.0.1:9090
#   bearer_token: {{file: /run/secrets/prom-token}}
#   timeout: 10s
#   lookback: 1d                  # history read when a series is first seen
#   queries:
#     - name: api_latency
#       query: histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket[5m])))
#       step: 15s
#       detection: {{direction: above, min_rel_deviation: 0.2}}
#       export: [score, anomaly, observed, expected, bounds]   # its band on /metrics too: 5 series per input series
#     - name: requests
#       query: sum by (route) (http_requests_total)
#       counter: true             # raw counter: turned into a per-second rate, resets handled
# replay:                         # example: a CSV file replayed as a live series
#   - name: seed_cpu
#     path: synthetic_data.csv
#     speed: 60                   # 60x real time
# notify:                         # example: where anomaly events go (docs/alerting.md)
#   max_attempts: {n.max_attempts:<16}# tries per message, then it is dead
#   give_up_after: {duration_text(n.give_up_after):<15}# or when it is this old
#   backoff: {duration_text(n.backoff):<21}# first retry delay; doubles, with full jitter
#   max_backoff: {duration_text(n.max_backoff)}
#   keep: {duration_text(n.keep):<24}# sent and dead messages are kept this long
#   max_event_age: {duration_text(n.max_event_age):<15}# an event over longer ago when found is not sent
#   external_url: https://vigil.example.org   # links in messages (default http://<server.listen>)
#   receivers:
#     - name: alertmanager
#       type: alertmanager
#       url: http://127.0.0.1:9093  # base URL; Vigil posts to /api/v2/alerts
#       repost_every: {duration_text(r.repost_every):<12}# re-post open alerts so they never time out
#       labels: {{severity: warning}}  # added to every alert
#     - name: teams
#       type: webhook
#       format: teams               # json (the event JSON), teams (Adaptive Card), slack
#       url: {{file: /run/secrets/teams-workflow-url}}   # a secret: env, file or value
#       states: [firing, resolved]
#       min_score: {r.min_score}
#     - name: agent
#       type: webhook
#       url: http://127.0.0.1:8765/events
#       headers: {{Authorization: {{env: AGENT_TOKEN}}}}   # each value a secret
#       timeout: {duration_text(r.timeout)}
#       concurrency: {r.concurrency}              # requests in flight to this receiver
#       queries: [api_latency]      # only these queries' events (default: all)
# maintenance:                    # example: windows during which matched series notify nobody (docs/alerting.md)
#   - name: nightly-backup
#     matchers: '{{instance="db-1"}}'   # PromQL selector; the query's name is the label query
#     weekdays: [mon-fri]         # default: every day
#     start: "02:00"              # times of day; an end at or before the start ends the next day
#     end: "03:30"
#     time_zone: Europe/Paris     # IANA name (default UTC)
#   - name: patch-sunday
#     matchers: '{{job="node"}}'
#     cron: "0 4 * * sun"         # five fields: minute hour day-of-month month day-of-week
#     duration: 2h
#     learn: false                # default: the model does not learn the window's samples
"""
