"""The root of the `vigil` command line: one typer app, its error handling, and console helpers.

User errors (`vigil.errors.VigilError`, bad option syntax) end as one ``error: ...`` line
on stderr and exit code 2, never a traceback; that is done once, in `_Group.main`. The
commands themselves live in the modules beside this one and are registered on `app` in
`vigil.cli`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from vigil import __version__
from vigil.errors import VigilError

__all__ = ["EXIT_USAGE", "app", "status", "stdout_console"]

EXIT_USAGE = 2


def _click_exception() -> type[Exception]:
    """typer's ClickException, found through a public class (typer vendors click)."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    return typer.BadParameter


_ClickException = _click_exception()


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    lines = [" ".join(line.split()) for line in message.splitlines() if line.strip()]
    typer.echo("error: " + "\n  ".join(lines), err=True)
    sys.exit(code)


class _Group(TyperGroup):
    """The root command group: turns user errors into one ``error:`` line and exit code 2."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except VigilError as exc:
            _fail(str(exc))
        except _ClickException as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare `vigil`: show the help
                typer.echo(exc.format_message(), err=True)  # type: ignore[attr-defined]
                sys.exit(EXIT_USAGE)
            message = exc.format_message()  # type: ignore[attr-defined]
            ctx = getattr(exc, "ctx", None)
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            _fail(f"{message}{hint}")
        except typer.Abort:
            _fail("aborted", 1)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"vigil {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Vigil: real-time anomaly detection for metrics.

    Vigil watches metrics (from Prometheus or from this host), learns each series'
    normal behaviour online, and reports anomalies as Prometheus metrics, events and
    alerts. `vigil backtest` replays a CSV file through the same detectors.
    """


@contextmanager
def status(console: Console, what: str) -> Iterator[None]:
    if console.is_terminal:
        with console.status(escape(what)):
            yield
    else:
        yield


def stdout_console(width: int = 160) -> Console:
    console = Console(highlight=False)
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(highlight=False, width=width)
    return console
