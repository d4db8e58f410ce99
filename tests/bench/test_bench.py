"""Smoke tests of the benchmark's own logic: the directories it generates, the floors it computes, its table.

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
    Floor,
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
from tests.bench.quota import Meter, Quota, SourceSpend
from tests.bench.report import Bench, Outcome, can_overlap, table, verdicts, whole_floor


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


def test_a_window_quota_serves_its_limit_at_once_and_the_rest_a_window_later() -> None:
    """1,000 a minute: 1,000 requests need no wait, 1,001 to 2,000 one minute, 2,001 two."""
    okta = Quota(1_000, 60.0)
    assert [okta.floor(n) for n in (0, 1_000, 1_001, 2_000, 2_001)] == [0.0, 0.0, 60.0, 60.0, 120.0]


def test_the_source_floor_is_the_slowest_of_independent_quotas() -> None:
    """Okta's buckets refill apart: the floor is the one the read spent most of, not their total."""
    meter = Meter({"users": Quota(600, 60.0), "group-users": Quota(1_000, 60.0)})
    for _ in range(700):
        meter.spend("users")
    meter.spend("group-users", 2_500)
    meter.refuse()
    assert (60.0, 120.0) == (Quota(600, 60.0).floor(700), meter.floor())
    assert SourceSpend({"users": 700, "group-users": 2_500}, 1, 120.0) == meter.snapshot()
    meter.reset()
    assert (0.0, 0) == (meter.floor(), meter.snapshot().throttled)


def test_floors_overlap_to_their_larger_and_queue_to_their_sum() -> None:
    """Writes during the read cost the larger floor; writes after it, the sum; a full resync's reads always overlap."""
    assert 56.0 == whole_floor(56.0, 40.0, overlap=True)
    assert 96.0 == whole_floor(56.0, 40.0, overlap=False)
    assert can_overlap("initial", True)
    assert not can_overlap("initial", False)
    assert can_overlap("fullresync", False)


def _okta_bench(tmp_path: Path, *outcomes: Outcome) -> Bench:
    bench = Bench(TINY, "okta", tmp_path, 20.0, 0.02, "INFO")
    bench.quotas = {"users": Quota(600, 60.0), "group-users": Quota(1_000, 60.0)}
    bench.outcomes.extend(outcomes)
    return bench


def test_table_measures_the_whole_run_against_both_floors(tmp_path: Path) -> None:
    """A source floor above the target's is the one the wall is divided by, and it names the quota it comes from."""
    result = {"status": "ok", "requests": {"target": 400, "source": 1_200}, "duration_s": 61.5}
    emulator = {"writes": 400, "reads": 0, "throttled": 0}
    spent = SourceSpend({"users": 50, "group-users": 1_150}, 2, 60.0)
    initial = Outcome("initial", 63.0, 0, result, emulator, Floor(400), 100.0, True, spent, overlap=True)
    queued = Outcome("initial", 84.0, 0, result, emulator, Floor(400), 100.0, True, spent, overlap=False)
    row, queued_row = table(_okta_bench(tmp_path, initial, queued)).splitlines()[2:]
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1:3] == ["63.0 s", "61.5 s"]
    assert cells[5:10] == ["400 writes = 20.0 s", "60.0 s (1,150 group-users)", "max 60.0 s", "1.05×", "1.00×"]
    assert cells[10] == "0 / 2"
    assert "| sum 80.0 s | 1.05× |" in queued_row


def test_verdicts_hold_each_scenario_to_the_issue_targets(tmp_path: Path) -> None:
    """1.10× for the initial sync, no 429 on either side, 1.2× for a full resync, 2× + 2 s for a 1% change."""
    ok = {"status": "ok", "requests": {"target": 10, "source": 5}, "duration_s": 1.0}
    clean = {"writes": 400, "reads": 0, "throttled": 0}
    source = SourceSpend({"users": 5}, 0, 0.0)
    bench = _okta_bench(
        tmp_path,
        Outcome("initial", 22.5, 0, ok, clean, Floor(400), 90.0, True, SourceSpend({"users": 5}, 1, 0.0)),
        Outcome("change", 4.1, 0, ok, {"writes": 20, "reads": 0}, Floor(20), 90.0, True, source),
        Outcome("fullresync", 5.9, 0, ok, {"writes": 0, "reads": 100}, Floor(0, 100), 90.0, True, source),
    )
    found = dict(verdicts(bench))
    assert not found["initial: whole run within 1.10× the floor"]  # 22.5 s against 20 s
    assert not found["initial: no 429 from either side"]  # the source refused one
    assert not found["1% change: whole run within 2× the floor + 2 s"]  # 4.1 s against 1 s × 2 + 2
    assert found["full resync: whole run within 1.2× its read floor"]  # 5.9 s against 5 s
    assert found["full resync: no writes, only the reads paging requires"]
