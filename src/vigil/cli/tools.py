"""`vigil healthcheck` and `vigil demo-app`: the one-shot host report, and a web app to watch."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from vigil.config import Server

__all__ = ["demo_app", "healthcheck"]


def healthcheck(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    cpu_warning: float = 80.0,
    cpu_critical: float = 95.0,
    memory_warning: float = 85.0,
    memory_critical: float = 95.0,
    disk_warning: float = 85.0,
    disk_critical: float = 95.0,
) -> None:
    """One-shot report of this host: CPU, memory, disk per mount; exit 0 ok, 1 warning, 2 critical."""
    from vigil.tools import healthcheck as hc

    thresholds = hc.Thresholds(
        cpu_warning=cpu_warning, cpu_critical=cpu_critical, memory_warning=memory_warning,
        memory_critical=memory_critical, disk_warning=disk_warning, disk_critical=disk_critical,
    )
    report = hc.check(thresholds)
    if as_json:
        typer.echo(hc.to_json(report))
    else:
        Console().print(hc.render_table(report))
    raise typer.Exit(hc.exit_code(report))


def demo_app(
    listen: Annotated[str, typer.Option(help="host:port to serve on.")] = "127.0.0.1:9100",
    seed: Annotated[int, typer.Option(help="Seed of the simulated traffic.")] = 0,
    day_seconds: Annotated[float, typer.Option(help="Length of the simulated day, in seconds.")] = 86400.0,
) -> None:
    """A small web app with realistic metrics at /metrics and POST /inject to cause an anomaly."""
    from vigil.tools.demo_app import serve as serve_demo

    where = Server(listen=listen)
    typer.echo(f"demo app on http://{where.host}:{where.port} (metrics at /metrics, POST /inject)", err=True)
    serve_demo(host=where.host, port=where.port, seed=seed, day_seconds=day_seconds)
