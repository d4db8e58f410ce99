"""The cache's identities: the users and groups syncd pushed to Identity Center, and their memberships.

A part of :class:`syncd.cache.Cache` (:mod:`syncd.cache.shared`). :meth:`IdentityRecords.load`
reads them all as one :class:`~syncd.state.CacheState` for the plan; each write records one
change and its audit entry in one transaction.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, delete, func, select

from syncd.cache.shared import (
    IN_CHUNK,
    LOAD_BATCH,
    LOAD_GROUP_BATCH,
    Transactions,
    chunks,
    unique_ids,
    utc_now,
)
from syncd.cache.tables import groups, memberships, users
from syncd.errors import CacheError
from syncd.memberset import MemberSet
from syncd.state import NO_DATA, UNCHANGED, AuditEntry, CachedGroup, CachedUser, CacheState, Current, Origin


__all__ = ["IdentityRecords"]


_ORIGINS = ("created", "adopted")


def _origin(value: str) -> Origin:
    # The module's own string, not the row's: 100k users would otherwise hold 100k "created"s.
    for origin in _ORIGINS:
        if value == origin:
            return cast(Origin, origin)
    raise CacheError(f"the cache holds an unknown origin {value!r}")


def _check_origin(value: str) -> None:
    if value not in _ORIGINS:
        raise ValueError(f"origin must be one of {_ORIGINS}, not {value!r}")


def _compact(data: Any, keys: dict[str, str], shared: dict[str, str]) -> Any:
    """``data`` as decoded, its keys made one object per name across all rows, and values equal
    to the row's own columns (source id, userName) made those very strings.

    Equal in value to what was decoded; it only drops duplicate string objects, which for 100k
    users are most of what their JSON costs once loaded.
    """
    if isinstance(data, dict):
        return {
            keys.setdefault(key, key): shared.get(value, value) if isinstance(value, str) else _compact(value, keys, {})
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [_compact(item, keys, {}) for item in data]
    return data


class IdentityRecords:
    """Users, groups and memberships syncd pushed (a part of ``Cache``)."""

    def load(
        self: Transactions,
        *,
        current: Mapping[str, Current] | None = None,
        lean: bool = False,
        targets: Mapping[str, str] | None = None,
    ) -> CacheState:
        """Read every user, group and membership, as one consistent snapshot.

        Reads plain columns in batches (no ORM objects), so 100k users cost little more than
        the resulting values.

        Args:
            current: each user as the source holds it now, when known. A user whose cached
                digest is the same needs no write, and the plan never reads its ``data`` (what
                was last pushed: the ``before`` of an update or a delete), so it is loaded with
                ``data`` left out, ``digest`` as :data:`~syncd.state.UNCHANGED`, and the strings
                of ``current`` (equal digests mean equal userNames), so the run holds one copy
                of them, not two. The others' data is read as usual. For 100k users that is
                most of what a loaded cache would hold. None (the default) loads every user's
                data.
            lean: load no user's ``data`` at all (:data:`~syncd.state.NO_DATA`), only the email
                each one was last pushed with (``CacheState.emails``): what the rounds of writes
                during the read use (:mod:`syncd.during_read`), whose updates and removals wait
                for the final plan on a full load. The first round of a ``users = "members"``
                read knows few users yet: a load by ``current`` alone would hold every other
                user's payload for the rest of the read (over 100 MB at 100k users).
            targets: Identity Center user ids the run already holds, each mapped to itself (a full
                resync's listing, :attr:`~syncd.target.scim.ScimTarget.user_ids`): a cached user
                whose id is among them keeps that very string, not a copy of its own (100k ids
                are some 8 MB).
        """
        state = CacheState()
        held = targets if targets is not None else {}
        with self._read("load", snapshot=True) as connection:
            keys: dict[str, str] = {}

            def cached_user(row: Sequence[Any], data: Any) -> CachedUser:
                source_id, target_id, user_name, digest, origin, gone_since = row[:6]
                return CachedUser(
                    source_id=source_id,
                    target_id=held.get(target_id, target_id),
                    user_name=user_name,
                    digest=digest,
                    data=_compact(data, keys, {source_id: source_id, user_name: user_name}) if data is not None else {},
                    origin=_origin(origin),
                    gone_since=gone_since,
                )

            columns = (
                users.c.source_id,
                users.c.target_id,
                users.c.user_name,
                users.c.digest,
                users.c.origin,
                users.c.gone_since,
            )
            if current is None and not lean:
                with_data = connection.execution_options(yield_per=LOAD_BATCH).execute(select(*columns, users.c.data))
                for user_row in with_data:
                    state.users[user_row[0]] = cached_user(user_row, user_row[6])
            else:
                now_of = current if current is not None else {}
                # Lean: each row brings the email it was last pushed with, and its payload is never read.
                query: Select[Any] = select(*columns, users.c.data["email"].as_string()) if lean else select(*columns)
                changed: dict[str, Sequence[Any]] = {}
                for row in connection.execution_options(yield_per=LOAD_BATCH).execute(query):
                    now = now_of.get(row[0])
                    if now is not None and now.digest == row[3] and row[5] is None:
                        state.users[now.source_id] = CachedUser(
                            now.source_id, held.get(row[1], row[1]), now.user_name, UNCHANGED, NO_DATA, _origin(row[4])
                        )
                    elif lean:
                        # The id as the connectors hold it (they intern theirs): one string for the
                        # cache's copy and the read's, whichever comes first; and one for a userName
                        # and the email it usually equals.
                        source_id, user_name = sys.intern(row[0]), row[2]
                        state.users[source_id] = CachedUser(
                            source_id, held.get(row[1], row[1]), user_name, row[3], NO_DATA, _origin(row[4]), row[5]
                        )
                        if row[6] is not None:
                            state.emails[source_id] = user_name if row[6] == user_name else row[6]
                    else:
                        changed[row[0]] = row
                for chunk in chunks(list(changed), IN_CHUNK):
                    for source_id, data in connection.execute(
                        select(users.c.source_id, users.c.data).where(users.c.source_id.in_(chunk))
                    ):
                        state.users[source_id] = cached_user(changed[source_id], data)
            group_rows = connection.execution_options(yield_per=LOAD_BATCH).execute(
                select(
                    groups.c.source_id,
                    groups.c.target_id,
                    groups.c.display_name,
                    groups.c.digest,
                    groups.c.origin,
                    groups.c.gone_since,
                )
            )
            for source_id, target_id, display_name, digest, origin, gone_since in group_rows:
                state.groups[source_id] = CachedGroup(
                    source_id=source_id,
                    target_id=target_id,
                    display_name=display_name,
                    digest=digest,
                    origin=_origin(origin),
                    gone_since=gone_since,
                )
            # One row per group, its members as a JSON array: a row per membership costs several
            # times more to fetch (half a million of them at 100k users).
            member_lists = connection.execution_options(yield_per=LOAD_GROUP_BATCH).execute(self._stmts.member_lists)
            users_by_id = state.users
            for group_id, user_ids in member_lists:
                group = state.groups.get(group_id)
                # The sets reuse the id strings of the users and groups above: one copy of each id,
                # not one per membership (half a million memberships would otherwise hold a million strings).
                members = []
                for user_id in user_ids:
                    user = users_by_id.get(user_id)
                    members.append(user.source_id if user else user_id)
                # A sorted tuple per group (MemberSet): 8 bytes a membership, against 30 to 60 in a set.
                state.members[group.source_id if group else group_id] = MemberSet(members)
        return state

    def put_user(self: Transactions, user: CachedUser, audit: AuditEntry | None = None) -> None:
        """Insert or replace the user with ``user.source_id``, and record ``audit``.

        Raises:
            CacheError: the write failed (e.g. another user already has ``user.target_id``);
                nothing was written, not even the audit entry.
            ValueError: ``user.origin`` is not "created" or "adopted".
        """
        _check_origin(user.origin)
        with self._write("put_user") as connection:
            connection.execute(
                self._stmts.upsert_user,
                {
                    "source_id": user.source_id,
                    "target_id": user.target_id,
                    "user_name": user.user_name,
                    "digest": user.digest,
                    "data": dict(user.data),
                    "origin": user.origin,
                    "updated_at": utc_now(),
                    "gone_since": user.gone_since,
                },
            )
            self._audit(connection, audit)

    def forget_user(self: Transactions, source_id: str, audit: AuditEntry | None = None) -> None:
        """Drop the user and its memberships, and record ``audit``; a no-op for an unknown user."""
        with self._write("forget_user") as connection:
            connection.execute(delete(memberships).where(memberships.c.user_source_id == source_id))
            connection.execute(delete(users).where(users.c.source_id == source_id))
            self._audit(connection, audit)

    def put_group(self: Transactions, group: CachedGroup, audit: AuditEntry | None = None) -> None:
        """Insert or replace the group with ``group.source_id``, and record ``audit``.

        Raises:
            CacheError: the write failed; nothing was written, not even the audit entry.
            ValueError: ``group.origin`` is not "created" or "adopted".
        """
        _check_origin(group.origin)
        with self._write("put_group") as connection:
            connection.execute(
                self._stmts.upsert_group,
                {
                    "source_id": group.source_id,
                    "target_id": group.target_id,
                    "display_name": group.display_name,
                    "digest": group.digest,
                    "origin": group.origin,
                    "updated_at": utc_now(),
                    "gone_since": group.gone_since,
                },
            )
            self._audit(connection, audit)

    def forget_group(self: Transactions, source_id: str, audit: AuditEntry | None = None) -> None:
        """Drop the group and its memberships, and record ``audit``; a no-op for an unknown group."""
        with self._write("forget_group") as connection:
            connection.execute(delete(memberships).where(memberships.c.group_source_id == source_id))
            connection.execute(delete(groups).where(groups.c.source_id == source_id))
            self._audit(connection, audit)

    def add_memberships(
        self: Transactions, group_source_id: str, user_source_ids: Iterable[str], audit: AuditEntry | None = None
    ) -> None:
        """Record that the users are members of the group (pairs already held are kept), and ``audit``.

        One statement whatever the number of users.

        Raises:
            CacheError: the group or one of the users is not in the cache; nothing was written.
        """
        user_ids = unique_ids(user_source_ids)
        with self._write("add_memberships") as connection:
            if user_ids:
                connection.execute(
                    self._stmts.add_membership,
                    [{"group_source_id": group_source_id, "user_source_id": u} for u in user_ids],
                )
            self._audit(connection, audit)

    def remove_memberships(
        self: Transactions, group_source_id: str, user_source_ids: Iterable[str], audit: AuditEntry | None = None
    ) -> None:
        """Drop the pairs (group, each user), and record ``audit``; absent pairs are ignored."""
        user_ids = unique_ids(user_source_ids)
        with self._write("remove_memberships") as connection:
            for chunk in chunks(user_ids, IN_CHUNK):
                connection.execute(
                    delete(memberships).where(
                        memberships.c.group_source_id == group_source_id,
                        memberships.c.user_source_id.in_(chunk),
                    )
                )
            self._audit(connection, audit)

    def forget_memberships(
        self: Transactions, *, group_source_id: str | None = None, user_source_id: str | None = None
    ) -> None:
        """Drop every membership of a group, of a user, or (both given) the one pair.

        Raises:
            TypeError: neither was given (that would forget every membership).
        """
        if group_source_id is None and user_source_id is None:
            raise TypeError("forget_memberships() needs group_source_id, user_source_id or both")
        stmt = delete(memberships)
        if group_source_id is not None:
            stmt = stmt.where(memberships.c.group_source_id == group_source_id)
        if user_source_id is not None:
            stmt = stmt.where(memberships.c.user_source_id == user_source_id)
        with self._write("forget_memberships") as connection:
            connection.execute(stmt)

    def pending_deletions(self: Transactions) -> list[tuple[str, str, str, str, datetime]]:
        """Users and groups gone from the source and waiting for their delete (``safety.delete_after``).

        Returns ``(kind, source_id, name, target_id, gone_since)`` tuples, oldest first; kind is
        "user" or "group".
        """
        with self._read("pending_deletions") as connection:
            found: list[tuple[str, str, str, str, datetime]] = [
                ("user", sid, name, tid, since)
                for sid, name, tid, since in connection.execute(
                    select(users.c.source_id, users.c.user_name, users.c.target_id, users.c.gone_since).where(
                        users.c.gone_since.is_not(None)
                    )
                )
            ]
            found += [
                ("group", sid, name, tid, since)
                for sid, name, tid, since in connection.execute(
                    select(groups.c.source_id, groups.c.display_name, groups.c.target_id, groups.c.gone_since).where(
                        groups.c.gone_since.is_not(None)
                    )
                )
            ]
        return sorted(found, key=lambda row: (row[4], row[0], row[1]))

    def managed_counts(self: Transactions) -> tuple[int, int]:
        """How many users and groups syncd manages (the cache's rows): two cheap counts in one snapshot."""
        with self._read("managed_counts", snapshot=True) as connection:
            user_count: int = connection.execute(select(func.count()).select_from(users)).scalar_one()
            group_count: int = connection.execute(select(func.count()).select_from(groups)).scalar_one()
        return user_count, group_count

    def user_ids(self: Transactions) -> set[str]:
        """The source ids of every cached user: the users Identity Center holds, who keep a userName
        or email another source user shares (:func:`syncd.normalise.build_snapshot`'s ``prefer``)."""
        with self._read("user_ids", snapshot=True) as connection:
            return set(connection.execute(select(users.c.source_id)).scalars())

    def target_ids(self: Transactions) -> tuple[dict[str, str], dict[str, str]]:
        """Identity Center id → source id of every cached user, and source id → Identity Center id
        of every cached group: what a full resync needs to read Identity Center while the source is
        still being read (before :meth:`load`, which wants the source's users)."""
        with self._read("target_ids", snapshot=True) as connection:
            # Source ids interned, as the connectors intern theirs: one string for both.
            rows = connection.execute(select(users.c.source_id, users.c.target_id))
            user_ids = {tid: sys.intern(sid) for sid, tid in rows}
            rows = connection.execute(select(groups.c.source_id, groups.c.target_id))
            group_ids: dict[str, str] = {sid: tid for sid, tid in rows}  # noqa: C416 - rows are not pairs to dict()
        return user_ids, group_ids
