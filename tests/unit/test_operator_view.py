"""What an operator reads: metrics, journald priorities, the progress bar and the plan's numbers."""

from __future__ import annotations

import io
import logging
import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import structlog
from prometheus_client import generate_latest
from rich.console import Console

from syncd import logging as syncd_logging
from syncd.changes import Action, MemberChange, UserChange
from syncd.metrics import Metrics
from syncd.model import Group, User
from syncd.plan import ADOPTED, MAX_MEMBER_CHANGES, Plan
from syncd.plan_view import estimate, summarise
from syncd.progress import TerminalProgress


def _user(i: int) -> User:
    return User(
        source_id=f"u{i}",
        user_name=f"user{i}@example.com",
        display_name=f"User {i}",
        given_name="User",
        family_name=str(i),
        email=f"user{i}@example.com",
    )


def _sample(series: str, text: str) -> float:
    line = next(line for line in text.splitlines() if line.startswith(series + " "))
    return float(line.rsplit(" ", 1)[1])


def test_metrics_have_the_default_collectors_and_the_token_expiry_timestamp() -> None:
    """/metrics carries process_* and python_*, the token's expiry in Unix time, and every change kind at 0."""
    text = generate_latest(Metrics(token_expires=date(2027, 6, 30)).registry).decode()
    assert _sample("process_resident_memory_bytes", text) > 0
    assert "python_info{" in text
    expiry = datetime(2027, 6, 30, tzinfo=UTC).timestamp()
    assert expiry == _sample("syncd_scim_token_expiry_timestamp_seconds", text)
    for kind in ("users_created", "users_adopted", "groups_adopted", "members_removed"):
        assert 0 == _sample(f'syncd_changes_total{{kind="{kind}"}}', text)


def _journal_lines(tmp_path: Path, environ_value: str | None, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    log_file = tmp_path / "stderr.log"
    with log_file.open("w", encoding="utf-8") as stream:
        stat = os.fstat(stream.fileno())
        value = f"{stat.st_dev}:{stat.st_ino}" if environ_value is None else environ_value
        monkeypatch.setenv("JOURNAL_STREAM", value)
        syncd_logging.configure("INFO", json=True, stream=stream)
        log = structlog.get_logger("syncd.test")
        log.error("run.failed", error="boom")
        log.warning("record.skipped")
        log.info("run.finished")
        logging.getLogger().handlers[0].flush()
    syncd_logging.configure("WARNING", json=True)
    return log_file.read_text(encoding="utf-8").splitlines()


def test_journald_gets_priority_prefixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With $JOURNAL_STREAM naming stderr, errors start <3>, warnings <4>, info <6> (journalctl -p err finds them)."""
    lines = _journal_lines(tmp_path, None, monkeypatch)
    assert ["<3>", "<4>", "<6>"] == [line[:3] for line in lines]
    assert '"event": "run.failed"' in lines[0]


def test_no_prefixes_when_stderr_is_not_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A $JOURNAL_STREAM naming another stream (inherited by a child) adds no prefix."""
    lines = _journal_lines(tmp_path, "1:2", monkeypatch)
    assert all(line.startswith("{") for line in lines)


def test_estimate_reads_like_the_issue() -> None:
    """The up-front estimate is writes at the pacer's rate, in minutes and seconds."""
    assert "3,110 writes ≈ 2 min 36 s at 20 requests/s" == estimate(3110, 20)
    assert "1 write ≈ 1 s at 20 requests/s" == estimate(1, 20)


def test_progress_shows_the_estimate_and_a_bar_with_an_eta() -> None:
    """On a terminal, the progress says the estimate, then writes done / planned and an ETA at the pacer's rate."""
    plan = Plan(changes=[UserChange(Action.CREATE_USER, _user(i)) for i in range(3000)])
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    with TerminalProgress(console, lambda: 20.0) as progress:
        progress.planned(plan)
        for change in plan.changes[:1000]:
            progress.advance(change, ok=True)
        progress._bar.refresh()
    screen = buffer.getvalue()
    assert "3,000 writes ≈ 2 min 30 s at 20 requests/s" in screen
    assert "1000/3000 writes" in screen
    assert "ETA 1:40" in screen  # 2,000 writes left at 20 per second


def test_summary_counts_member_requests_as_the_engine_sends_them() -> None:
    """Adds fill PATCHes of 100, removes go in the room left: 150 adds + 60 removes is 3 requests."""
    group = Group("g1", "eng")
    adds = [f"a{i}" for i in range(150)]
    changes = [
        MemberChange(Action.ADD_MEMBERS, "g1", tuple(adds[:MAX_MEMBER_CHANGES]), group=group),
        MemberChange(Action.ADD_MEMBERS, "g1", tuple(adds[MAX_MEMBER_CHANGES:]), group=group),
        MemberChange(Action.REMOVE_MEMBERS, "g1", tuple(f"r{i}" for i in range(60)), group=group),
        UserChange(Action.ADOPT_USER, _user(1), "t1", reason=ADOPTED),
        UserChange(Action.ADOPT_USER, _user(2), "t2", reason="already current"),
    ]
    summary = summarise(Plan(changes=changes))
    assert "0 to create, 0 to change, 0 to delete, 1 to adopt; 210 member changes in 3 requests" == str(summary)
