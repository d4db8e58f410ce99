"""Normalisation: from what a source read to what Identity Center accepts."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from pydantic import validate_email
from pydantic_core import PydanticCustomError

from syncd.model import SourceGroup, SourceRead, SourceUser
from syncd.normalise import (
    InvalidRecord,
    Scope,
    _plain_address,
    build_snapshot,
    clean_text,
    normalise_email,
    normalise_user,
)


class TestNormaliseUser:
    def test_fills_names_from_display_name(self) -> None:
        """Missing given and family names are taken from the display name."""
        user = normalise_user(SourceUser("1", user_name="ada", display_name="Ada King Lovelace"))
        assert ("Ada King", "Lovelace") == (user.given_name, user.family_name)

    def test_fills_display_name_from_names(self) -> None:
        """A missing display name is built from given and family names."""
        user = normalise_user(SourceUser("1", user_name="ada", given_name="Ada", family_name="Lovelace"))
        assert "Ada Lovelace" == user.display_name

    def test_fills_everything_from_email(self) -> None:
        """With only an email, userName comes from it and the names from its local part."""
        user = normalise_user(SourceUser("1", email="grace.hopper@example.com"))
        assert ("grace.hopper@example.com", "Grace", "Hopper", "Grace Hopper") == (
            user.user_name,
            user.given_name,
            user.family_name,
            user.display_name,
        )

    def test_single_word_local_part_fills_both_names(self) -> None:
        """An email local part with one word gives both required names, never an empty one."""
        user = normalise_user(SourceUser("1", email="root@example.com"))
        assert ("root", "root") == (user.given_name, user.family_name)

    @pytest.mark.parametrize(
        ("user_name", "reason"),
        [
            ("has space", "whitespace"),
            ("x" * 129, "129 characters"),
            ("tab\tname", "whitespace"),
        ],
    )
    def test_rejects_invalid_user_names(self, user_name: str, reason: str) -> None:
        """A userName Identity Center's pattern rejects raises with a reason that says why."""
        with pytest.raises(InvalidRecord, match=reason):
            normalise_user(SourceUser("1", user_name=user_name, display_name="X Y"))

    def test_strips_zero_width_space(self) -> None:
        """Zero-width spaces, which fail Identity Center's text pattern, are removed from names."""
        assert "Ada" == clean_text("A\u200bda ")

    def test_rejects_bad_email(self) -> None:
        """An email that is not an address makes the record invalid, with the address named."""
        with pytest.raises(InvalidRecord, match="not-an-email"):
            normalise_user(SourceUser("1", user_name="u", email="not-an-email", display_name="A B"))

    def test_email_domain_is_normalised(self) -> None:
        """The email is sent as scim2-models would send it, so it hashes the same every run."""
        user = normalise_user(SourceUser("1", user_name="bob", email="Bob@Example.COM", display_name="Bob B"))
        assert "Bob@example.com" == user.email

    def test_keeps_known_enterprise_attributes_only(self) -> None:
        """Only the enterprise attributes Identity Center supports are kept."""
        user = normalise_user(
            SourceUser("1", user_name="u", display_name="A B", enterprise={"department": "R&D", "shoe_size": "9"})
        )
        assert (("department", "R&D"),) == user.enterprise


class TestBuildSnapshot:
    def test_flattens_nested_groups_with_cycles(self) -> None:
        """Members of nested groups are flattened, and a cycle of nesting terminates."""
        read = SourceRead(
            users=[SourceUser(i, user_name=f"u{i}", display_name="A B") for i in ("1", "2", "3")],
            groups=[
                SourceGroup("a", name="a", members=("1",), groups=("b",)),
                SourceGroup("b", name="b", members=("2",), groups=("c",)),
                SourceGroup("c", name="c", members=("3",), groups=("a",)),
            ],
        )
        snapshot = build_snapshot(read, Scope())
        assert {"1", "2", "3"} == snapshot.groups["a"].members == snapshot.groups["c"].members

    def test_invalid_record_is_skipped_and_counted(self) -> None:
        """A user that cannot be made valid is skipped with its reason; the others stay."""
        read = SourceRead(
            users=[SourceUser("1", user_name="ok", display_name="A B"), SourceUser("2", user_name="not ok")],
            groups=[SourceGroup("g", name="g", members=("1", "2"))],
        )
        snapshot = build_snapshot(read, Scope())
        assert ["1"] == list(snapshot.users)
        assert [("user", "2")] == [(s.kind, s.id) for s in snapshot.skipped]
        assert frozenset({"1"}) == snapshot.groups["g"].members

    def test_scope_filters_groups_and_member_users(self) -> None:
        """Group globs match names case-insensitively; only members of synced groups are kept."""
        read = SourceRead(
            users=[SourceUser(i, user_name=f"u{i}", display_name="A B") for i in ("1", "2")],
            groups=[
                SourceGroup("g1", name="AWS-Admins", members=("1",)),
                SourceGroup("g2", name="sales", members=("2",)),
            ],
        )
        snapshot = build_snapshot(read, Scope(groups=("aws-*",)))
        assert (["g1"], ["1"]) == (list(snapshot.groups), list(snapshot.users))

    def test_group_globs_also_match_a_groups_email(self) -> None:
        """A group whose email matches a glob is synced though its name does not match."""
        read = SourceRead(
            users=[SourceUser("1", user_name="u1", display_name="A B")],
            groups=[
                SourceGroup("g1", name="Readers", email="aws-readers@example.com", members=("1",)),
                SourceGroup("g2", name="Sales", email="sales@example.com", members=("1",)),
            ],
        )
        assert ["g1"] == list(build_snapshot(read, Scope(groups=("aws-*",))).groups)

    def test_users_all_keeps_non_members(self) -> None:
        """With users = "all", users in no synced group are still synced."""
        read = SourceRead(users=[SourceUser("1", user_name="u1", display_name="A B")], groups=[])
        assert ["1"] == list(build_snapshot(read, Scope(users="all")).users)

    def test_nested_group_outside_scope_still_contributes_members(self) -> None:
        """A synced group's members include those of a nested group that is not itself synced."""
        read = SourceRead(
            users=[SourceUser("1", user_name="u1", display_name="A B")],
            groups=[
                SourceGroup("top", name="aws-top", groups=("inner",)),
                SourceGroup("inner", name="inner", members=("1",)),
            ],
        )
        snapshot = build_snapshot(read, Scope(groups=("aws-*",)))
        assert (["top"], frozenset({"1"})) == (list(snapshot.groups), snapshot.groups["top"].members)

    def test_user_names_differing_by_case_collide(self) -> None:
        """Two users whose userNames differ only by case: the second is skipped (Identity Center would 409)."""
        read = SourceRead(
            users=[
                SourceUser("1", user_name="Ann", display_name="A B"),
                SourceUser("2", user_name="ann", display_name="A B"),
            ],
            groups=[],
        )
        snapshot = build_snapshot(read, Scope(users="all"))
        assert (["1"], ["2"]) == (list(snapshot.users), [s.id for s in snapshot.skipped])

    def test_a_preferred_user_wins_a_shared_user_name_or_email(self) -> None:
        """A user in ``prefer`` keeps a userName or email it shares with a smaller id, which is skipped, saying why."""
        read = SourceRead(
            users=[
                SourceUser("1", user_name="ann", email="ann@example.com", display_name="A B"),
                SourceUser("2", user_name="ANN", email="other@example.com", display_name="A B"),
                SourceUser("3", user_name="bob", email="Bob@example.com", display_name="B C"),
                SourceUser("4", user_name="bobby", email="bob@example.com", display_name="B C"),
            ],
            groups=[],
        )
        plain = build_snapshot(read, Scope(users="all"))
        assert (["1", "3"], ["2", "4"]) == (sorted(plain.users), sorted(s.id for s in plain.skipped))
        snapshot = build_snapshot(read, Scope(users="all"), prefer={"2", "4"})
        assert ["2", "4"] == sorted(snapshot.users)
        reasons = {s.id: s.reason for s in snapshot.skipped}
        assert "userName 'ann' is already used by user 2" == reasons["1"]
        assert "email 'Bob@example.com' is already used by user 4" == reasons["3"]

    def test_shared_names_are_decided_as_by_id_order_whatever_the_read_order(self) -> None:
        """Among many users sharing userNames in mixed case, in a shuffled read, the winners and the
        skipped (in order, with their reasons) are those of going through the users by id."""
        rng = random.Random(7)
        users = [
            SourceUser(
                f"{i:03d}", user_name=rng.choice(["ann", "ANN", "Ann", "bob", "Bob", f"u{i}"]), display_name="A B"
            )
            for i in range(120)
        ]
        prefer = {u.id for u in users if rng.random() < 0.2}
        rng.shuffle(users)

        snapshot = build_snapshot(SourceRead(users=users, groups=[]), Scope(users="all"), prefer=prefer)

        owner: dict[str, str] = {}
        expected: list[tuple[str, str]] = []
        for user in sorted(users, key=lambda u: (u.id not in prefer, u.id)):
            folded = (user.user_name or "").casefold()
            if folded in owner:
                expected.append((user.id, f"userName {user.user_name!r} is already used by user {owner[folded]}"))
            else:
                owner[folded] = user.id
        assert expected == [(s.id, s.reason) for s in snapshot.skipped]
        assert sorted(owner.values()) == sorted(snapshot.users)
        assert len(expected) > 50


_LOCALS = (
    "ann",
    "Ann.Lee",
    "a+tag",
    "o'brien",
    "x_y-z",
    "a..b",
    ".a",
    "a.",
    "Postmaster",
    "abuse",
    "a" * 64,
    "a" * 65,
    "a" * 240,
    '"quoted"',
    "a b",
    "",
    "jörg",
)
_DOMAINS = (
    "example.com",
    "Example.COM",
    "corp.local",
    "lab.test",
    "x.internal",
    "example.invalid",
    "localhost",
    "a-b.example.org",
    "-a.example.com",
    "a-.example.com",
    "ex..ample.com",
    "example.com.",
    "example.123",
    "1.2.3.4",
    "[192.0.2.1]",
    "xn--bcher-kva.ch",
    "xn--zz.com",
    "bücher.ch",
    "l" * 63 + ".com",
    "l" * 64 + ".com",
    ".".join(["l" * 60] * 4),
    "",
    "a@b.com",
)


def _by_the_library(email: str) -> str | None:
    try:
        return validate_email(email)[1]
    except PydanticCustomError:
        return None


def test_a_plain_address_is_normalised_exactly_as_the_library_does() -> None:
    """A plain address's shortcut gives pydantic's EmailStr result, and refuses what it refuses, in every case tried."""
    shortcut = 0
    for local in _LOCALS:
        for domain in _DOMAINS:
            email = f"{local}@{domain}"
            expected = _by_the_library(email)
            fast = _plain_address(email)
            assert fast is None or fast == expected, email
            shortcut += fast is not None
            if expected is None:
                with pytest.raises(InvalidRecord):
                    normalise_email(email)
            else:
                assert expected == normalise_email(email), email
    assert shortcut > 50  # most of these took the shortcut: the comparison above is not empty


def test_an_unchanged_address_is_the_very_string() -> None:
    """An address already in normal form is returned as the same object (no copy per user)."""
    email = "".join(["ann.lee", "@", "example.com"])
    assert normalise_email(email) is email


def _read_of(n: int) -> SourceRead:
    users = [SourceUser(f"u{i:05}", user_name=f"user{i}@example.com", display_name=f"User {i}") for i in range(n)]
    users.append(SourceUser("u00001", user_name="again@example.com"))  # a repeated id: the first record wins
    users.append(SourceUser("bad"))  # no userName, no email: skipped
    return SourceRead(users=users, groups=[SourceGroup("g", name="everyone", members=("u00000", "u00001"))])


def test_a_consuming_build_makes_the_same_snapshot_and_empties_the_read() -> None:
    """consume=True gives the snapshot (and skips, in order) a plain build gives, and leaves read.users empty."""
    plain, consumed = _read_of(50), _read_of(50)
    expected = build_snapshot(plain, Scope(users="all"))
    got = build_snapshot(consumed, Scope(users="all"), consume=True)
    assert (got.users, got.groups, got.skipped) == (expected.users, expected.groups, expected.skipped)
    assert consumed.users == []
    assert len(plain.users) == 52


def test_a_consuming_build_lets_each_record_go_as_its_user_is_made() -> None:
    """The final snapshot's peak memory does not hold every source record beside every user."""

    def peak(consume: bool) -> int:
        tracemalloc.start()
        try:
            read = _read_of(20_000)
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            build_snapshot(read, Scope(users="all"), consume=consume)
            return tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()

    # 20k SourceUser objects are about 2 MB; their strings are the users' own either way.
    assert peak(consume=False) - peak(consume=True) > 1_000_000
