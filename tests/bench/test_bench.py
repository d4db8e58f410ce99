"""Smoke tests of the benchmark's own logic: the directories it generates and the floors it computes.

No timing here: the benchmark measures, these only check that what it measures against is right.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from syncd.emulator import EmulatorState
from tests.bench.directory import (
    Size,
    describe,
    generate,
    one_percent_change,
    read_floor,
    target_digest,
    target_of,
    write_floor,
)
from tests.bench.emulator import state_summary
from tests.bench.run import Bench, Outcome, table


TINY = Size("tiny", 300, 12, memberships_per_user=3.0, nested_share=0.3)


def _directory(users: dict[str, bool], groups: dict[str, list[str]], nested: dict[str, list[str]] | None = None) -> Any:
    return {
        "users": [
            {
                "id": uid,
                "user_name": f"{uid}@example.com",
                "email": f"{uid}@example.com",
                "given_name": "G",
                "family_name": "F",
                "display_name": "G F",
                "active": active,
            }
            for uid, active in users.items()
        ],
        "groups": [
            {"id": gid, "name": gid, "members": members, "groups": (nested or {}).get(gid, [])}
            for gid, members in groups.items()
        ],
    }


def test_generation_is_deterministic_and_has_the_asked_shape() -> None:
    """Same size, same bytes; every user in a group; the asked memberships; some nesting and suspensions."""
    first, second = generate(TINY), generate(TINY)
    assert json.dumps(first) == json.dumps(second)
    stats = describe(first)
    assert (300, 12, 900) == (stats["users"], stats["groups"], stats["memberships"])
    assert stats["flattened_memberships"] >= stats["memberships"]
    assert stats["nested_groups"] > 0
    assert 300 == len(target_of(first).users)  # every user is in some group, so every user is synced


def test_one_percent_change_changes_what_it_says() -> None:
    """Renames, leavers, joiners and moves, a quarter each; the base directory is left as it was."""
    base = generate(Size("s", 1_000, 40))
    before = json.dumps(base)
    changed, summary = one_percent_change(base)
    assert before == json.dumps(base)
    assert (10, 2, 2, 4, 2) == (summary.total, summary.renamed, summary.left, summary.joined, summary.moved)
    old, new = target_of(base), target_of(changed)
    assert 4 == len(new.users.keys() - old.users.keys())
    assert 4 == sum(1 for uid in old.users if old.users[uid] != new.users[uid])  # 2 renames + 2 leavers


def test_initial_floor_counts_creates_and_batches_beyond_the_inline_hundred() -> None:
    """Users + groups + one PATCH per 100 members past the 100 sent with CreateGroup."""
    users = {f"u{i:03d}": True for i in range(250)}
    ids = list(users)
    directory = _directory(users, {"big": ids, "mid": ids[:101], "small": ids[:100], "empty": []})
    assert 250 + 4 + 2 + 1 == write_floor(None, target_of(directory)).writes


def test_change_floor_shares_a_patch_between_adds_and_removes_and_ignores_deleted_users() -> None:
    """An add and a remove on one group fit one PATCH; a deleted user's memberships cost nothing."""
    before = _directory({"a": True, "b": True, "c": True}, {"g": ["a", "b"], "h": ["c"]})
    after = _directory({"a": True, "c": True, "d": True}, {"g": ["a", "c", "d"], "h": ["d"]})
    # create d, delete b; g: +c +d (b's removal goes with b); h: +d -c in one PATCH.
    assert 4 == write_floor(target_of(before), target_of(after)).writes


def test_nested_groups_are_flattened_for_the_floor() -> None:
    """A group nesting another holds its members too."""
    directory = _directory({"a": True, "b": True}, {"outer": ["a"], "inner": ["b"]}, {"outer": ["inner"]})
    assert frozenset({"a", "b"}) == target_of(directory).members["outer"]


def test_read_floor_is_pages_of_users_groups_and_members() -> None:
    """Users and groups 100 a page, and at least one members page per synced group."""
    users = {f"u{i:03d}": True for i in range(250)}
    ids = list(users)
    directory = _directory(users, {"big": ids, "small": ids[:3], "empty": []})
    assert 3 + 1 + (3 + 1 + 1) == read_floor(target_of(directory)).reads


def test_the_emulator_digest_matches_the_directory_digest() -> None:
    """What the emulator reports equals what the directory says, for the same content."""
    directory = _directory({"a": True, "b": False}, {"g": ["a", "b"], "h": []})
    state = EmulatorState()
    by_source = {}
    for user in directory["users"]:
        made = state.add_user(
            user_name=user["user_name"],
            display_name="G F",
            given_name="G",
            family_name="F",
            external_id=user["id"],
            active=user["active"],
        )
        by_source[user["id"]] = made["id"]
    for group in directory["groups"]:
        made = state.add_group(display_name=group["name"], external_id=group["id"])
        for member in group["members"]:
            state.add_member(made["id"], by_source[member])
    assert target_digest(target_of(directory)) == state_summary(state)["digest"]


def test_table_shows_ratios_and_no_ratio_for_an_empty_floor(tmp_path: Any) -> None:
    """The table's ratio columns divide by the floor; a zero floor shows a dash."""
    from tests.bench.directory import Floor

    bench = Bench(TINY, "file", tmp_path, 20.0, 0.02, "INFO")
    result = {"status": "ok", "requests": {"target": 40, "source": 0}}
    emulator = {"total": 40, "writes": 40, "reads": 0, "throttled": 0}
    bench.outcomes.append(Outcome("initial", 2.2, 0, result, emulator, Floor(40), 100.0, True))
    bench.outcomes.append(Outcome("nochange", 1.5, 0, {"status": "ok"}, {}, Floor(0), 90.0, True))
    rows = table(bench).splitlines()
    assert "| 1.10× | 1.00× |" in rows[2]
    assert "| — | — |" in rows[3]


def test_peak_rss_is_syncds_own_not_the_benchmarks(tmp_path: Path) -> None:
    """A 300 MB parent does not show in the peak the benchmark reads for syncd (wait4's would)."""
    ballast = bytearray(300 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page: resident, not just reserved
    out = tmp_path / "peak"

    process = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.peak", str(out), "--help"],
        stdout=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[2],
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)

    assert 0 == process.returncode
    assert usage.ru_maxrss > 300 * 1024  # the kernel's figure carries the parent's memory
    assert 10 * 1024 < int(out.read_text(encoding="ascii")) < 200 * 1024
    del ballast
