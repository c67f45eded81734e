"""Tools beside the live service: the one-shot host health report, and the demo web app.

`healthcheck` rates this host's CPU, memory and disks against thresholds once; `demo_app`
serves a small web app with realistic metrics and anomalies on demand, for Vigil to watch.
"""

from __future__ import annotations

__all__: list[str] = []
