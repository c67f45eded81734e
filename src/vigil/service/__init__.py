"""The live service: the running parts built from a config, and serving them.

`build` turns a validated config into sources, queries, the engine, the store and the
notifier; `serve` runs them with the HTTP server until SIGTERM or SIGINT.
"""

from __future__ import annotations

from vigil.service.build import Service, build_service, build_sources
from vigil.service.serve import serve

__all__ = ["Service", "build_service", "build_sources", "serve"]
