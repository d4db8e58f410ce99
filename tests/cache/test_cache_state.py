"""Users, groups and memberships: what put/forget write and what load() reads back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.cache import Cache
from syncd.cache.database import create_cache_engine
from syncd.cache.tables import groups, memberships, users
from syncd.errors import CacheError
from syncd.state import AuditEntry, CachedGroup, CachedUser, CacheState


ALICE = CachedUser(
    source_id="00u1",
    target_id="t-alice",
    user_name="alice@example.com",
    digest="d-alice",
    data={"userName": "alice@example.com", "name": {"givenName": "Alice", "familyName": "Ørsted"}, "active": True},
)
BOB = CachedUser("00u2", "t-bob", "bob@example.com", "d-bob", {"userName": "bob@example.com"}, origin="adopted")
CAROL = CachedUser("00u3", "t-carol", "carol@example.com", "d-carol")
ENG = CachedGroup("00g1", "tg-eng", "Engineering", "d-eng")
OPS = CachedGroup("00g2", "tg-ops", "Ops & SRE", "d-ops", origin="adopted")


def _fill(cache: Cache) -> None:
    for user in (ALICE, BOB, CAROL):
        cache.put_user(user)
    for group in (ENG, OPS):
        cache.put_group(group)
    cache.add_memberships(ENG.source_id, [ALICE.source_id, BOB.source_id])
    cache.add_memberships(OPS.source_id, [BOB.source_id, CAROL.source_id])


def _insert(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """One executemany INSERT: test data in bulk, without a transaction per row."""
    connection.execute(table.insert(), rows)


def _put_users_in_bulk(cache: Cache, ids: list[str]) -> None:
    """Insert bare users straight into the table (put_user is one transaction per user)."""
    now = datetime.now(UTC)
    rows = [
        {"source_id": i, "target_id": f"t-{i}", "user_name": i, "digest": "d", "data": {}, "origin": "created"}
        for i in ids
    ]
    with cache.engine.begin() as connection:
        _insert(connection, users, [{**row, "updated_at": now} for row in rows])


def _statements(cache: Cache) -> list[str]:
    seen: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(cache.engine, "before_cursor_execute", before)
    return seen


def test_an_empty_cache_loads_empty(cache: Cache) -> None:
    """A fresh cache loads as an empty CacheState."""
    assert CacheState() == cache.load()


def test_users_round_trip(cache: Cache) -> None:
    """Every field of a user, its JSON payload and origin included, reads back as written."""
    cache.put_user(ALICE)
    cache.put_user(BOB)

    loaded = cache.load().users

    assert {ALICE.source_id: ALICE, BOB.source_id: BOB} == loaded
    assert ALICE.data == loaded[ALICE.source_id].data  # data is compare=False on CachedUser
    assert "adopted" == loaded[BOB.source_id].origin


def test_groups_round_trip(cache: Cache) -> None:
    """Every field of a group reads back as written."""
    cache.put_group(ENG)
    cache.put_group(OPS)

    assert {ENG.source_id: ENG, OPS.source_id: OPS} == cache.load().groups


def test_memberships_round_trip(cache: Cache) -> None:
    """Memberships read back as (group source id, user source id) pairs."""
    _fill(cache)

    assert {("00g1", "00u1"), ("00g1", "00u2"), ("00g2", "00u2"), ("00g2", "00u3")} == cache.load().memberships


def test_put_user_replaces_by_source_id(cache: Cache) -> None:
    """A second put_user with the same source id replaces the row instead of adding one."""
    cache.put_user(ALICE)
    changed = CachedUser(ALICE.source_id, "t-alice-2", "alice@example.org", "d2", {"v": 2}, origin="adopted")

    cache.put_user(changed)

    loaded = cache.load().users
    assert [ALICE.source_id] == list(loaded)
    stored = loaded[ALICE.source_id]
    assert (changed, {"v": 2}) == (stored, stored.data)


def test_put_group_replaces_by_source_id(cache: Cache) -> None:
    """A second put_group with the same source id replaces the row."""
    cache.put_group(ENG)
    renamed = CachedGroup(ENG.source_id, ENG.target_id, "Engineering (all)", "d2")

    cache.put_group(renamed)

    assert {ENG.source_id: renamed} == cache.load().groups


def test_put_keeps_updated_at_aware_utc(cache: Cache) -> None:
    """updated_at is stored as the write time and reads back timezone-aware UTC."""
    before = datetime.now(UTC)
    cache.put_user(ALICE)
    after = datetime.now(UTC)

    with cache.engine.connect() as connection:
        updated_at = connection.execute(sa.select(users.c.updated_at)).scalar_one()

    assert UTC == updated_at.tzinfo
    assert before <= updated_at <= after


def test_a_clashing_target_id_is_refused(cache: Cache) -> None:
    """Two users cannot share a target id: CacheError, and the cache is unchanged."""
    cache.put_user(ALICE)
    impostor = CachedUser("00u9", ALICE.target_id, "eve@example.com", "d-eve")

    with pytest.raises(CacheError, match="put_user"):
        cache.put_user(impostor)

    assert {ALICE.source_id: ALICE} == cache.load().users


def test_an_unknown_origin_is_refused(cache: Cache) -> None:
    """An origin other than "created" or "adopted" is refused before anything is written."""
    odd = CachedUser("00u9", "t-odd", "odd@example.com", "d", origin="imported")  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="origin"):
        cache.put_user(odd)

    assert {} == cache.load().users


def test_forget_user_drops_its_memberships(cache: Cache) -> None:
    """forget_user removes the user and every membership it had, and nothing else."""
    _fill(cache)

    cache.forget_user(BOB.source_id)

    state = cache.load()
    assert {ALICE.source_id, CAROL.source_id} == set(state.users)
    assert {("00g1", "00u1"), ("00g2", "00u3")} == state.memberships


def test_forget_group_drops_its_memberships(cache: Cache) -> None:
    """forget_group removes the group and its memberships, and nothing else."""
    _fill(cache)

    cache.forget_group(ENG.source_id)

    state = cache.load()
    assert {OPS.source_id} == set(state.groups)
    assert {("00g2", "00u2"), ("00g2", "00u3")} == state.memberships
    assert 3 == len(state.users)


def test_forgetting_the_unknown_is_a_no_op(cache: Cache) -> None:
    """Forgetting a user or group the cache does not hold changes nothing and does not fail."""
    _fill(cache)
    before = cache.load()

    cache.forget_user("nobody")
    cache.forget_group("nothing")

    assert before == cache.load()


def test_forget_works_without_foreign_key_enforcement(cache: Cache, db_url: str) -> None:
    """Memberships go away even where the database would not cascade (no enforced foreign keys)."""
    _fill(cache)
    engine = create_cache_engine(db_url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA foreign_keys = OFF"))
    else:
        with engine.begin() as connection:
            for fk in ("fk_memberships_user_source_id_users", "fk_memberships_group_source_id_groups"):
                connection.exec_driver_sql(f"ALTER TABLE memberships DROP CONSTRAINT {fk}")
    with Cache(engine) as unenforced:
        if engine.dialect.name == "sqlite":
            with engine.connect() as connection:
                assert 0 == connection.exec_driver_sql("PRAGMA foreign_keys").scalar()

        unenforced.forget_user(ALICE.source_id)
        unenforced.forget_group(OPS.source_id)

    assert {("00g1", "00u2")} == cache.load().memberships


def test_add_memberships_is_idempotent(cache: Cache) -> None:
    """Adding pairs already held, or the same id twice in one call, keeps one pair each."""
    _fill(cache)

    cache.add_memberships(ENG.source_id, [ALICE.source_id, ALICE.source_id, CAROL.source_id])
    cache.add_memberships(ENG.source_id, [ALICE.source_id])

    assert {("00g1", "00u1"), ("00g1", "00u2"), ("00g1", "00u3")} == {
        pair for pair in cache.load().memberships if pair[0] == ENG.source_id
    }


def test_add_memberships_with_no_users_changes_nothing(cache: Cache) -> None:
    """An empty list of users adds nothing and does not fail."""
    _fill(cache)
    before = cache.load().memberships

    cache.add_memberships(ENG.source_id, [])

    assert before == cache.load().memberships


def test_a_membership_of_an_unknown_user_is_refused(cache: Cache) -> None:
    """add_memberships naming a user the cache lacks raises CacheError and adds none of the pairs."""
    _fill(cache)
    before = cache.load().memberships

    with pytest.raises(CacheError, match="add_memberships"):
        cache.add_memberships(ENG.source_id, [CAROL.source_id, "ghost"])

    assert before == cache.load().memberships


def test_a_single_string_is_not_taken_for_a_list_of_ids(cache: Cache) -> None:
    """Passing one id as a plain string raises TypeError instead of adding one pair per character."""
    _fill(cache)

    with pytest.raises(TypeError, match="iterable of source ids"):
        cache.add_memberships(ENG.source_id, CAROL.source_id)


def test_add_memberships_of_a_thousand_users_is_one_statement(cache: Cache) -> None:
    """1,000 users go in with one INSERT (executemany), not one statement each."""
    cache.put_group(ENG)
    ids = [f"u{i:04d}" for i in range(1000)]
    _put_users_in_bulk(cache, ids)
    statements = _statements(cache)

    cache.add_memberships(ENG.source_id, ids)

    assert 1 == sum(1 for s in statements if s.lstrip().upper().startswith("INSERT INTO MEMBERSHIPS"))
    assert 1000 == len(cache.load().memberships)


def test_remove_memberships_removes_only_those_pairs(cache: Cache) -> None:
    """remove_memberships drops the given users from the group and ignores pairs not held."""
    _fill(cache)

    cache.remove_memberships(OPS.source_id, [BOB.source_id, ALICE.source_id])

    assert {("00g1", "00u1"), ("00g1", "00u2"), ("00g2", "00u3")} == cache.load().memberships


def test_remove_memberships_handles_long_lists(cache: Cache) -> None:
    """More ids than one IN list takes (1,200) are all removed."""
    cache.put_group(ENG)
    ids = [f"u{i:04d}" for i in range(1200)]
    _put_users_in_bulk(cache, ids)
    cache.add_memberships(ENG.source_id, ids)

    cache.remove_memberships(ENG.source_id, ids[:1199])

    assert {(ENG.source_id, ids[-1])} == cache.load().memberships


@pytest.mark.parametrize(
    ("selector", "left"),
    [
        ({"group_source_id": "00g2"}, {("00g1", "00u1"), ("00g1", "00u2")}),
        ({"user_source_id": "00u2"}, {("00g1", "00u1"), ("00g2", "00u3")}),
        ({"group_source_id": "00g2", "user_source_id": "00u2"}, {("00g1", "00u1"), ("00g1", "00u2"), ("00g2", "00u3")}),
    ],
    ids=["group", "user", "pair"],
)
def test_forget_memberships(cache: Cache, selector: dict[str, str], left: set[tuple[str, str]]) -> None:
    """forget_memberships drops a group's, a user's, or one pair's memberships, keeping the objects."""
    _fill(cache)

    cache.forget_memberships(**selector)

    state = cache.load()
    assert left == state.memberships
    assert (3, 2) == (len(state.users), len(state.groups))


def test_forget_memberships_needs_a_selector(cache: Cache) -> None:
    """forget_memberships with neither id raises TypeError rather than forgetting everything."""
    _fill(cache)

    with pytest.raises(TypeError):
        cache.forget_memberships()

    assert 4 == len(cache.load().memberships)


def test_load_a_large_directory(cache: Cache) -> None:
    """10,000 users, 1,000 groups and 50,000 memberships load completely and intact."""
    now = datetime.now(UTC)
    with cache.engine.begin() as connection:
        _insert(
            connection,
            users,
            [
                {
                    "source_id": f"u{i:05d}",
                    "target_id": f"t-{i}",
                    "user_name": f"user{i}@example.com",
                    "digest": f"{i:064x}",
                    "data": {"userName": f"user{i}@example.com", "emails": [{"value": f"user{i}@example.com"}]},
                    "origin": "created",
                    "updated_at": now,
                }
                for i in range(10_000)
            ],
        )
        _insert(
            connection,
            groups,
            [
                {
                    "source_id": f"g{i:04d}",
                    "target_id": f"tg-{i}",
                    "display_name": f"group {i}",
                    "digest": "d",
                    "origin": "adopted",
                    "updated_at": now,
                }
                for i in range(1_000)
            ],
        )
        _insert(
            connection,
            memberships,
            [{"group_source_id": f"g{i // 50:04d}", "user_source_id": f"u{i % 10_000:05d}"} for i in range(50_000)],
        )

    state = cache.load()

    assert (10_000, 1_000, 50_000) == (len(state.users), len(state.groups), len(state.memberships))
    user = state.users["u04242"]
    assert ("t-4242", f"{4242:064x}", "user4242@example.com") == (user.target_id, user.digest, user.user_name)
    assert [{"value": "user4242@example.com"}] == user.data["emails"]
    assert "adopted" == state.groups["g0999"].origin
    assert ("g0999", "u09999") in state.memberships


def test_every_write_is_committed_before_it_returns(cache: Cache, other_cache: Cache) -> None:
    """Another connection (another process) sees each write as soon as the call returns."""
    cache.put_user(ALICE)
    assert {ALICE.source_id} == set(other_cache.load().users)

    cache.put_group(ENG)
    cache.add_memberships(ENG.source_id, [ALICE.source_id])
    assert {(ENG.source_id, ALICE.source_id)} == other_cache.load().memberships

    cache.forget_user(ALICE.source_id, AuditEntry("delete_user", "user", ALICE.source_id, ALICE.target_id, None, None))
    assert CacheState(groups={ENG.source_id: ENG}) == other_cache.load()
