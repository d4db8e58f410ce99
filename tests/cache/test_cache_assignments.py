"""Account assignments syncd created: put, forget, read back, audit, and the 0002 migration."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from syncd.cache import Cache
from syncd.cache.migrate import downgrade, head_revisions
from syncd.cache.tables import assignments
from syncd.errors import CacheError
from syncd.model import Assignment
from syncd.state import AuditEntry, CachedGroup


PS_ADMIN = "arn:aws:sso:::permissionSet/ssoins-1111222233334444/ps-aaaabbbbccccdddd"
PS_READ = "arn:aws:sso:::permissionSet/ssoins-1111222233334444/ps-eeeeffff00001111"
ENG = CachedGroup("00g1", "tg-eng", "Engineering", "d-eng")

ENG_ADMIN_PROD = Assignment("00g1", "111111111111", PS_ADMIN, "Engineering", "Admin", "prod")
ENG_READ_PROD = Assignment("00g1", "111111111111", PS_READ, "Engineering", "ReadOnly", "prod")
OPS_READ_DEV = Assignment("00g2", "222222222222", PS_READ, "Ops & SRE", "ReadOnly", "dev")


def _names(found: set[Assignment]) -> set[tuple[str, str, str]]:
    return {(a.group_name, a.permission_set_name, a.account_name) for a in found}


def test_a_new_cache_holds_no_assignments(cache: Cache) -> None:
    """A freshly migrated cache has made no assignment."""
    assert set() == cache.assignments()


def test_put_assignment_round_trips_with_names(cache: Cache) -> None:
    """put_assignment stores the assignment with its display names; assignments() returns them."""
    for assignment in (ENG_ADMIN_PROD, ENG_READ_PROD, OPS_READ_DEV):
        cache.put_assignment(assignment)

    found = cache.assignments()

    assert {ENG_ADMIN_PROD, ENG_READ_PROD, OPS_READ_DEV} == found
    assert {
        ("Engineering", "Admin", "prod"),
        ("Engineering", "ReadOnly", "prod"),
        ("Ops & SRE", "ReadOnly", "dev"),
    } == _names(found)


def test_putting_an_assignment_again_keeps_one_row_and_its_created_at(cache: Cache) -> None:
    """A second put of the same (group, account, permission set) refreshes the names, not created_at."""
    cache.put_assignment(ENG_ADMIN_PROD)
    with cache.engine.connect() as connection:
        first = connection.execute(sa.select(assignments.c.created_at)).scalar_one()
    renamed = Assignment("00g1", "111111111111", PS_ADMIN, "Platform Engineering", "Admin", "production")

    cache.put_assignment(renamed)

    with cache.engine.connect() as connection:
        rows = connection.execute(sa.select(assignments.c.created_at, assignments.c.group_name)).all()
    assert [(first, "Platform Engineering")] == [tuple(r) for r in rows]
    assert first.tzinfo is not None
    assert first <= datetime.now(UTC)


def test_forget_assignment_drops_only_that_one(cache: Cache) -> None:
    """forget_assignment removes one assignment and leaves the group's others."""
    cache.put_assignment(ENG_ADMIN_PROD)
    cache.put_assignment(ENG_READ_PROD)

    cache.forget_assignment(ENG_ADMIN_PROD)
    cache.forget_assignment(OPS_READ_DEV)  # never recorded: a no-op

    assert {ENG_READ_PROD} == cache.assignments()


def test_assignment_writes_carry_their_audit_entries(cache: Cache) -> None:
    """put and forget record their audit entries, tagged with the run."""
    run_id = cache.start_run("incremental", dry_run=False)
    created = AuditEntry("create_assignment", "assignment", "00g1", "tg-eng", None, {"account_id": "1"}, "ok")
    deleted = AuditEntry("delete_assignment", "assignment", "00g1", "tg-eng", {"account_id": "1"}, None, "ok")

    cache.put_assignment(ENG_ADMIN_PROD, created)
    cache.forget_assignment(ENG_ADMIN_PROD, deleted)

    assert [deleted, created] == [entry for _, entry in cache.audit(run_id=run_id)]


def test_forget_group_keeps_its_assignments(cache: Cache) -> None:
    """Forgetting a group keeps its assignment rows: they stay in AWS until syncd deletes them there."""
    cache.put_group(ENG)
    cache.put_assignment(ENG_ADMIN_PROD)

    cache.forget_group(ENG.source_id)

    assert {ENG_ADMIN_PROD} == cache.assignments()


def test_an_assignment_needs_no_cached_group(cache: Cache) -> None:
    """An assignment may name a group the cache does not hold (no foreign key)."""
    cache.put_assignment(OPS_READ_DEV)

    assert {OPS_READ_DEV} == cache.assignments()


def test_a_cache_without_the_table_raises_cache_error(cache: Cache) -> None:
    """Reading assignments from a database migrated only to 0001 raises CacheError naming the call."""
    downgrade(cache.engine, "0001")

    with pytest.raises(CacheError, match=r"\(assignments\)"):
        cache.assignments()


def test_migration_0002_adds_the_table_to_an_existing_cache(cache: Cache) -> None:
    """Upgrading a 0001 database with data in it adds the assignments table and keeps the data."""
    downgrade(cache.engine, "0001")
    with cache.engine.begin() as connection:  # a row as a 0001 syncd wrote it (no later columns)
        connection.execute(
            sa.text(
                "INSERT INTO groups (source_id, target_id, display_name, digest, origin, updated_at)"
                " VALUES (:s, :t, :n, :d, 'created', :u)"
            ),
            {"s": ENG.source_id, "t": ENG.target_id, "n": ENG.display_name, "d": ENG.digest, "u": datetime.now(UTC)},
        )
    assert "assignments" not in sa.inspect(cache.engine).get_table_names()

    cache.upgrade()

    assert head_revisions() == (cache.current_revision(),)
    assert ENG.source_id in cache.load().groups
    cache.put_assignment(ENG_ADMIN_PROD)
    assert {ENG_ADMIN_PROD} == cache.assignments()
