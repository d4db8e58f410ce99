"""MemberSet: a sorted tuple that behaves as a frozenset of ids wherever the engine uses one."""

from __future__ import annotations

import sys

import pytest

from syncd.memberset import MemberSet
from syncd.model import Group


def test_holds_each_id_once_in_sorted_order() -> None:
    """Duplicates go; iteration is sorted; len counts distinct ids."""
    members = MemberSet(["u3", "u1", "u2", "u1"])

    assert (["u1", "u2", "u3"], 3) == (list(members), len(members))


@pytest.mark.parametrize("value", ["u1", "u2", "u3"])
def test_finds_every_member(value: str) -> None:
    """``in`` finds each id, first, middle and last."""
    assert value in MemberSet(["u1", "u2", "u3"])


@pytest.mark.parametrize("value", ["u0", "u15", "u4", "", 1, None])
def test_finds_no_stranger(value: object) -> None:
    """``in`` is False for ids between, before and after the members, and for non-strings."""
    assert value not in MemberSet(["u1", "u2", "u3"])


def test_equals_sets_with_the_same_ids_either_way_round() -> None:
    """Equal to a set, a frozenset and another MemberSet of the same ids, and not to others."""
    members = MemberSet(["a", "b"])

    assert members == {"a", "b"}
    assert {"a", "b"} == members
    assert members == frozenset({"b", "a"})
    assert frozenset({"b", "a"}) == members
    assert members == MemberSet(["b", "a"])
    assert members != {"a"}
    assert {"a", "b", "c"} != members
    assert members != MemberSet(["a", "c"])


def test_hashes_like_the_equal_frozenset() -> None:
    """Equal to a frozenset, so the same hash (a Group holding it stays hashable and consistent)."""
    assert hash(frozenset({"a", "b"})) == hash(MemberSet(["b", "a"]))


def test_set_operations_give_the_same_ids_as_frozenset() -> None:
    """&, - and | on either side, with sets, frozensets and key views, match frozenset's answers."""
    left, right = MemberSet(["a", "b", "c", "d"]), {"c", "d", "e"}
    plain = frozenset(left)

    assert plain & right == left & right == right & left
    assert plain - right == left - right
    assert right - plain == right - left
    assert plain | right == left | right == right | left
    assert {"a"} == left & {"a": 1}.keys()


def test_operations_return_membersets() -> None:
    """The result of an operation is compact too, even with a built-in set on the left."""
    members = MemberSet(["a", "b"])

    assert all(isinstance(r, MemberSet) for r in (members & {"a"}, members - {"a"}, {"c"} - members, {"c"} | members))


def test_takes_a_fraction_of_a_frozensets_memory() -> None:
    """Ten thousand ids cost under a third of what the same frozenset costs."""
    ids = [f"00u{i:017d}" for i in range(10_000)]
    members = MemberSet(ids)

    assert sys.getsizeof(members) + sys.getsizeof(members._ids) < sys.getsizeof(frozenset(ids)) / 3


def test_repr_of_a_big_group_stays_short() -> None:
    """A repr shows five ids and a count, not the whole group."""
    shown = "MemberSet(['u000', 'u001', 'u002', 'u003', 'u004', ... 95 more])"

    assert shown == repr(MemberSet(f"u{i:03d}" for i in range(100)))


def test_a_group_keeps_any_set_it_is_given_as_a_memberset() -> None:
    """Group(members=frozenset) stores a MemberSet that still equals the frozenset."""
    group = Group("g1", "Engineering", members=frozenset({"u2", "u1"}))

    assert isinstance(group.members, MemberSet)
    assert frozenset({"u1", "u2"}) == group.members
    assert Group("g1", "Engineering", members={"u1", "u2"}) == group
