"""The `vigil` command line: parse options, call the library, print the results.

`root` holds the one typer app and its error handling; each command lives in the module
of its group (`backtest`, `bench`, `service`, `tools`; `bench_noise` for `vigil bench
noise`) and is registered here, in the order `vigil --help` lists them.
"""

from __future__ import annotations

from vigil.cli import backtest, bench, bench_noise, service, tools
from vigil.cli.root import app

__all__ = ["app", "main"]

app.command()(backtest.backtest)
bench.bench.command("noise")(bench_noise.noise)
app.add_typer(bench.bench, name="bench")
app.command()(service.run)
app.command("check-config")(service.check_config)
app.command("example-config")(service.example)
app.command()(tools.healthcheck)
app.command("demo-app")(tools.demo_app)
app.command()(service.rules)
app.command()(service.mcp)


def main() -> None:
    """Console entry point (``vigil``)."""
    app(prog_name="vigil")
