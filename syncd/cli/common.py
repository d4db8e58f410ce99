"""What every command shares: the consoles, the common options, and how errors end a command.

Only typer and the standard library are imported here: ``syncd --help`` must start fast, so the
engine, the SCIM models, SQLAlchemy and Alembic are imported inside the commands that use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer


if TYPE_CHECKING:
    from rich.console import Console

    from syncd.errors import SyncdError


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="The TOML config file (else $SYNCD_CONFIG, ./syncd.toml, $XDG_CONFIG_HOME/syncd/syncd.toml, "
        "/etc/syncd/syncd.toml).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")]

_consoles: dict[str, Any] = {}


def out() -> Console:
    """Results: stdout."""
    return _console("out")


def err() -> Console:
    """Errors, prompts, progress: stderr."""
    return _console("err")


def _console(name: str) -> Console:
    if name not in _consoles:
        from rich.console import Console

        _consoles[name] = Console(stderr=name == "err", soft_wrap=True, highlight=False)
    console: Console = _consoles[name]
    return console


def error_line(message: str) -> None:
    """``error: <message>`` on stderr; the message is never read as rich markup (``[source]`` stays)."""
    from rich.text import Text

    err().print(Text("error: ", style="bold red") + Text(message))


def warn_line(message: str) -> None:
    """``warning: <message>`` on stderr, markup-free."""
    from rich.text import Text

    err().print(Text("warning: ", style="bold yellow") + Text(message))


def fail(exc: SyncdError) -> typer.Exit:
    """Print ``exc`` and return the Exit carrying its code (2 config, 3 refused, 4 auth, 5 unavailable, 1)."""
    error_line(str(exc))
    return typer.Exit(exc.exit_code)
