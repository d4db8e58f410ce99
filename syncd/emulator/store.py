"""The in-memory directory behind the emulator: users, groups, memberships and their indexes.

Everything is guarded by one re-entrant lock, so the WSGI threads may call in concurrently.
Rendered resources are built once per write and never mutated afterwards, so callers inside
this package may serialise them outside the lock; public helpers hand out deep copies.

Indexes (for 10k users / 1k groups / 50k memberships): users by id, lower-cased userName,
lower-cased primary email and externalId; groups by id, lower-cased displayName and externalId;
memberships both ways as sets. Creation order is a global sequence number; listing pages by
sequence number with ``bisect``, so a page costs O(log n + count) unfiltered and
O(k log k) for a filter that selects k resources.

Rules where the reference is silent, chosen and marked UNCONFIRMED:

* group ``displayName`` uniqueness, and the ``displayName eq`` filter, ignore letter case, like
  ``userName`` (AWS documents uniqueness, not its case rule);
* group ``externalId`` need not be unique (only users' is documented as unique);
* adding a member that is not an existing user is 400; adding an existing member or removing a
  non-member (or an unknown user id) is a silent success;
* ``groups.value eq`` naming an unknown group answers 404, like ``members.value eq`` naming an
  unknown user does [DG:listgroups];
* PUT to an unknown user id answers 404; PUT without ``active`` keeps the current value;
* a create beyond the identity store's quota (100,000 users, 100,000 groups [UG:limits]) is 400
  with the reason in the debug header (AWS's answer over quota is not documented).
"""

from __future__ import annotations

import copy
import os
import threading
import uuid
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from syncd.emulator.constants import (
    DUPLICATE,
    ENTERPRISE_URN,
    GROUP_NOT_FOUND,
    GROUP_URN,
    MAX_GROUPS,
    MAX_USERS,
    USER_NOT_FOUND,
    USER_URN,
)
from syncd.emulator.errors import ScimError
from syncd.emulator.filters import Kind
from syncd.emulator.paging import CursorCodec
from syncd.emulator.patch import apply_user_patch, parse_group_patch
from syncd.emulator.validation import schema_violation, validate_group, validate_user


def _now() -> str:
    """``meta`` timestamps: ``YYYY-MM-DDThh:mm:ssZ`` [docs/references.md §A.4]."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class _Record:
    id: str
    seq: int
    created: str
    attrs: dict[str, Any]
    body: dict[str, Any]


def _render_user(rec_id: str, attrs: Mapping[str, Any], created: str, modified: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": rec_id}
    if "externalId" in attrs:
        body["externalId"] = attrs["externalId"]
    body["meta"] = {"resourceType": "User", "created": created, "lastModified": modified}
    # The enterprise URN is listed only when the user has extension data (DG examples).
    body["schemas"] = [USER_URN, ENTERPRISE_URN] if ENTERPRISE_URN in attrs else [USER_URN]
    body.update({k: v for k, v in attrs.items() if k != "externalId"})
    return body


def _render_group(rec_id: str, attrs: Mapping[str, Any], created: str, modified: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": rec_id}
    if "externalId" in attrs:
        body["externalId"] = attrs["externalId"]
    body["meta"] = {"resourceType": "Group", "created": created, "lastModified": modified}
    body["schemas"] = [GROUP_URN]
    body["displayName"] = attrs["displayName"]
    return body


def _email_key(attrs: Mapping[str, Any]) -> str | None:
    emails = attrs.get("emails") or []
    return str(emails[0]["value"]).lower() if emails else None


def with_members(group: Mapping[str, Any]) -> dict[str, Any]:
    """The group as GET returns it: always ``"members": []`` [DG:getgroup, DG:listgroups]."""
    return {**group, "members": []}


class _Ordered:
    """Ids in creation order: sorted sequence numbers plus seq → id."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.ids: dict[int, str] = {}

    def add(self, seq: int, rec_id: str) -> None:
        self.seqs.append(seq)  # sequence numbers only grow
        self.ids[seq] = rec_id

    def remove(self, seq: int) -> None:
        del self.seqs[bisect_left(self.seqs, seq)]
        del self.ids[seq]


def _page(seqs: list[int], after: int, count: int) -> tuple[list[int], int | None]:
    start = bisect_right(seqs, after)
    chosen = seqs[start : start + count]
    more = start + count < len(seqs)
    return chosen, (chosen[-1] if more and chosen else None)


class EmulatorState:
    """Thread-safe in-memory store of one emulated Identity Center instance.

    The ``*_user`` / ``*_group`` methods taking a ``body`` are what the HTTP layer calls and
    raise `ScimError`; the helpers below them (``add_user`` …) make "hand-made" changes that
    bypass HTTP (as an admin in the console would), with the same rules. The HTTP-facing
    methods return the stored JSON itself, shared and never mutated afterwards: treat it as
    read-only. The helpers return deep copies.
    """

    def __init__(self, *, max_users: int = MAX_USERS, max_groups: int = MAX_GROUPS) -> None:
        self.max_users = max_users
        self.max_groups = max_groups
        self._lock = threading.RLock()
        self._seq = 0
        self.cursors = CursorCodec(os.urandom(32))
        self._users: dict[str, _Record] = {}
        self._user_order = _Ordered()
        self._user_by_name: dict[str, str] = {}
        self._user_by_email: dict[str, str] = {}
        self._user_by_external: dict[str, str] = {}
        self._groups: dict[str, _Record] = {}
        self._group_order = _Ordered()
        self._group_by_name: dict[str, str] = {}
        self._groups_by_external: dict[str, set[str]] = {}
        self._members: dict[str, set[str]] = {}
        self._member_of: dict[str, set[str]] = {}

    # --- users ---------------------------------------------------------------------------

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _check_user_unique(self, attrs: Mapping[str, Any], own_id: str | None) -> None:
        # [UG:troubleshooting] userName, primary email and externalId are each unique → 409.
        keys = (
            (self._user_by_name, str(attrs["userName"]).lower()),
            (self._user_by_email, _email_key(attrs)),
            (self._user_by_external, attrs.get("externalId")),
        )
        for index, key in keys:
            if key is not None and index.get(key, own_id) != own_id:
                raise ScimError(409, DUPLICATE)

    def _index_user(self, rec: _Record, add: bool) -> None:
        attrs = rec.attrs
        for index, key in (
            (self._user_by_name, str(attrs["userName"]).lower()),
            (self._user_by_email, _email_key(attrs)),
            (self._user_by_external, attrs.get("externalId")),
        ):
            if key is None:
                continue
            if add:
                index[key] = rec.id
            else:
                index.pop(key, None)

    def _user(self, user_id: str) -> _Record:
        rec = self._users.get(user_id)
        if rec is None:
            raise ScimError(404, USER_NOT_FOUND)
        return rec

    def _store_user(self, rec: _Record, attrs: dict[str, Any]) -> dict[str, Any]:
        self._index_user(rec, add=False)
        rec.attrs = attrs
        rec.body = _render_user(rec.id, attrs, rec.created, _now())
        self._index_user(rec, add=True)
        return rec.body

    def create_user(self, body: Any) -> dict[str, Any]:
        """POST /Users [DG:createuser]: validate, check uniqueness, store; return the user."""
        attrs = validate_user(body)
        with self._lock:
            self._check_user_unique(attrs, None)
            if len(self._users) >= self.max_users:
                raise schema_violation(f"the identity store holds its quota of {self.max_users} users")
            created = _now()
            rec = _Record(id=str(uuid.uuid4()), seq=self._next_seq(), created=created, attrs=attrs, body={})
            rec.body = _render_user(rec.id, attrs, created, created)
            self._users[rec.id] = rec
            self._user_order.add(rec.seq, rec.id)
            self._index_user(rec, add=True)
            return rec.body

    def get_user(self, user_id: str) -> dict[str, Any]:
        """GET /Users/{id} [DG:getuser]; 404 if unknown."""
        with self._lock:
            return self._user(user_id).body

    def replace_user(self, user_id: str, body: Any) -> dict[str, Any]:
        """PUT /Users/{id} [DG:putuser]: full replace with POST's rules; 404 if unknown (UNCONFIRMED)."""
        with self._lock:
            rec = self._user(user_id)
            attrs = validate_user(body)
            if not (isinstance(body, dict) and isinstance(body.get("active"), bool)):
                attrs["active"] = rec.attrs["active"]  # PUT without active keeps it (UNCONFIRMED)
            self._check_user_unique(attrs, user_id)
            return self._store_user(rec, attrs)

    def patch_user(self, user_id: str, body: Any) -> dict[str, Any]:
        """PATCH /Users/{id} [DG:patchuser]: apply, validate, check uniqueness; return the user."""
        with self._lock:
            rec = self._user(user_id)
            attrs = apply_user_patch(rec.attrs, body)
            self._check_user_unique(attrs, user_id)
            return self._store_user(rec, attrs)

    def delete_user(self, user_id: str) -> None:
        """DELETE /Users/{id} [DG:deleteuser]: also drops the user from every group; 404 if unknown."""
        with self._lock:
            rec = self._user(user_id)
            self._index_user(rec, add=False)
            del self._users[user_id]
            self._user_order.remove(rec.seq)
            for group_id in self._member_of.pop(user_id, set()):
                self._members[group_id].discard(user_id)

    # --- groups --------------------------------------------------------------------------

    def _group(self, group_id: str) -> _Record:
        rec = self._groups.get(group_id)
        if rec is None:
            raise ScimError(404, GROUP_NOT_FOUND)
        return rec

    def _check_group_unique(self, display_name: str, own_id: str | None) -> None:
        # [DG:creategroup] displayName is unique → 409 (CloudTrail: "Duplicate GroupDisplayName").
        if self._group_by_name.get(display_name.lower(), own_id) != own_id:
            raise ScimError(409, DUPLICATE)

    def _index_group(self, rec: _Record, add: bool) -> None:
        name = str(rec.attrs["displayName"]).lower()
        external = rec.attrs.get("externalId")
        if add:
            self._group_by_name[name] = rec.id
            if external is not None:
                self._groups_by_external.setdefault(external, set()).add(rec.id)
            return
        self._group_by_name.pop(name, None)
        if external is not None:
            holders = self._groups_by_external.get(external, set())
            holders.discard(rec.id)
            if not holders:
                self._groups_by_external.pop(external, None)

    def _check_members_exist(self, user_ids: list[str]) -> None:
        for user_id in user_ids:
            if user_id not in self._users:
                # UNCONFIRMED: AWS's answer to an unknown member id is not documented; we say 400.
                raise schema_violation(f"member {user_id!r} is not an existing user")

    def _set_membership(self, group_id: str, user_id: str, present: bool) -> None:
        if present:
            self._members[group_id].add(user_id)
            self._member_of.setdefault(user_id, set()).add(group_id)
        else:
            self._members[group_id].discard(user_id)
            groups = self._member_of.get(user_id)
            if groups is not None:
                groups.discard(group_id)
                if not groups:
                    del self._member_of[user_id]

    def create_group(self, body: Any) -> dict[str, Any]:
        """POST /Groups [DG:creategroup]: return the group *without* ``members``."""
        attrs, member_ids = validate_group(body)
        with self._lock:
            self._check_group_unique(attrs["displayName"], None)
            self._check_members_exist(member_ids)
            if len(self._groups) >= self.max_groups:
                raise schema_violation(f"the identity store holds its quota of {self.max_groups} groups")
            created = _now()
            rec = _Record(id=str(uuid.uuid4()), seq=self._next_seq(), created=created, attrs=attrs, body={})
            rec.body = _render_group(rec.id, attrs, created, created)
            self._groups[rec.id] = rec
            self._group_order.add(rec.seq, rec.id)
            self._index_group(rec, add=True)
            self._members[rec.id] = set()
            for user_id in member_ids:
                self._set_membership(rec.id, user_id, present=True)
            return rec.body

    def get_group(self, group_id: str) -> dict[str, Any]:
        """GET /Groups/{id} [DG:getgroup]: the group without members (see `with_members`)."""
        with self._lock:
            return self._group(group_id).body

    def patch_group(self, group_id: str, body: Any) -> None:
        """PATCH /Groups/{id} [DG:patchgroup]: all or nothing; the HTTP answer is 204."""
        with self._lock:
            rec = self._group(group_id)
            request = parse_group_patch(group_id, body)
            attrs = dict(rec.attrs)
            for name, value in request.attributes:
                if value is None:
                    attrs.pop(name, None)
                else:
                    attrs[name] = value
            self._check_group_unique(attrs["displayName"], group_id)
            self._check_members_exist([user_id for op, user_id in request.members if op == "add"])
            for op, user_id in request.members:
                if op == "add" or user_id in self._users:
                    self._set_membership(group_id, user_id, present=op == "add")
            self._index_group(rec, add=False)
            rec.attrs = {key: attrs[key] for key in ("externalId", "displayName") if key in attrs}
            rec.body = _render_group(rec.id, rec.attrs, rec.created, _now())
            self._index_group(rec, add=True)

    def delete_group(self, group_id: str) -> None:
        """DELETE /Groups/{id} [DG:deletegroup]; 404 if unknown."""
        with self._lock:
            rec = self._group(group_id)
            for user_id in list(self._members[group_id]):
                self._set_membership(group_id, user_id, present=False)
            del self._members[group_id]
            self._index_group(rec, add=False)
            del self._groups[group_id]
            self._group_order.remove(rec.seq)

    # --- listing -------------------------------------------------------------------------

    def _select(self, kind: Kind, criteria: Mapping[str, str]) -> list[int]:
        if kind == "Users":
            return self._select_users(criteria)
        return self._select_groups(criteria)

    def _seqs_of(self, records: Mapping[str, _Record], ids: Any) -> list[int]:
        return sorted(records[i].seq for i in ids if i in records)

    def _select_users(self, criteria: Mapping[str, str]) -> list[int]:
        if not criteria:
            return self._user_order.seqs
        if "userName" in criteria:
            ids: Any = [self._user_by_name.get(criteria["userName"].lower())]
        elif "externalId" in criteria:
            ids = [self._user_by_external.get(criteria["externalId"])]
        elif "groups.value" in criteria:
            ids = self._members.get(criteria["groups.value"])
            if ids is None:
                raise ScimError(404, GROUP_NOT_FOUND)  # UNCONFIRMED, mirrors members.value
        else:
            rec = self._users.get(criteria["id"])
            ids = [rec.id] if rec is not None else []
            if rec is not None and "manager" in criteria:
                manager = rec.attrs.get(ENTERPRISE_URN, {}).get("manager", {}).get("value")
                ids = ids if manager == criteria["manager"] else []
        return self._seqs_of(self._users, [i for i in ids if i is not None])

    def _select_groups(self, criteria: Mapping[str, str]) -> list[int]:
        if not criteria:
            return self._group_order.seqs
        member = criteria.get("members.value")
        if member is not None and member not in self._users:
            raise ScimError(404, USER_NOT_FOUND)  # [DG:listgroups] unknown member → 404
        if "displayName" in criteria:
            ids: Any = [self._group_by_name.get(criteria["displayName"].lower())]
        elif "externalId" in criteria:
            ids = self._groups_by_external.get(criteria["externalId"], set())
        elif "id" in criteria:
            group_id = criteria["id"]
            ids = [group_id] if member is None or member in self._members.get(group_id, set()) else []
        else:
            ids = self._member_of.get(str(member), set())
        return self._seqs_of(self._groups, [i for i in ids if i is not None])

    def list_page(
        self, kind: Kind, criteria: Mapping[str, str], after: int, count: int
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of ``kind`` matching ``criteria``, in creation order, after sequence ``after``.

        Returns:
            The rendered resources (groups with ``"members": []``) and the sequence number to
            continue after, or None when this is the last page.

        Raises:
            ScimError: 404 when a membership filter names an unknown user or group.
        """
        with self._lock:
            seqs, next_after = _page(self._select(kind, criteria), after, count)
            if kind == "Users":
                return [self._users[self._user_order.ids[s]].body for s in seqs], next_after
            return [with_members(self._groups[self._group_order.ids[s]].body) for s in seqs], next_after

    # --- hand-made changes and inspection (tests, demos) ---------------------------------

    def add_user(
        self,
        *,
        user_name: str,
        display_name: str,
        given_name: str,
        family_name: str,
        email: str | None = None,
        external_id: str | None = None,
        active: bool = True,
    ) -> dict[str, Any]:
        """Create a user without HTTP, under the same rules; return a copy of the stored user."""
        body: dict[str, Any] = {
            "schemas": [USER_URN],
            "userName": user_name,
            "displayName": display_name,
            "name": {"givenName": given_name, "familyName": family_name},
            "active": active,
        }
        if email is not None:
            body["emails"] = [{"value": email, "type": "work", "primary": True}]
        if external_id is not None:
            body["externalId"] = external_id
        return copy.deepcopy(self.create_user(body))

    def add_group(self, *, display_name: str, external_id: str | None = None) -> dict[str, Any]:
        """Create a group without HTTP, under the same rules; return a copy of the stored group."""
        body: dict[str, Any] = {"schemas": [GROUP_URN], "displayName": display_name}
        if external_id is not None:
            body["externalId"] = external_id
        return copy.deepcopy(self.create_group(body))

    def add_member(self, group_id: str, user_id: str) -> None:
        """Put a user in a group without HTTP; 404 `ScimError` if either is unknown."""
        with self._lock:
            self._group(group_id)
            self._user(user_id)
            self._set_membership(group_id, user_id, present=True)

    def remove_member(self, group_id: str, user_id: str) -> None:
        """Take a user out of a group without HTTP; 404 `ScimError` if the group is unknown."""
        with self._lock:
            self._group(group_id)
            self._set_membership(group_id, user_id, present=False)

    @property
    def users(self) -> list[dict[str, Any]]:
        """Copies of every user's SCIM JSON, in creation order."""
        with self._lock:
            return [copy.deepcopy(self._users[self._user_order.ids[s]].body) for s in self._user_order.seqs]

    @property
    def groups(self) -> list[dict[str, Any]]:
        """Copies of every group's SCIM JSON as GET returns it (``"members": []``), in creation order."""
        with self._lock:
            return [
                copy.deepcopy(with_members(self._groups[self._group_order.ids[s]].body)) for s in self._group_order.seqs
            ]

    def members(self, group_id: str) -> set[str]:
        """The user ids in a group (a copy); 404 `ScimError` if the group is unknown."""
        with self._lock:
            self._group(group_id)
            return set(self._members[group_id])

    def find_user(self, user_name: str) -> dict[str, Any] | None:
        """The user whose userName matches, ignoring case, or None (a copy)."""
        with self._lock:
            user_id = self._user_by_name.get(user_name.lower())
            return copy.deepcopy(self._users[user_id].body) if user_id is not None else None

    def find_group(self, display_name: str) -> dict[str, Any] | None:
        """The group whose displayName matches, ignoring case, or None (a copy, GET shape)."""
        with self._lock:
            group_id = self._group_by_name.get(display_name.lower())
            return copy.deepcopy(with_members(self._groups[group_id].body)) if group_id is not None else None
