"""Managers are matched by folded email: one string per address when it is folded already."""

from __future__ import annotations

from connectors.google_found import managers
from connectors.google_records import fold


def test_an_address_already_folded_is_its_own_string_and_another_is_folded() -> None:
    """A lower-case address comes back as the very string (no copy per user); a mixed-case one casefolded."""
    plain = "".join(["ann.lee", "@example.com"])
    assert fold(plain) is plain
    assert fold("Bob.Stra\u00dfe@Example.com") == "bob.strasse@example.com"


def test_the_manager_map_keys_are_the_users_own_addresses() -> None:
    """managers() maps each folded email to its user, keeping a lower-case address as the record's string."""
    ann = "".join(["ann", "@example.com"])
    users = {"1": [ann, "Ann", "Lee", "Ann Lee", True, None, None, None], "2": ["Bob@Example.com", *[None] * 7]}

    found = managers(users)

    assert found == {"ann@example.com": "1", "bob@example.com": "2"}
    assert next(key for key in found if found[key] == "1") is ann
