"""The ``syncd`` command.

Exit codes (:mod:`syncd.errors`): 0 ok, 1 anything else, 2 configuration or usage, 3 refused
(the guard, a stale saved plan, a "no" at the prompt), 4 authentication, 5 Identity Center or
the source unavailable; ``plan --detailed-exitcode`` also exits 2 when there are changes.

Global options (``--log-level``, ``--log-json``/``--log-console``) may come before or after the
subcommand. Nothing heavy is imported until a command runs, so ``syncd --help`` is quick.
"""

from __future__ import annotations

import enum
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from syncd.cli import access, info, runs, tools
from syncd.cli.common import error_line


_GLOBAL_FLAGS = frozenset({"--log-json", "--log-console"})
_GLOBAL_VALUED = frozenset({"--log-level"})


def hoist_global_options(args: list[str]) -> list[str]:
    """Move the global options to the front, wherever they were written (not past ``--``)."""
    hoisted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        if arg in _GLOBAL_FLAGS or ("=" in arg and arg.split("=", 1)[0] in _GLOBAL_VALUED):
            hoisted.append(arg)
        elif arg in _GLOBAL_VALUED and index + 1 < len(args):
            hoisted.extend(args[index : index + 2])
            index += 1
        else:
            rest.append(arg)
        index += 1
    return hoisted + rest


class _Root(TyperGroup):
    """The top-level group: accepts the global options after the subcommand too."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own vendored click.Context
        """Hoist the global options, then parse as usual."""
        return super().parse_args(ctx, hoist_global_options(list(args)))


class LogLevel(enum.StrEnum):
    """The levels ``--log-level`` takes."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


def _log_level(value: str | None) -> LogLevel | None:
    """``--log-level``, any case; an unknown level ends the command with one line naming the choices (exit 2)."""
    if value is None:
        return None
    try:
        return LogLevel(value.upper())
    except ValueError:
        choices = ", ".join(level.value for level in LogLevel)
        error_line(f"--log-level {value}: not a log level; use one of {choices}")
        raise typer.Exit(2) from None


_CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="syncd",
    cls=_Root,
    help="Sync an identity provider into AWS IAM Identity Center, safely and with the fewest API calls.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
)
db_app = typer.Typer(help="The cache database.", no_args_is_help=True, rich_markup_mode=None, context_settings=_CONTEXT)
app.add_typer(db_app, name="db")
config_app = typer.Typer(
    help="Configuration files.", no_args_is_help=True, rich_markup_mode=None, context_settings=_CONTEXT
)
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        print(f"syncd {version('syncd')}")
    except PackageNotFoundError:  # pragma: no cover - a bare checkout
        print("syncd (not installed)")
    raise typer.Exit(0)


@app.callback()
def _main(
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            metavar="<debug|info|warning|error>",
            help="Default: INFO in JSON, WARNING on a terminal.",
            show_default=False,
        ),
    ] = None,
    log_json: Annotated[
        bool | None,
        typer.Option("--log-json/--log-console", help="Log format (default: JSON unless stderr is a terminal)."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True),
    ] = False,
) -> None:
    """Logs go to stderr; results to stdout."""
    from syncd import logging as syncd_logging

    level = _log_level(log_level)
    syncd_logging.configure(level.value if level else None, json=log_json)


app.command()(runs.sync)
app.command()(runs.plan)
app.command()(info.check)
app.command()(info.run)
app.command()(info.status)
app.command()(access.access)
db_app.command("upgrade")(info.db_upgrade)
app.command()(tools.emulator)
app.command()(tools.demo)
app.command()(tools.init)
config_app.command("example")(tools.config_example)


def main() -> None:
    """Console-script entry point."""
    from syncd.allocator import tune
    from syncd.errors import SyncdError
    from syncd.secrets import install_excepthooks

    tune()  # before the run allocates: large blocks freed by one phase go back to the system
    install_excepthooks()
    try:
        app()
    except SyncdError as exc:  # pragma: no cover - commands catch their own
        error_line(str(exc))
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
