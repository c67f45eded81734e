"""The live-service commands of `vigil`: run, check-config, example-config, rules and mcp."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from vigil.config import Config, Secret, Server, check_listen, example_config, load_config
from vigil.errors import ConfigError
from vigil.http.server import after_uvicorn

__all__ = ["check_config", "example", "mcp", "override", "rules", "run"]

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (docs/configuration.md). Without one: watch this host."),
]


def override(
    config_path: Path | None, listen: str | None, data_dir: Path | None, shard: str | None = None,
    hostname: str | None = None,
) -> Config:
    """The config file with the command line on top; the shard from --shard, else VIGIL_SHARD, else the file."""
    from vigil.sharding import parse_shard

    config = load_config(config_path)
    where = "--shard"
    if shard is None and os.environ.get("VIGIL_SHARD"):
        shard, where = os.environ["VIGIL_SHARD"], "VIGIL_SHARD"
    if shard is not None:  # resolved here, so that an error names where it was written
        config = config.model_copy(update={"shard": parse_shard(shard, where, hostname).text})
    if listen is not None:
        try:
            check_listen(listen)
        except ValueError as exc:
            raise ConfigError(f"--listen is {listen!r}; {exc}") from None
        server = Server.model_validate({**config.server.model_dump(exclude_unset=True), "listen": listen})
        config = config.model_copy(update={"server": server})
    if data_dir is not None:
        config = config.model_copy(update={"data_dir": data_dir})
    return config


def run(
    config: ConfigOption = None,
    listen: Annotated[str | None, typer.Option(help="host:port to serve on (overrides server.listen).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Where events and state are kept (overrides data_dir).")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    shard: Annotated[
        str | None,
        typer.Option(
            help="This replica's shard of the series: i/N with 0 <= i < N, or auto/N to take i from the "
            "hostname's ordinal (vigil-2 is 2). Default: $VIGIL_SHARD, else the config's shard.",
        ),
    ] = None,
) -> None:
    """Watch metrics live and serve /metrics, /check_health and the API.

    With no config file it watches this host (CPU, memory, swap, disk, network, load)
    every 5 s and serves on 127.0.0.1:8080. With --shard i/N it takes in only the series
    whose label hash falls in shard i of N (docs/architecture.md, Sharding).
    """
    from vigil.service import build_service, serve

    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per Prometheus request
    logging.getLogger("mcp").setLevel(logging.WARNING)  # not one line per MCP request
    cfg = override(config, listen, data_dir, shard)
    service = build_service(cfg)
    with after_uvicorn():
        asyncio.run(serve(service))


def check_config(
    config: Annotated[Path, typer.Argument(help="YAML config file to check.")],
    online: Annotated[bool, typer.Option(help="Also ask Prometheus to parse every query.")] = False,
) -> None:
    """Validate a config file: keys, values, detectors and their parameters (and queries with --online)."""
    from vigil.engine import build_query_pipeline
    from vigil.service import build_sources

    cfg = load_config(config)
    sources = build_sources(cfg)
    for _, override, where in sources:
        build_query_pipeline(cfg.detection_for(override), where)
    if cfg.notify.receivers:  # every receiver's URL and header secrets can be read
        from vigil.outputs.notify import build_targets

        build_targets(cfg.notify)
    if online:

        async def validate() -> None:
            for source, _, _ in sources:
                await source.validate()
                await source.close()

        asyncio.run(validate())
    names = ", ".join(s.name for s, _, _ in sources)
    receivers = f", {len(cfg.notify.receivers)} receivers" if cfg.notify.receivers else ""
    typer.echo(f"{config}: ok ({len(sources)} queries: {names}{receivers})")


def example() -> None:
    """Print a documented example config with the defaults."""
    typer.echo(example_config(), nl=False)


def rules(
    config: ConfigOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the rule file here instead of printing it.")
    ] = None,
    for_: Annotated[
        str, typer.Option("--for", help="How long an anomaly or out-of-band value must last before its alert fires; 0s: at once.")
    ] = "1m",
    severity: Annotated[str, typer.Option(help="The severity label of every alert.")] = "warning",
    page_url: Annotated[
        str | None,
        typer.Option(help="Vigil's address as readers of the alerts reach it, for links (default: server.listen)."),
    ] = None,
) -> None:
    """Write Prometheus alert rules for the configured queries (see docs/alerting.md)."""
    from vigil.outputs.rules import render_rules, write_rules

    text = render_rules(load_config(config), for_=for_, severity=severity, page_url=page_url)
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_rules(output, text)
        typer.echo(f"wrote {output}; check it with: promtool check rules {output}", err=True)


def mcp(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="The config file of that `vigil run`: its server.listen and server.token."),
    ] = None,
    url: Annotated[
        str | None, typer.Option(help="Vigil's address (default: http://<server.listen>, else http://127.0.0.1:8080).")
    ] = None,
    token_file: Annotated[Path | None, typer.Option(help="A file holding the bearer token (server.token).")] = None,
    token_env: Annotated[
        str | None, typer.Option(help="An environment variable holding the bearer token (server.token).")
    ] = None,
) -> None:
    """Serve MCP over stdio for an agent, answering from a running `vigil run` (docs/mcp.md).

    The agent host starts this command; each tool call goes to that Vigil's /mcp endpoint
    with the token, so the tools and their answers are the live service's own.
    """
    from vigil.http.mcp_stdio import local_url, serve_stdio

    if token_file is not None and token_env is not None:
        raise ConfigError("give --token-file or --token-env, not both")
    cfg = load_config(config) if config is not None else None
    if url is None:
        url = local_url(cfg.server if cfg is not None else Server())
    elif not url.startswith(("http://", "https://")):
        raise ConfigError(f"--url is {url!r}; write Vigil's address, such as http://127.0.0.1:8080")
    secret = (Secret(file=token_file) if token_file is not None else Secret(env=token_env) if token_env is not None
              else cfg.server.token if cfg is not None else None)
    asyncio.run(serve_stdio(url, None if secret is None else secret.get()))
