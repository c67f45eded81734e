"""The configuration file (`vigil.yml`): its keys as frozen models, reading and checking it.

`values` holds the value types (durations, names, URLs, listen addresses, secrets),
`detection`, `export`, `sources` and `notify` the keys of each part, `model` the whole `Config`;
`load` reads a file into it with every error named at once, through `safe_yaml`, which
bounds what a hostile file can cost; `example` renders the documented example from the
models' defaults.
"""

from __future__ import annotations

from vigil.config.detection import Detection
from vigil.config.example import example_config
from vigil.config.export import DEFAULT_EXPORT, EXPORTS
from vigil.config.load import load_config
from vigil.config.maintenance import Window
from vigil.config.model import Config, Limits, Mcp, Server
from vigil.config.notify import Notify, Receiver
from vigil.config.sources import BasicAuth, HostSource, PrometheusQuery, PrometheusSource, ReplaySource
from vigil.config.values import Secret, check_listen, parse_duration

__all__ = [
    "DEFAULT_EXPORT", "EXPORTS", "BasicAuth", "Config", "Detection", "HostSource", "Limits", "Mcp", "Notify", "PrometheusQuery", "PrometheusSource",
    "Receiver", "ReplaySource", "Secret", "Server", "Window", "check_listen", "example_config", "load_config", "parse_duration",
]
