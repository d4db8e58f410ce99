"""``syncd demo``: the whole loop on one machine, with nothing to set up.

Starts the Identity Center emulator in this process (throttled at 20 requests/s like the real
service), syncs a bundled sample directory (131 users, nested teams, a 130-member group, a
cycle of nested groups, a suspended user and one record Identity Center would reject), then
changes the sample (a leaver, a joiner, a rename) and shows that the next run does only that,
and that the run after it writes nothing (one read proves the token still works).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.text import Text

from syncd.config import Settings
from syncd.emulator import running_emulator
from syncd.engine import RunOptions
from syncd.plan_view import render
from syncd.report import summary
from syncd.results import RunResult
from syncd.wiring import build_engine, open_cache


LEAVER = "00u0042"
RENAMED = "00u0007"


def sample_directory() -> dict[str, Any]:
    """The bundled sample directory export."""
    text = resources.files("syncd.demo_data").joinpath("directory.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def change_sample(data: dict[str, Any]) -> tuple[str, str, str]:
    """A leaver, a joiner and a rename; returns their userNames (leaver, joiner, new name)."""
    leaver = next(u for u in data["users"] if u["id"] == LEAVER)
    data["users"].remove(leaver)
    for group in data["groups"]:
        if LEAVER in group["members"]:
            group["members"].remove(LEAVER)
    joiner: dict[str, Any] = {
        "id": "00u5000",
        "user_name": "new.joiner@example.com",
        "email": "new.joiner@example.com",
        "given_name": "New",
        "family_name": "Joiner",
        "active": True,
    }
    data["users"].append(joiner)
    next(g for g in data["groups"] if g["id"] == "00g-backend")["members"].append(joiner["id"])
    renamed = next(u for u in data["users"] if u["id"] == RENAMED)
    new_name = "dennis.lamport@example.com"
    renamed["user_name"] = renamed["email"] = new_name
    return str(leaver["user_name"]), str(joiner["user_name"]), new_name


def run_demo(console: Console, workdir: Path | None = None) -> int:
    """Run the demo; 0 when every step did what it should."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    export = workdir / "directory.json"
    data = sample_directory()
    export.write_text(json.dumps(data, indent=1), encoding="utf-8")
    token = secrets.token_urlsafe(24)
    ok = True

    with running_emulator(token=token, requests_per_second=20) as emu:
        settings = Settings(
            source={"type": "file", "file": {"path": str(export)}},
            target={"scim_url": emu.url, "scim_token": token, "requests_per_second": 20},
            cache={"url": f"sqlite:///{workdir / 'syncd.db'}"},
        )
        cache = open_cache(settings)

        def run(options: RunOptions) -> RunResult:
            async def go() -> RunResult:
                async with build_engine(settings, cache) as engine:
                    return await engine.run(options)

            emu.stats.reset()
            return asyncio.run(go())

        try:
            console.print(Rule("syncd demo"))
            console.print(
                f"Identity Center emulator at [bold]{emu.url}[/] (20 requests/s, like AWS).\n"
                f"Source: the sample export [bold]{export}[/]; cache: {workdir / 'syncd.db'}\n"
            )

            console.print(Rule("1. What the first sync will do (syncd plan)"))
            first_plan = run(RunOptions(dry_run=True))
            for line in render(first_plan.plan, limit=15):
                console.print(line)
            for skip in first_plan.skipped:
                console.print(Text(f"skipped {skip.kind} {skip.id}: ", style="yellow") + Text(skip.reason))

            console.print(Rule("2. The first sync (syncd sync)"))
            first = run(RunOptions())
            console.print(summary(first))
            renamed_id = next(u["id"] for u in emu.state.users if u.get("externalId") == RENAMED)
            big = next(g for g in emu.state.groups if g["displayName"] == "all-staff")
            console.print(
                f"Identity Center now holds {len(emu.state.users)} users and {len(emu.state.groups)} groups; "
                f"all-staff has {len(emu.state.members(big['id']))} members"
                " (one create with 100, one PATCH with the rest)."
            )
            ok &= first.status == "ok"

            console.print(Rule("3. The directory changes: a leaver, a joiner, a rename"))
            leaver, joiner, new_name = change_sample(data)
            export.write_text(json.dumps(data, indent=1), encoding="utf-8")
            console.print(f"leaver: {leaver}\njoiner: {joiner}\nrenamed to: {new_name}\n")
            second = run(RunOptions())
            for line in render(second.plan):
                console.print(line)
            console.print(summary(second))
            kept = next((u for u in emu.state.users if u["id"] == renamed_id), None)
            same_id = kept is not None and kept["userName"] == new_name
            console.print(
                f"The renamed user kept its Identity Center id {renamed_id}: "
                + ("[green]yes[/]" if same_id else "[red]no[/]")
                + f"; writes this run: {emu.stats.writes}."
            )
            ok &= second.status == "ok" and same_id

            console.print(Rule("4. Nothing changed: the next run makes no writes"))
            third = run(RunOptions())
            console.print(
                f"status {third.status}, writes to Identity Center: {emu.stats.writes}, requests: {emu.stats.total}"
                " (one read, proving the token still works)"
            )
            ok &= third.status == "ok" and emu.stats.writes == 0 and emu.stats.total <= 1
        finally:
            cache.close()

    console.print(Rule())
    console.print(
        ("[green]Demo finished.[/]" if ok else "[red]The demo did not go as expected; see the log above.[/]")
        + f" Its files (the sample export and the cache) are in {workdir}."
        " Next: write a syncd.toml (see the README), then run `syncd check` and `syncd plan`."
    )
    return 0 if ok else 1
