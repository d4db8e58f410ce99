"""`syncd sync` from a fake Okta org (over real HTTP) into the emulator."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.cli import app
from syncd.emulator import RunningEmulator
from tests.conftest import TOKEN
from tests.fakes.okta import FakeOkta
from tests.fakes.serve import serve
from tests.integration.cli import idc_view, runner, sync
from tests.okta.conftest import expected


OKTA_TOKEN = "00T-fake-ssws-token"
BIG = {"users": 100_000, "groups": 100_000, "group-users": 100_000, "token": 1000, "other": 1000}


@pytest.fixture
def okta() -> Iterator[FakeOkta]:
    """A fake Okta org served over HTTP, with buckets large enough for a whole sync."""
    with serve() as served:
        fake = FakeOkta(url=served.url, token=OKTA_TOKEN, limits=BIG)
        served.handler = fake.handler
        yield fake


def write_config(path: Path, okta: FakeOkta, emu: RunningEmulator) -> Path:
    config = path / "syncd.toml"
    config.write_text(
        f"""
[source]
type = "okta"
[source.okta]
url = "{okta.url}"
token = "env:SYNCD_TEST_OKTA_TOKEN"

[target]
scim_url = "{emu.url}"
scim_token = "env:SYNCD_TEST_SCIM_TOKEN"
requests_per_second = 1000

[cache]
url = "sqlite:///{path / "syncd.db"}"
""",
        encoding="utf-8",
    )
    return config


def big_org(fake: FakeOkta) -> list[str]:
    rng = random.Random(11)
    statuses = ["ACTIVE"] * 90 + ["SUSPENDED"] * 5 + ["DEPROVISIONED"] * 3 + ["STAGED"] * 2
    users = [
        fake.add_user(
            f"person{i}@example.com", status=rng.choice(statuses), firstName=f"Given{i}", lastName=f"Family{i}"
        )
        for i in range(2000)
    ]
    for g in range(300):
        group = fake.add_group(f"team-{g:03d}", type="APP_GROUP" if g % 10 == 0 else "OKTA_GROUP")
        size = 450 if g < 5 else 230 if g < 10 else rng.randint(1, 40)
        fake.add_member(group, *rng.sample(users, size))
    return users


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two tokens, as the config's env: references expect them."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    monkeypatch.setenv("SYNCD_TEST_OKTA_TOKEN", OKTA_TOKEN)


@pytest.mark.usefixtures("env")
def test_okta_org_converges_then_incremental_run_patches_once(
    okta: FakeOkta, emulator: RunningEmulator, tmp_path: Path
) -> None:
    """2,000 users, 300 groups and a 429 mid-read converge; one membership change costs one read and one PATCH."""
    users = big_org(okta)
    okta.inject("concurrency", on=40)
    config = write_config(tmp_path, okta, emulator)

    code, out = sync(config)
    assert (0, "ok") == (code, out["status"]), out
    want_users, want_groups = expected(okta, users="members")
    idc_users, idc_groups = idc_view(emulator)
    assert {uid: (name, active) for uid, (name, active) in want_users.items()} == idc_users
    assert {name: members & idc_users.keys() for name, members in want_groups.values()} == idc_groups
    assert any(status == 429 for status in (r.status_code for r in okta.responses))

    group_id = next(gid for gid, g in okta.groups.items() if g.profile["name"] == "team-020")
    newcomer = next(u for u in users if u not in okta.groups[group_id].members and okta.users[u].status == "ACTIVE")
    okta.advance(300)  # five minutes pass between the runs
    okta.add_member(group_id, newcomer)
    okta.requests.clear()
    emulator.stats.reset()
    code, out = sync(config)
    assert (0, "ok") == (code, out["status"]), out
    assert [group_id] == okta.member_listings()
    assert {"PATCH /Groups": 1} == emulator.stats.by_method
    assert 1 == out["changes"]["members_added"]


@pytest.mark.usefixtures("env")
def test_suspended_user_ends_inactive(okta: FakeOkta, emulator: RunningEmulator, tmp_path: Path) -> None:
    """A user suspended in Okta is deactivated in Identity Center on the next run."""
    alice = okta.add_user("alice@example.com", firstName="Alice", lastName="A")
    bob = okta.add_user("bob@example.com", firstName="Bob", lastName="B")
    group = okta.add_group("aws-admins")
    okta.add_member(group, alice, bob)
    config = write_config(tmp_path, okta, emulator)
    assert 0 == sync(config)[0]
    okta.advance(300)
    okta.suspend(bob)
    code, out = sync(config)
    assert (0, 1) == (code, out["changes"]["users_deactivated"])
    assert ("bob@example.com", False) == idc_view(emulator)[0][bob]


def test_bad_okta_token_fails_with_a_clear_message(
    okta: FakeOkta, emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong Okta token exits 4 (authentication) with a message saying the token was refused; nothing written."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    monkeypatch.setenv("SYNCD_TEST_OKTA_TOKEN", "00T-wrong-token")
    okta.add_group("aws-admins")
    code, out = sync(write_config(tmp_path, okta, emulator))
    assert (4, "failed") == (code, out["status"])
    assert "token" in out["errors"][0].lower()
    assert "00T-wrong-token" not in json.dumps(out)
    assert 0 == emulator.stats.writes


def test_a_failed_okta_read_still_reports_the_requests_it_made(
    okta: FakeOkta, emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read failing after retries exits 5 and counts every request it sent, in --json and in the runs table."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    monkeypatch.setenv("SYNCD_TEST_OKTA_TOKEN", OKTA_TOKEN)
    okta.inject(503, on=1, path="/api/v1/groups", times=100)
    config = write_config(tmp_path, okta, emulator)

    code, out = sync(config)

    assert (5, "failed") == (code, out["status"])
    assert out["requests"]["source"] == len(okta.requests) > 1  # the user listing and every retry
    status = runner.invoke(app, ["--log-level", "WARNING", "status", "--config", str(config), "--json"])
    assert len(okta.requests) == json.loads(status.stdout)["runs"][0]["requests"]["source"]


@pytest.mark.usefixtures("env")
def test_check_shows_what_was_read(okta: FakeOkta, emulator: RunningEmulator, tmp_path: Path) -> None:
    """`syncd check --json` reports what was read from Okta, makes one read of Identity Center, writes nothing."""
    alice = okta.add_user("alice@example.com", firstName="Alice", lastName="A")
    staged = okta.add_user("new@example.com", status="STAGED", firstName="New", lastName="Hire")
    group = okta.add_group("aws-admins")
    okta.add_member(group, alice, staged)
    config = write_config(tmp_path, okta, emulator)
    result = runner.invoke(app, ["--log-level", "WARNING", "check", "--config", str(config), "--json"])
    assert 0 == result.exit_code, result.output
    data = json.loads(result.stdout)
    assert ({"aws-admins": 1}, 1) == (data["groups"], data["users"])
    assert [staged] == [s["id"] for s in data["skipped"]]
    assert (1, 0) == (emulator.stats.total, emulator.stats.writes)
    assert not (tmp_path / "syncd.db").exists()


def test_the_daemon_labels_okta_requests_with_their_status(
    okta: FakeOkta, emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`syncd run` counts Okta's requests in syncd_requests_total by HTTP status, never as "unknown"."""
    from tests.daemon.conftest import ThreadDaemon, schedule, wait_for

    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    monkeypatch.setenv("SYNCD_TEST_OKTA_TOKEN", OKTA_TOKEN)
    okta.add_user("alice@example.com")
    okta.inject(500, on=1, path="/api/v1/groups")  # one retried answer, to see a second status
    config = write_config(tmp_path, okta, emulator)
    config.write_text(config.read_text(encoding="utf-8") + schedule(interval="1h"), encoding="utf-8")
    daemon = ThreadDaemon(config).start()
    try:
        registry = daemon.daemon.metrics.registry
        wait_for(lambda: registry.get_sample_value("syncd_runs_total", {"status": "ok"}), what="the first run")
    finally:
        assert 0 == daemon.stop()

    def sample(status: str) -> float | None:
        return registry.get_sample_value("syncd_requests_total", {"system": "source", "status": status})

    assert (sample("200"), sample("500"), sample("unknown")) == (len(okta.requests) - 1, 1, None)
