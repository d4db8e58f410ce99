"""The benchmark's Identity Center: the emulator in a process of its own, with its counters on stdin/stdout.

``python -m tests.bench.emulator [--requests-per-second 20] [--latency 0.02] [--max-users N]`` takes the token from
``$SYNCD_BENCH_SCIM_TOKEN``, prints the SCIM URL as its first line, then answers one command per
line on stdin: ``stats`` prints the request counts as one JSON line (``writes`` and ``reads``
leave out the requests answered 429, counted in ``throttled``), ``reset`` zeroes them,
``state`` prints how many users, groups and memberships it holds. It exits at end of input.

The server is the emulator's own (``syncd.emulator.running_emulator``); only the control channel
is added, because ``syncd emulator`` keeps its counters to itself.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from syncd.emulator import EmulatorState, running_emulator
from syncd.emulator.constants import MAX_USERS
from tests.bench.directory import digest


def state_summary(state: EmulatorState) -> dict[str, Any]:
    """What Identity Center holds, as counts and a digest that :func:`tests.bench.directory.digest` matches."""
    users = state.users
    external = {u["id"]: u.get("externalId") for u in users}
    groups = state.groups
    members = {g.get("externalId"): sorted(str(external[m]) for m in state.members(g["id"])) for g in groups}
    return {
        "users": len(users),
        "groups": len(groups),
        "memberships": sum(len(m) for m in members.values()),
        "digest": digest(
            ((str(u.get("externalId")), str(u["userName"]), bool(u["active"])) for u in users),
            ((str(g.get("externalId")), str(g["displayName"])) for g in groups),
            members,
        ),
    }


def main(argv: list[str] | None = None) -> None:
    """Serve until stdin closes."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench.emulator")
    parser.add_argument("--requests-per-second", type=float, default=None)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--max-users", type=int, default=MAX_USERS, help="the identity store's user quota")
    args = parser.parse_args(argv)
    token = os.environ["SYNCD_BENCH_SCIM_TOKEN"]
    state = EmulatorState(max_users=args.max_users)
    with running_emulator(
        token=token, requests_per_second=args.requests_per_second, latency=args.latency, state=state
    ) as emu:
        print(emu.url, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                counts = emu.stats.counts
                answer = {
                    "total": sum(counts.values()),
                    "throttled": sum(n for (_, _, status), n in counts.items() if status == 429),
                    "writes": sum(n for (method, _, status), n in counts.items() if method != "GET" and status != 429),
                    "reads": sum(n for (method, _, status), n in counts.items() if method == "GET" and status != 429),
                    "by_method": emu.stats.by_method,
                }
            elif command == "reset":
                emu.stats.reset()
                answer = {"ok": True}
            elif command == "state":
                answer = state_summary(emu.state)
            else:
                answer = {"error": f"unknown command {command!r}"}
            print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
