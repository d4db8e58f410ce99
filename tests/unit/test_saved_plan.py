"""Saved plans: a plan file written by an earlier syncd still applies, change for change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.assignments.applications import reconcile_applications
from syncd.assignments.config import PermissionSetConfig
from syncd.assignments.permission_sets import Owned, plan_permission_sets
from syncd.assignments.reconcile import reconcile
from syncd.grace import Grace
from syncd.live import LiveGroup, LiveState, LiveUser
from syncd.model import ApplicationAssignment, Assignment, Group, Snapshot, User
from syncd.plan import Plan, make_plan
from syncd.saved_plan import SavedPlan, change_json, write
from syncd.state import CachedGroup, CachedUser, CacheState


SAVED = Path(__file__).parent / "data" / "saved-plan-v1.json"
"""Written by syncd before changes were typed (``python -m tests.unit.test_saved_plan``), never since."""

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PS_ARN = "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-"
APP_ARN = "arn:aws:sso::123456789012:application/ssoins-0123456789abcdef/apl-"
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def _user(sid: str, *, active: bool = True, given: str = "Ann") -> User:
    return User(sid, f"{sid}@example.com", f"{given} {sid}", given, sid, email=f"{sid}@example.com", active=active)


def _cached(u: User) -> CachedUser:
    return CachedUser(u.source_id, f"t-{u.source_id}", u.user_name, u.digest(), u.payload())


def _cached_group(g: Group) -> CachedGroup:
    return CachedGroup(g.source_id, f"tg-{g.source_id}", g.display_name, g.digest())


def every_kind() -> tuple[Plan, Snapshot]:
    """A plan holding every kind of change, and the snapshot it came from (the same in every syncd)."""
    kept, renamed = _user("kept"), _user("renamed")
    snapshot = Snapshot(
        users={
            u.source_id: u for u in (_user("new"), kept, _user("renamed", given="Bob"), _user("leaving", active=False))
        },
        groups={
            "g-new": Group("g-new", "new", members=frozenset({"new", "kept"})),
            "g-ops": Group("g-ops", "ops-renamed", members=frozenset({"kept", "new"})),
        },
    )
    old_ops = Group("g-ops", "ops", members=frozenset({"kept", "renamed"}))
    gone_user, gone_group = _user("gone"), Group("g-gone", "gone")
    cache = CacheState(
        users={u.source_id: _cached(u) for u in (kept, renamed, _user("leaving"), gone_user)},
        groups={g.source_id: _cached_group(g) for g in (old_ops, gone_group)},
        members={"g-ops": {"kept", "renamed"}},
    )
    incremental = make_plan(snapshot, cache)
    graced = make_plan(snapshot, cache, grace=Grace(timedelta(days=7), NOW))
    live = LiveState(
        users=[
            LiveUser("t-new", "new", "new@example.com", dict(_user("new").payload())),
            LiveUser("t-kept", "kept", "kept@example.com", dict(kept.payload())),
        ],
        groups=[LiveGroup("tg-g-new", "g-new", "new")],
        members={"tg-g-new": ["t-new"]},
    )
    resync = make_plan(snapshot, cache, live)
    s3 = PermissionSetConfig.model_validate({"name": "S3", "inline_policy": POLICY})
    taken = PermissionSetConfig.model_validate({"name": "Taken", "adopt": True})
    fresh = PermissionSetConfig.model_validate({"name": "Fresh"})
    old = PermissionSetConfig.model_validate({"name": "Old"})
    sets = plan_permission_sets(
        [s3, taken, fresh],
        {"S3": PS_ARN + "s3", "Taken": PS_ARN + "taken", "Old": PS_ARN + "old"},
        {"S3": old.spec(), "Taken": taken.spec()},
        {"S3": Owned("S3", PS_ARN + "s3"), "Old": Owned("Old", PS_ARN + "old"), "Gone": Owned("Gone", PS_ARN + "gone")},
        {},
    )
    wanted = Assignment("g-new", "111111111111", PS_ARN + "s3", "new", "S3", "prod")
    unwanted = Assignment("g-ops", "111111111111", PS_ARN + "old", "ops", "Old", "prod")
    accounts = reconcile(
        {wanted: "assignments.0"},
        {unwanted: "tg-g-ops"},
        [unwanted],
        {"g-ops": "tg-g-ops"},
        synced_groups=snapshot.groups.keys(),
    )
    app = ApplicationAssignment("g-new", APP_ARN + "a", "new", "Wiki")
    old_app = ApplicationAssignment("g-ops", APP_ARN + "b", "ops", "Old wiki")
    apps = reconcile_applications({app: "applications.0"}, {old_app: "tg-g-ops"}, [old_app], {"g-ops": "tg-g-ops"})
    changes = [*incremental, *graced, *resync, *sets.changes, *accounts, *apps]
    return Plan(changes=changes), snapshot


def test_a_plan_saved_before_changes_were_typed_still_applies() -> None:
    """A saved plan written by the syncd before typed changes is the same plan today: `sync --plan` applies it."""
    plan, snapshot = every_kind()
    assert 24 <= len({c.action for c in plan})  # every action a plan can hold
    saved = SavedPlan.read(SAVED)
    assert saved.check(plan, snapshot) is None
    assert json.loads(SAVED.read_text(encoding="utf-8"))["changes"] == [change_json(c) for c in plan]


if __name__ == "__main__":  # how the saved file was written, once
    plan, snapshot = every_kind()
    write(SAVED, plan, snapshot, mode="incremental", config=None)
