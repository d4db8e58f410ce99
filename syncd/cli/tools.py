"""``syncd emulator``, ``syncd demo``, ``syncd init`` and ``syncd config example``."""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path
from typing import Annotated

import typer

from syncd.cli.common import error_line, out


def examples_dir() -> Path:
    """The example configs: ``syncd/_examples`` in the wheel, ``deploy/examples`` in a checkout."""
    packaged = Path(str(importlib.resources.files("syncd") / "_examples"))
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "deploy" / "examples"


def _example(source: str) -> Path:
    folder = examples_dir()
    found = folder / f"{source}.toml"
    if not found.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.toml"))) or "none found"
        error_line(f"--source {source}: no example config for it; choose one of: {known}")
        raise typer.Exit(2)
    return found


SourceOption = Annotated[
    str,
    typer.Option(
        "--source",
        "-s",
        metavar="TYPE",
        help="The source to start from: file, okta (or any example in deploy/examples, such as assignments).",
    ),
]


def config_example(source: SourceOption = "file") -> None:
    """Print a commented starting config for a source on stdout."""
    print(_example(source).read_text(encoding="utf-8"), end="")


def init(
    source: SourceOption = "file",
    path: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="Where to write it.")] = Path("syncd.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite a file that is there already.")] = False,
) -> None:
    """Write a commented starting config for a source (and, for the file source, its sample export)."""
    template = _example(source)
    if path.exists() and not force:
        error_line(f"{path} exists already; edit it, choose another --out, or pass --force to overwrite it")
        raise typer.Exit(2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    written = [str(path)]
    sample = template.parent / "directory.json"
    export = path.parent / "directory.json"
    if source == "file" and sample.is_file() and not export.exists():
        export.write_text(sample.read_text(encoding="utf-8"), encoding="utf-8")
        written.append(f"{export} (a sample export to try it with)")
    out().print("Wrote " + " and ".join(written) + ".")
    out().print(f"Next: edit {path}, then `syncd check -c {path}` and `syncd plan -c {path}`.")


def emulator(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    token: Annotated[
        str, typer.Option(help="Bearer token clients must send (env:NAME and file:PATH work).")
    ] = "env:SYNCD_EMULATOR_TOKEN",  # noqa: S107 - names a variable; it is not a token
    requests_per_second: Annotated[
        float | None, typer.Option("--requests-per-second", help="Throttle like Identity Center (20); default off.")
    ] = None,
    latency: Annotated[float, typer.Option(help="Seconds added to each answer.")] = 0.0,
) -> None:
    """Serve a local Identity Center SCIM endpoint, to try a config without AWS."""
    from syncd.emulator import serve
    from syncd.secrets import resolve

    try:
        secret = resolve(token)
    except ValueError as exc:
        error_line(f"--token: {exc}")
        raise typer.Exit(2) from None
    try:
        serve(host=host, port=port, token=secret, requests_per_second=requests_per_second, latency=latency)
    except OSError as exc:
        error_line(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another with --port")
        raise typer.Exit(2) from None


def demo(
    workdir: Annotated[
        Path | None, typer.Option("--dir", help="Where to keep the demo's files (default: a new temporary folder).")
    ] = None,
) -> None:
    """Try syncd with nothing but this package: a local emulator and a sample directory."""
    from syncd import logging as syncd_logging
    from syncd.demo import run_demo

    if logging.getLogger().level < logging.ERROR:
        # The demo tells its own story on stdout (skipped records included); log lines would drown it.
        syncd_logging.configure("ERROR", json=False)
    raise typer.Exit(run_demo(out(), workdir))
