"""LiveUser: a full resync's view of one Identity Center user, kept as compact text."""

from __future__ import annotations

from syncd.model import User
from syncd.plan import LiveUser


ADA = User(
    "00u1", "ada@example.com", "Ada Lovelace", "Ada", "Lovelace", "ada@example.com", True, (("department", "R&D"),)
)


def test_gives_back_the_attributes_it_was_given() -> None:
    """``data`` decodes to the same dict, unicode and nesting included."""
    data = {"userName": "zoë@example.com", "active": False, "enterprise": {"department": "Ünits"}}

    assert data == LiveUser("t1", None, "zoë@example.com", data).data


def test_holds_exactly_the_payload_it_matches() -> None:
    """holds() is true for the same payload in any key order, false when one value differs."""
    payload = ADA.payload()
    live = LiveUser("t1", "00u1", ADA.user_name, dict(reversed(list(payload.items()))))

    assert live.holds(payload)
    assert not live.holds({**payload, "active": False})
    assert not live.holds({**payload, "enterprise": {"department": "Ops"}})


def test_compares_by_ids_and_attributes() -> None:
    """Two LiveUsers with the same ids and attributes are equal and hash alike; another is not."""
    one = LiveUser("t1", "00u1", "ada@example.com", {"a": 1})

    assert one == LiveUser("t1", "00u1", "ada@example.com", {"a": 1})
    assert hash(one) == hash(LiveUser("t1", "00u1", "ada@example.com", {"a": 1}))
    assert one != LiveUser("t1", "00u1", "ada@example.com", {"a": 2})
