"""Delta queries of the fake Graph: ``/users/delta`` and ``/groups/delta``.

Rules (pages "Use delta query to track changes in Microsoft Graph data", "user: delta",
"group: delta", "Get incremental changes for groups"; devblog "Duration of change tracking
tokens", July 2020):

* the first call (no token) starts a round that returns every current object; ``$deltatoken=latest``
  returns no data and a delta link for now;
* query options go on the first call only and are encoded into the tokens; ``$select`` limits
  what is tracked and returned; ``$filter`` only as ``id eq '…'`` (``or``-joined, at most 50 ids);
  ``$top``, ``$orderby`` and ``$expand`` are refused;
* a round's pages link with ``$skiptoken`` next links; the last page carries the
  ``@odata.deltaLink`` and no next link;
* a delta link returns the objects changed since it was issued: their tracked properties
  (``Prefer: return=minimal``: only those that changed), ``{"id", "@removed": {"reason"}}`` for
  deleted ones (``changed``: soft-deleted, ``deleted``: gone for good);
* groups with ``members`` selected carry ``members@delta`` (ids and ``@odata.type`` only, direct
  members, removals with ``@removed``); a group whose only change is its members comes with just
  ``id`` and ``members@delta`` **[assumed]**; a group with more members than
  :attr:`DeltaBook.member_slice` is repeated on later pages with one slice each;
* a delta token older than 7 days is 400 ``syncStateNotFound``; after :meth:`force_resync`,
  410 Gone with a ``Location`` to start again.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx2


if TYPE_CHECKING:
    from tests.fakes.entra import FakeEntra

TOKEN_LIFETIME = 7 * 86400.0
SYNC_STATE_NOT_FOUND = (
    "The sync state generation is not found. The delta token is expired and data must be synchronized again."
)
_ID_EQ = re.compile(r"^id eq '([^']+)'$")


@dataclass
class Change:
    """One change to one object, numbered in the tenant's change sequence."""

    seq: int
    kind: str  # "users" | "groups"
    id: str
    fields: frozenset[str]  # "*" for a creation
    removed: str | None = None


@dataclass
class MemberEvent:
    """A direct member added to or removed from a group."""

    seq: int
    group: str
    member: str
    member_type: str
    added: bool


@dataclass(frozen=True)
class Options:
    """The query options of a first call, carried by every token of the round."""

    kind: str
    select: tuple[str, ...] | None
    ids: frozenset[str] | None
    minimal: bool


@dataclass
class Token:
    """A delta token: where the next round starts."""

    options: Options
    seq: int
    issued: float
    epoch: int


@dataclass
class Round:
    """A round in progress: the pages not yet served."""

    options: Options
    pages: list[list[dict[str, Any]]]
    seq: int


class DeltaBook:
    """The change log and the delta tokens of a fake tenant."""

    page_size = 100  # objects per delta page [assumed]; $top is not supported on delta
    member_slice = 100  # members@delta entries per group per page [assumed]

    def __init__(self, fake: FakeEntra) -> None:
        self.fake = fake
        self.seq = 0
        self.changes: list[Change] = []
        self.events: list[MemberEvent] = []
        self.tokens: dict[str, Token] = {}
        self.rounds: dict[str, Round] = {}
        self.epochs = {"users": 0, "groups": 0}

    # -- recording ----------------------------------------------------------------------------------

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def created(self, kind: str, object_id: str) -> None:
        """A new object."""
        self.changes.append(Change(self._next(), kind, object_id, frozenset({"*"})))

    def changed(self, kind: str, object_id: str, props: dict[str, Any]) -> None:
        """Properties of an object changed."""
        self.changes.append(Change(self._next(), kind, object_id, frozenset(props)))

    def removed(self, kind: str, object_id: str, reason: str) -> None:
        """An object was deleted (``changed``: soft, ``deleted``: for good)."""
        self.changes.append(Change(self._next(), kind, object_id, frozenset(), removed=reason))

    def membership(self, group: str, member: str, member_type: str, *, added: bool) -> None:
        """A direct member came or went."""
        self.events.append(MemberEvent(self._next(), group, member, member_type, added))

    def force_resync(self, kind: str) -> None:
        """Every token of ``kind`` issued so far answers 410 Gone."""
        self.epochs[kind] += 1

    def age_tokens(self, seconds: float) -> None:
        """Make every token issued so far ``seconds`` older (the fake's clock stays put)."""
        for token in self.tokens.values():
            token.issued -= seconds

    # -- serving ------------------------------------------------------------------------------------

    def serve(self, kind: str, request: httpx2.Request) -> httpx2.Response:
        """Answer ``GET /{kind}/delta`` (first call, ``$skiptoken`` or ``$deltatoken``)."""
        fake = self.fake
        params = request.url.params
        if "$skiptoken" in params:
            current = self.rounds.pop(params["$skiptoken"], None)
            if current is None or current.options.kind != kind:
                return fake.error(400, "Request_BadRequest", "The skip token is not valid.")  # [assumed]
            return self._page(current)
        if params.get("$deltatoken", "latest") != "latest":
            token = self.tokens.get(params["$deltatoken"])
            if token is None or token.options.kind != kind:
                return fake.error(400, "Request_BadRequest", "The delta token is not valid.")  # [assumed]
            if token.epoch != self.epochs[kind]:
                location = f"{fake.graph_url}/v1.0/{kind}/delta"
                return fake.error(
                    410,
                    "resyncRequired",  # [assumed] code; 410 with Location is from the delta overview page
                    "Resync required. Replace any local data with the data from the Location URL.",
                    {"Location": location},
                )
            if fake.now - token.issued > TOKEN_LIFETIME:
                return fake.error(400, "syncStateNotFound", SYNC_STATE_NOT_FOUND)
            pages = self._layout(self._changes_since(token.options, token.seq))
            return self._page(Round(token.options, pages, self.seq))
        options = self._options(kind, request)
        if isinstance(options, httpx2.Response):
            return options
        if params.get("$deltatoken") == "latest":
            return self._page(Round(options, [[]], self.seq))
        return self._page(Round(options, self._layout(self._initial(options)), self.seq))

    def _options(self, kind: str, request: httpx2.Request) -> Options | httpx2.Response:
        fake = self.fake
        params = request.url.params
        for refused in ("$top", "$orderby", "$expand", "$skip", "$search"):
            if refused in params:
                return fake.error(
                    400, "Request_UnsupportedQuery", f"The query option {refused} is not supported on delta."
                )  # [assumed] wording
        select: tuple[str, ...] | None = None
        if "$select" in params:
            select = tuple(s.strip() for s in params["$select"].split(",") if s.strip())
            from tests.fakes.entra import GROUP_PROPERTIES, USER_PROPERTIES

            known = {*USER_PROPERTIES, "manager"} if kind == "users" else {*GROUP_PROPERTIES, "members"}
            unknown = [s for s in select if s not in known]
            if unknown:
                type_name = "user" if kind == "users" else "group"
                return fake.error(
                    400,
                    "Request_BadRequest",
                    f"Could not find a property named '{unknown[0]}' on type 'microsoft.graph.{type_name}'.",
                )
        ids: frozenset[str] | None = None
        if "$filter" in params:
            found = [_ID_EQ.match(part.strip()) for part in params["$filter"].split(" or ")]
            if not all(found) or len(found) > 50:
                return fake.error(
                    400, "Request_UnsupportedQuery", "Delta supports $filter only as id eq '...' for up to 50 ids."
                )
            ids = frozenset(m.group(1) for m in found if m)
        minimal = "return=minimal" in request.headers.get("prefer", "")
        return Options(kind, select, ids, minimal)

    def _page(self, current: Round) -> httpx2.Response:
        fake = self.fake
        charged = fake.charge(1)
        if isinstance(charged, httpx2.Response):
            return charged
        kind = current.options.kind
        page, rest = current.pages[0], current.pages[1:]
        body: dict[str, Any] = {"@odata.context": f"{fake.graph_url}/v1.0/$metadata#{kind}"}
        base = f"{fake.graph_url}/v1.0/{kind}/delta"
        if rest:
            key = secrets.token_urlsafe(24)
            self.rounds[key] = Round(current.options, rest, current.seq)
            body["@odata.nextLink"] = str(httpx2.URL(base, params={"$skiptoken": key}))
        else:
            key = secrets.token_urlsafe(24)
            self.tokens[key] = Token(current.options, current.seq, fake.now, self.epochs[kind])
            body["@odata.deltaLink"] = str(httpx2.URL(base, params={"$deltatoken": key}))
        body["value"] = page
        return httpx2.Response(200, json=body, headers=charged)

    # -- what a round returns --------------------------------------------------------------------------

    def _wanted(self, options: Options, object_id: str) -> bool:
        return options.ids is None or object_id in options.ids

    def _initial(self, options: Options) -> list[dict[str, Any]]:
        fake = self.fake
        kind_type = "user" if options.kind == "users" else "group"
        entries = []
        for obj in sorted(fake.objects.values(), key=lambda o: o.id):
            if obj.type != kind_type or not self._wanted(options, obj.id):
                continue
            entry = self._properties(obj, options, None)
            if options.kind == "groups" and self._members_tracked(options):
                entry["members@delta"] = [
                    {"@odata.type": f"#microsoft.graph.{fake.objects[m].type}", "id": m}
                    for m in obj.members
                    if m in fake.objects
                ]
            entries.append(entry)
        return entries

    @staticmethod
    def _members_tracked(options: Options) -> bool:
        return options.select is None or "members" in options.select

    def _properties(self, obj: Any, options: Options, changed: frozenset[str] | None) -> dict[str, Any]:
        """The object's tracked properties (only ``changed`` ones with return=minimal)."""
        from tests.fakes.entra import GROUP_PROPERTIES, USER_DEFAULT

        default = USER_DEFAULT if options.kind == "users" else GROUP_PROPERTIES
        names = [n for n in (options.select or default) if n not in {"members", "manager"}]
        if changed is not None and options.minimal and "*" not in changed:
            names = [n for n in names if n in changed]
        entry: dict[str, Any] = {"id": obj.id}
        entry.update({n: obj.props.get(n) for n in names if n != "id"})
        manager_changed = changed is None or "*" in changed or "manager" in changed
        if options.kind == "users" and options.select and "manager" in options.select and manager_changed:
            entry["manager@delta"] = (
                [{"@odata.type": "#microsoft.graph.user", "id": obj.manager}] if obj.manager else []
            )  # [assumed] shape of a cleared manager: an empty list
        return entry

    def _changes_since(self, options: Options, seq: int) -> list[dict[str, Any]]:
        fake = self.fake
        fields: dict[str, set[str]] = {}
        removed: dict[str, str] = {}
        for change in self.changes:
            if change.seq <= seq or change.kind != options.kind or not self._wanted(options, change.id):
                continue
            fields.setdefault(change.id, set()).update(change.fields)
            if change.removed is not None:
                removed[change.id] = change.removed
            else:
                removed.pop(change.id, None)
        members: dict[str, dict[str, MemberEvent]] = {}
        if options.kind == "groups" and self._members_tracked(options):
            for event in self.events:
                if event.seq > seq and self._wanted(options, event.group):
                    members.setdefault(event.group, {})[event.member] = event
        tracked = set(options.select or ()) - {"members"} if options.select else None
        entries: list[dict[str, Any]] = []
        for object_id in sorted({*fields, *members}):
            if object_id not in fake.objects:
                if object_id in removed:
                    entries.append({"id": object_id, "@removed": {"reason": removed[object_id]}})
                continue
            changed = frozenset(fields.get(object_id, ()))
            interesting = "*" in changed or (tracked is None and bool(changed)) or bool(changed & (tracked or set()))
            entry: dict[str, Any]
            if interesting:
                entry = self._properties(fake.objects[object_id], options, changed)
            elif object_id in members:
                entry = {"id": object_id}
            else:
                continue
            if object_id in members:
                slice_ = []
                for member, event in members[object_id].items():
                    item: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{event.member_type}", "id": member}
                    if not event.added:
                        item["@removed"] = {"reason": "deleted"}
                    slice_.append(item)
                entry["members@delta"] = slice_
            entries.append(entry)
        return entries

    def _layout(self, entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
        """Pages of at most :attr:`page_size` entries; a large group's members are split into
        slices, at most one slice of a group per page."""
        chunks: list[dict[str, Any]] = []
        for entry in entries:
            members = entry.get("members@delta")
            if members is None or len(members) <= self.member_slice:
                chunks.append(entry)
                continue
            for start in range(0, len(members), self.member_slice):
                part = members[start : start + self.member_slice]
                head = entry if start == 0 else {"id": entry["id"]}
                chunks.append({**head, "members@delta": part})
        pages: list[list[dict[str, Any]]] = []
        while chunks:
            page: list[dict[str, Any]] = []
            on_page: set[str] = set()
            left: list[dict[str, Any]] = []
            for chunk in chunks:
                if len(page) < self.page_size and chunk["id"] not in on_page:
                    page.append(chunk)
                    on_page.add(chunk["id"])
                else:
                    left.append(chunk)
            pages.append(page)
            chunks = left
        return pages or [[]]
