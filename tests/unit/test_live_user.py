"""LiveUser: a full resync's view of one Identity Center user, kept as compact text."""

from __future__ import annotations

from dataclasses import replace

import pytest

from syncd.live import LiveUser
from syncd.model import User


ADA = User(
    "00u1", "ada@example.com", "Ada Lovelace", "Ada", "Lovelace", "ada@example.com", True, (("department", "R&D"),)
)


def test_gives_back_the_attributes_it_was_given() -> None:
    """``data`` decodes to the same dict, unicode and nesting included."""
    data = {"userName": "zoë@example.com", "active": False, "enterprise": {"department": "Ünits"}}

    assert data == LiveUser("t1", None, "zoë@example.com", data).data


def test_holds_exactly_the_payload_it_matches() -> None:
    """holds() is true for a user with the same payload in any key order, false when one value differs."""
    payload = ADA.payload()
    live = LiveUser("t1", "00u1", ADA.user_name, dict(reversed(list(payload.items()))))

    assert live.holds(ADA)
    assert not live.holds(replace(ADA, active=False))
    assert not live.holds(replace(ADA, enterprise=(("department", "Ops"),)))


def test_a_user_known_to_match_keeps_only_a_reference() -> None:
    """Made with same=user, it reads back that user's payload and holds that user, and no other."""
    live = LiveUser("t1", ADA.source_id, ADA.user_name, same=ADA)

    assert ADA.payload() == live.data
    assert live.holds(ADA)
    assert live.holds(replace(ADA))  # an equal user, not the same object
    assert not live.holds(replace(ADA, display_name="Ada King"))
    assert LiveUser("t1", ADA.source_id, ADA.user_name, ADA.payload()) == live


def test_needs_attributes_or_a_user_but_not_both() -> None:
    """Giving neither, or both, is a programming error caught at once."""
    with pytest.raises(TypeError):
        LiveUser("t1", None, "x")
    with pytest.raises(TypeError):
        LiveUser("t1", None, "x", {}, same=ADA)


def test_compares_by_ids_and_attributes() -> None:
    """Two LiveUsers with the same ids and attributes are equal and hash alike; another is not."""
    one = LiveUser("t1", "00u1", "ada@example.com", {"a": 1})

    assert one == LiveUser("t1", "00u1", "ada@example.com", {"a": 1})
    assert hash(one) == hash(LiveUser("t1", "00u1", "ada@example.com", {"a": 1}))
    assert one != LiveUser("t1", "00u1", "ada@example.com", {"a": 2})


@pytest.mark.parametrize(
    ("external_id", "user_name", "data"),
    [
        ("00u1", ADA.user_name, ADA.payload()),  # kept as its values alone: the ids are beside them
        (None, "x@x.org", {**replace(ADA, enterprise=()).payload(), "externalId": None, "userName": "x@x.org"}),
        ("00u1", ADA.user_name, {**ADA.payload(), "externalId": "00u2"}),  # an externalId other than the one kept
        ("00u1", ADA.user_name, {**ADA.payload(), "title": "Countess"}),  # a key the payload has not
        ("00u1", ADA.user_name, {"userName": ADA.user_name, "active": True}),  # keys missing
    ],
)
def test_every_payload_reads_back_as_it_was_given_and_compares_as_before(
    external_id: str | None, user_name: str, data: dict[str, object]
) -> None:
    """Whatever form its text takes, a live user gives back the very payload, holds its equal, and equals its twin."""
    live = LiveUser("t1", external_id, user_name, data)

    assert data == live.data
    assert live == LiveUser("t1", external_id, user_name, dict(reversed(list(data.items()))))
    if data == ADA.payload():
        assert live.holds(ADA)
        assert not live.holds(replace(ADA, given_name="Augusta"))
        assert hash(live) == hash(LiveUser("t1", ADA.source_id, ADA.user_name, same=ADA))
