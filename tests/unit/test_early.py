"""What is final during a read, and which changes may go before it ends (syncd.early)."""

from __future__ import annotations

from itertools import pairwise

from syncd.early import complete_groups, early_changes, partial_snapshot, round_due
from syncd.model import SourceGroup, SourceRead, SourceUser
from syncd.normalise import Scope, build_snapshot
from syncd.plan import Action, make_plan
from syncd.state import CachedGroup, CachedUser, CacheState


def user(uid: str, name: str | None = None, manager: str | None = None) -> SourceUser:
    name = name or f"{uid}@example.com"
    return SourceUser(
        id=uid,
        user_name=name,
        email=name,
        given_name="A",
        family_name=uid,
        enterprise={"manager": manager} if manager else {},
    )


def test_a_group_is_complete_only_once_every_group_nested_below_it_is_read() -> None:
    """A group whose nested group (however deep) is not read is not complete; an unknown nested id blocks nothing."""
    read = {
        "top": SourceGroup("top", "top", groups=("mid",)),
        "mid": SourceGroup("mid", "mid", groups=("leaf",)),
        "solo": SourceGroup("solo", "solo", groups=("not-listed",)),
    }
    assert {"solo"} == complete_groups(["top", "mid", "leaf", "solo"], read)
    read["leaf"] = SourceGroup("leaf", "leaf", members=("u1",))
    assert {"top", "mid", "leaf", "solo"} == complete_groups(["top", "mid", "leaf", "solo"], read)


def test_partial_snapshot_holds_complete_groups_and_their_members_only() -> None:
    """With users = members, only members of complete groups are in, and a group with an unread nested group waits."""
    users = [user("u1"), user("u2"), user("u3")]
    listed = [SourceGroup("a", "a"), SourceGroup("b", "b"), SourceGroup("c", "c")]
    read = {"a": SourceGroup("a", "a", members=("u1",)), "b": SourceGroup("b", "b", members=("u2",), groups=("c",))}
    snapshot = partial_snapshot(users, listed, read, Scope(users="members"))
    assert ({"u1"}, {"a"}) == (set(snapshot.users), set(snapshot.groups))
    read["c"] = SourceGroup("c", "c", members=("u3",))
    snapshot = partial_snapshot(users, listed, read, Scope(users="members"))
    assert ({"u1", "u2", "u3"}, {"u2", "u3"}) == (set(snapshot.users), set(snapshot.groups["b"].members))


def test_a_user_whose_manager_is_not_in_yet_waits() -> None:
    """With users = members, a user whose manager is not yet a member of a complete group is left for later."""
    users = [user("u1", manager="boss"), user("boss"), user("u2", manager="u1")]
    listed = [SourceGroup("a", "a"), SourceGroup("b", "b")]
    read = {"a": SourceGroup("a", "a", members=("u1", "u2"))}
    snapshot = partial_snapshot(users, listed, read, Scope(users="members"))
    assert set() == set(snapshot.users), "u1 waits for its manager, and u2 for u1"
    read["b"] = SourceGroup("b", "b", members=("boss",))
    snapshot = partial_snapshot(users, listed, read, Scope(users="members"))
    assert {"u1", "u2", "boss"} == set(snapshot.users)
    assert ("manager", "boss") in snapshot.users["u1"].enterprise


def test_names_two_records_share_are_decided_by_the_whole_read() -> None:
    """A group whose name another listed group shares waits, and a userName two users share goes to the one kept."""
    users = [user("u2", "same@example.com"), user("u1", "Same@example.com"), user("u3")]
    listed = [SourceGroup("g2", "Team"), SourceGroup("g1", "team"), SourceGroup("g3", "other")]
    read = {
        "g2": SourceGroup("g2", "Team", members=("u2",)),
        "g3": SourceGroup("g3", "other", members=("u1", "u2", "u3")),
    }
    snapshot = partial_snapshot(users, listed, read, Scope(users="members"))
    assert {"g3"} == set(snapshot.groups)
    assert {"u1", "u3"} == set(snapshot.users), "u1 keeps the userName (the lower id), as in the final snapshot"


def test_only_creates_adoptions_and_member_adds_go_early() -> None:
    """From a partial plan, creates and member adds go; updates, deactivations, removals (and adds beside them) wait."""
    state = CacheState()
    state.users["old"] = CachedUser("old", "t-old", "old@example.com", "x", {"email": "old@example.com"})
    state.users["u1"] = CachedUser("u1", "t-u1", "renamed@example.com", "x", {"email": "renamed@example.com"})
    state.groups["g"] = CachedGroup("g", "t-g", "g", "x")
    state.groups["k"] = CachedGroup("k", "t-k", "k", "x")
    state.members["g"] = frozenset({"old"})
    state.members["k"] = frozenset({"u1"})
    users = [user("u1"), user("u2")]
    listed = [SourceGroup("g", "g"), SourceGroup("h", "h"), SourceGroup("k", "k")]
    read = {
        "g": SourceGroup("g", "g", members=("u1", "u2")),
        "h": SourceGroup("h", "h", members=("u2",)),
        "k": SourceGroup("k", "k", members=("u2",)),
    }
    snapshot = partial_snapshot(users, listed, read, Scope(users="all"))
    plan = make_plan(snapshot, state)
    assert {Action.UPDATE_USER, Action.DELETE_USER, Action.REMOVE_MEMBERS} <= {c.action for c in plan}
    kept = early_changes(plan.changes, state, snapshot, every_user=True)
    assert [
        (Action.CREATE_USER, "u2"),
        (Action.CREATE_GROUP, "h"),
        (Action.ADD_MEMBERS, "g"),
    ] == [(c.action, c.source_id) for c in kept], "k also loses u1: its add waits to share the PATCH"
    # Not knowing every user, g's missing member may be a user found later, whose removal g's add should join.
    assert Action.ADD_MEMBERS not in {c.action for c in early_changes(plan.changes, state, snapshot)}


def test_a_create_onto_a_name_the_cache_holds_for_another_waits() -> None:
    """A rehire onto a leaver's userName or email, or a group onto a cached group's name, waits for the final pass."""
    state = CacheState()
    state.users["leaver"] = CachedUser("leaver", "t1", "bob@example.com", "x", {"email": "bob@example.com"})
    state.users["other"] = CachedUser("other", "t2", "other", "x", {"email": "Ann@example.com"})
    state.groups["old"] = CachedGroup("old", "t3", "Team", "x")
    users = [user("bob", "BOB@example.com"), user("ann", "ann@example.com"), user("boss2", manager="bob")]
    users.append(user("fine"))
    listed = [SourceGroup("new", "team"), SourceGroup("all", "all")]
    read = {
        "new": SourceGroup("new", "team", members=("bob",)),
        "all": SourceGroup("all", "all", members=("bob", "ann", "boss2", "fine")),
    }
    snapshot = partial_snapshot(users, listed, read, Scope(users="all"))
    kept = early_changes(make_plan(snapshot, state).changes, state, snapshot)
    creates = {(c.action, c.source_id) for c in kept if c.action in (Action.CREATE_USER, Action.CREATE_GROUP)}
    assert {(Action.CREATE_USER, "fine"), (Action.CREATE_GROUP, "all")} == creates, "boss2 waits for its manager bob"


MEMBERS = Scope(users="members")


def test_found_users_make_a_partial_snapshot_whose_records_are_final() -> None:
    """With users = members, the users found so far and the complete groups make a partial snapshot of final records."""
    found = [user("u1"), user("u2")]
    later = [user("u3")]
    groups = [SourceGroup("a", "a", members=("u1", "u2")), SourceGroup("b", "b", members=("u2", "u3"))]
    snapshot = partial_snapshot(found, groups, {"a": groups[0]}, MEMBERS, every=False)
    assert ({"u1", "u2"}, {"a"}) == (set(snapshot.users), set(snapshot.groups))
    final = build_snapshot(SourceRead(users=[*found, *later], groups=groups), MEMBERS)
    assert all(final.users[uid] == u for uid, u in snapshot.users.items())
    assert final.groups["a"] == snapshot.groups["a"]


def test_a_found_user_whose_manager_is_not_found_yet_waits() -> None:
    """A manager named by an id or userName not found yet holds its user (and theirs) back; free text does not."""
    found = [
        user("u1", manager="boss"),
        user("u2", manager="u1"),
        user("u3", manager="Jane Doe"),
        user("u4", manager="u5@example.com"),
    ]
    groups = [SourceGroup("a", "a", members=("u1", "u2", "u3", "u4")), SourceGroup("b", "b", members=("boss", "u5"))]
    snapshot = partial_snapshot(found, groups, {"a": groups[0]}, MEMBERS, every=False)
    assert {"u3"} == set(snapshot.users), "u1 waits for boss, u2 for u1, u4 for the user named u5@example.com"
    found += [user("boss"), user("u5")]
    snapshot = partial_snapshot(found, groups, {"a": groups[0], "b": groups[1]}, MEMBERS, every=False)
    final = build_snapshot(SourceRead(users=found, groups=groups), MEMBERS)
    assert final.users == snapshot.users
    assert ("manager", "u5") in snapshot.users["u4"].enterprise
    assert not snapshot.users["u3"].enterprise, "the free-text manager names no one, now or later"


def test_a_user_identity_center_holds_keeps_a_shared_name_against_a_later_smaller_id() -> None:
    """A user created early keeps its userName when one found later with a smaller id has it: that one is skipped."""
    found = [user("u5", "ann@example.com"), user("u7")]
    groups = [SourceGroup("a", "a", members=("u5", "u7")), SourceGroup("b", "b", members=("u1", "u7"))]
    first = partial_snapshot(found, groups, {"a": groups[0]}, MEMBERS, every=False)
    kept = early_changes(make_plan(first, CacheState()).changes, CacheState(), first)
    assert {("create_user", "u5"), ("create_user", "u7")} <= {(str(c.action), c.source_id) for c in kept}
    held = {"u5", "u7"}  # what the cache holds once those creates landed

    found.append(user("u1", "ANN@example.com"))
    later = partial_snapshot(found, groups, {"a": groups[0], "b": groups[1]}, MEMBERS, every=False, prefer=held)
    assert ({"u5", "u7"}, frozenset({"u7"})) == (set(later.users), later.groups["b"].members)
    final = build_snapshot(SourceRead(users=found, groups=groups), MEMBERS, prefer=held)
    assert final.users == later.users
    assert final.users["u5"] == first.users["u5"]
    assert [("u1", "userName 'ANN@example.com' is already used by user u5")] == [
        (s.id, s.reason) for s in final.skipped
    ]


def test_rounds_are_few_when_groups_complete_one_at_a_time() -> None:
    """10,000 groups read one by one make under 40 rounds, the first ones at once, not 10,000."""
    listed, last, rounds = 10_000, 0, []
    for complete in range(1, listed + 1):
        if round_due(listed, last, complete, users_known=False):
            rounds.append(complete)
            last = complete
    assert [1, 2, 3, 4, 6] == rounds[:5], "the first groups read start their writes at once"
    assert len(rounds) < 40
    assert all(b - a <= listed // 20 for a, b in pairwise(rounds))
    assert listed - rounds[-1] < listed // 20, "the final pass is left under a twentieth of the groups"
    assert round_due(3, 1, 2, users_known=False)  # a small org: a round per group
    assert round_due(10_000, 500, 500, users_known=True)  # every user just became known: their creates go now
