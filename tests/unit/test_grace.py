"""Deletes in two steps, as the plan decides them: a pure function of the cache, the source and "now"."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from syncd.changes import Action
from syncd.grace import RETURNED, Grace
from syncd.guard import Limit, check
from syncd.plan import make_plan
from tests.unit.test_plan import converged, group, snap, user


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WEEK = Grace(timedelta(days=7), NOW)


def _gone(days: float) -> datetime:
    return NOW - timedelta(days=days)


def test_a_user_first_seen_gone_is_deactivated_with_the_time_of_the_plan() -> None:
    """The first step deactivates the user, keeps its memberships, and records "now" as when it left."""
    users = [user("1"), user("2")]
    cache = converged(snap(users, [group("g", {"1", "2"})]))
    plan = make_plan(snap(users[:1], [group("g", {"1"})]), cache, grace=WEEK)
    assert [(Action.DEACTIVATE_USER, "2", NOW)] == [(c.action, c.source_id, c.gone_since) for c in plan]
    assert "deleted after 7d (due 2026-12-08 12:00 UTC)" in plan.changes[0].reason


@pytest.mark.parametrize(("days", "actions"), [(6.9, []), (7, [Action.DELETE_USER])])
def test_the_delete_waits_for_the_grace_period(days: float, actions: list[Action]) -> None:
    """Within delete_after nothing happens; once it has passed the user is deleted."""
    users = [user("1"), user("2")]
    cache = converged(snap(users, []))
    cache.users["2"] = replace(cache.users["2"], gone_since=_gone(days))
    assert actions == [c.action for c in make_plan(snap(users[:1], []), cache, grace=WEEK)]


def test_the_delete_after_the_grace_period_is_not_counted_again() -> None:
    """The guard counted the deactivation; the delete that ends the grace period is not refused for it."""
    users = [user(str(i)) for i in range(10)]
    cache = converged(snap(users, []))
    for sid in "0123":
        cache.users[sid] = replace(cache.users[sid], gone_since=_gone(8))
    plan = make_plan(snap(users[4:], []), cache, grace=WEEK)
    assert (4, "") == (len(plan), check(plan, Limit.parse("10%")).refused)


def test_a_name_claimed_by_a_new_user_deletes_at_once() -> None:
    """A user pending deletion whose userName a new source user takes is deleted in this run."""
    cache = converged(snap([user("1", "a@example.com")], []))
    plan = make_plan(snap([user("2", "A@example.com")], []), cache, grace=WEEK)
    assert [Action.CREATE_USER, Action.DELETE_USER] == [c.action for c in plan]


def test_a_returner_is_updated_even_when_its_attributes_are_the_same() -> None:
    """A user back within the grace period is written again (reactivated), which also ends its pending delete."""
    u = user("1")
    cache = converged(snap([u], []))
    cache.users["1"] = replace(cache.users["1"], gone_since=_gone(2), data={**u.payload(), "active": False})
    (change,) = make_plan(snap([u], []), cache, grace=WEEK).changes
    assert (Action.UPDATE_USER, RETURNED) == (change.action, change.reason)


def test_a_group_gone_is_emptied_then_deleted() -> None:
    """A group gone from the source is retired and its members removed; after the grace period it is deleted."""
    users = [user("1")]
    cache = converged(snap(users, [group("g", {"1"})]))
    first = make_plan(snap(users, []), cache, grace=WEEK)
    assert [Action.RETIRE_GROUP, Action.REMOVE_MEMBERS] == [c.action for c in first]
    cache.groups["g"] = replace(cache.groups["g"], gone_since=_gone(7))
    cache.members.pop("g")
    assert [Action.DELETE_GROUP] == [c.action for c in make_plan(snap(users, []), cache, grace=WEEK)]


def test_no_grace_deletes_at_once_and_a_grace_needs_a_time() -> None:
    """delete_after = 0 deletes as before; a grace period without "now" is a programming error."""
    cache = converged(snap([user("1")], []))
    assert [Action.DELETE_USER] == [c.action for c in make_plan(snap([], []), cache)]
    with pytest.raises(ValueError, match="needs the time"):
        Grace(timedelta(days=1))
