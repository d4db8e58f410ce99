"""From what a source read to what Identity Center accepts: pure functions, no I/O.

Identity Center's rules (``docs/references.md`` §A.4, from the SCIM developer guide's
CreateUser page and the identitystore service model):

* userName, displayName, name.givenName and name.familyName are required, and the empty string
  counts as missing. We fill a missing one from what the record has: the display name from the
  names, the names from the display name or the email's local part, the userName from the email.
* userName: 1-128 characters of the Unicode classes L, M, S, N and P (no whitespace at all).
* other strings: 1-1024 characters of those classes plus tab, CR, LF, space and NBSP. A
  zero-width space (U+200B) fails that pattern, so format and control characters are removed
  (ssosync does the same in internal/google/client.go).
* userName, primary email and externalId are unique; userName is not caseExact, so two source
  users whose userNames differ only by case would collide with a 409: the second is skipped.
* group displayName is unique (409 "Duplicate GroupDisplayName").

A record that cannot be made valid is skipped with a reason; the rest of the run goes on.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import email_validator
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES, DOT_ATOM_TEXT, EMAIL_MAX_LENGTH
from pydantic import validate_email
from pydantic_core import PydanticCustomError

from syncd.memberset import MemberSet
from syncd.model import (
    ENTERPRISE_ATTRIBUTES,
    PERSONAL_ATTRIBUTES,
    Group,
    SkipKind,
    Skipped,
    Snapshot,
    SourceGroup,
    SourceRead,
    SourceUser,
    User,
)


USER_NAME_MAX = 128
TEXT_MAX = 1024
_TEXT_EXTRA = {"\t", "\r", "\n", " ", "\u00a0"}
_ALLOWED_CLASSES = ("L", "M", "S", "N", "P")


@dataclass(frozen=True, slots=True)
class Scope:
    """Which part of the directory a run manages (the ``[filters]`` config section).

    ``groups``: globs matched case-insensitively against group names (and against a group's
    email address where the source has one); None means all groups.
    ``users``: "members" keeps only users in at least one synced group; "all" keeps every user.
    """

    groups: tuple[str, ...] | None = None
    users: str = "members"

    def wants_group(self, name: str, email: str | None = None) -> bool:
        """Whether a group of this name (or this email address) is synced."""
        if self.groups is None:
            return True
        keys = [name.casefold()] + ([email.casefold()] if email else [])
        return any(fnmatch.fnmatchcase(key, pattern.casefold()) for pattern in self.groups for key in keys)


class InvalidRecord(ValueError):
    """Raised inside this module when a record cannot be made valid; becomes a ``Skipped``."""


def clean_text(value: str | None) -> str:
    """Strip characters Identity Center's text pattern rejects, and surrounding whitespace."""
    if not value:
        return ""
    if value.isascii() and value.isprintable():
        # Printable ASCII is letters, digits, punctuation, symbols and the space: all allowed.
        # The common case, and it keeps the very string (no copy per field per user).
        return value.strip()
    kept = [ch for ch in value if ch in _TEXT_EXTRA or unicodedata.category(ch).startswith(_ALLOWED_CLASSES)]
    return "".join(kept).strip()


def check_user_name(user_name: str) -> None:
    """Raise InvalidRecord unless ``user_name`` satisfies Identity Center's UserName pattern."""
    if not user_name:
        raise InvalidRecord("userName is empty and there is no email to take it from")
    if len(user_name) > USER_NAME_MAX:
        raise InvalidRecord(f"userName is {len(user_name)} characters long; Identity Center allows {USER_NAME_MAX}")
    if user_name.isascii() and user_name.isprintable() and " " not in user_name:
        return  # printable ASCII other than the space is all in the allowed classes
    for ch in user_name:
        if not unicodedata.category(ch).startswith(_ALLOWED_CLASSES):
            what = "whitespace" if ch.isspace() else f"the character U+{ord(ch):04X}"
            raise InvalidRecord(f"userName {user_name!r} contains {what}, which Identity Center rejects")


def _check_text(name: str, value: str) -> str:
    if not value:
        raise InvalidRecord(f"{name} is empty and cannot be derived from the record")
    if len(value) > TEXT_MAX:
        raise InvalidRecord(f"{name} is {len(value)} characters long; Identity Center allows {TEXT_MAX}")
    return value


# Syntax only: pydantic's email check (and scim2-models' EmailStr) never look the domain up, but
# email-validator also refuses RFC 6761 special-use names, and small companies' directories are
# full of corp.local and *.test addresses that Identity Center stores as text. The library's
# documented switch is this list (JoshData/python-email-validator, README "Options":
# SPECIAL_USE_DOMAIN_NAMES); ".internal" is not on it.
for _allowed in ("local", "test"):
    if _allowed in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        email_validator.SPECIAL_USE_DOMAIN_NAMES.remove(_allowed)


_PLAIN_DOMAIN = re.compile(r"[A-Za-z0-9.-]+\Z")
_CASE_INSENSITIVE_LOCAL = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


@functools.lru_cache(maxsize=4096)
def _domain_forms(domain: str) -> tuple[str, str] | None:
    """email-validator's normal and ASCII forms of ``domain``, or None when it refuses it.

    Asked of the library itself, with the same options as pydantic's EmailStr, once per domain:
    a directory has thousands of addresses and a handful of domains.
    """
    try:
        parts = email_validator.validate_email("x@" + domain, check_deliverability=False)
    except email_validator.EmailNotValidError:
        return None
    return parts.domain, parts.ascii_domain


def _plain_address(email: str) -> str | None:
    """What pydantic's EmailStr makes of a plain ASCII ``local@domain``, or None to ask it.

    For such an address email-validator keeps the local part as it is (a dot-atom, RFC 5322
    §3.2.3, that is not one of RFC 2142's case-insensitive mailbox names), and normalises the
    domain on its own; every length it checks is within 254 octets. Any other address (quoted,
    with a display name, internationalised, a domain literal, one the library would refuse or
    reword) gets None, and goes through the library whole.
    """
    local, at, domain = email.partition("@")
    if (
        not at
        or not email.isascii()
        or len(email) > EMAIL_MAX_LENGTH
        or not DOT_ATOM_TEXT.match(local)
        or not _PLAIN_DOMAIN.match(domain)
        or local.lower() in _CASE_INSENSITIVE_LOCAL
    ):
        return None
    forms = _domain_forms(domain)
    if forms is None:
        return None
    normal, ascii_domain = forms
    normalised = local + "@" + normal
    if max(len(normalised.encode("utf-8")), len(local) + 1 + len(ascii_domain)) > EMAIL_MAX_LENGTH:
        return None
    return normalised


def normalise_email(email: str | None) -> str | None:
    """The address as scim2-models will send it (pydantic's EmailStr), or None when absent.

    Normalising here keeps the pushed value and the cached hash equal to what the SCIM client
    sends, so an address like ``Bob@Example.COM`` does not show up as a change on every run.
    A plain address takes a shortcut to the same answer (:func:`_plain_address`).
    """
    email = (email or "").strip()
    if not email:
        return None
    plain = _plain_address(email)
    if plain is not None:
        return email if plain == email else plain
    try:
        normalised = validate_email(email)[1]
    except PydanticCustomError as exc:
        raise InvalidRecord(f"email {email!r} is not a valid address ({exc.message()})") from None
    return email if normalised == email else normalised  # the same string when nothing changed


def _split_name(display_name: str) -> tuple[str, str]:
    parts = display_name.split()
    if len(parts) >= 2:
        return " ".join(parts[:-1]), parts[-1]
    if parts:
        return parts[0], parts[0]
    return "", ""


def _local_part_names(email: str | None, user_name: str) -> tuple[str, str]:
    local = (email or user_name).split("@", 1)[0]
    pieces = [p for p in local.replace("_", ".").replace("-", ".").split(".") if p]
    if len(pieces) >= 2:
        return pieces[0].capitalize(), pieces[-1].capitalize()
    return (local, local) if local else ("", "")


def normalise_user(raw: SourceUser, pairs: dict[tuple[str, str], tuple[str, str]] | None = None) -> User:
    """Make a source user valid for Identity Center, or raise InvalidRecord saying why not.

    ``pairs``, when given, keeps one copy of each enterprise (attribute, value) pair across
    the users normalised with it (100k users in a dozen departments share a dozen pairs).
    """
    if not raw.id:
        raise InvalidRecord("the record has no id")
    email = normalise_email(raw.email)
    user_name = (raw.user_name or "").strip() or (email or "")
    check_user_name(user_name)

    given, family = clean_text(raw.given_name), clean_text(raw.family_name)
    display = clean_text(raw.display_name)
    if not given or not family:
        derived = _split_name(display) if display else _local_part_names(email, user_name)
        given = given or derived[0]
        family = family or derived[1]
    if not display:
        display = " ".join(p for p in (given, family) if p) or user_name

    enterprise = tuple(
        sorted(
            (key, cleaned)
            for key, value in raw.enterprise.items()
            if key in ENTERPRISE_ATTRIBUTES and (cleaned := clean_text(value))
        )
    )
    if pairs is not None:
        enterprise = tuple(p if p[0] in PERSONAL_ATTRIBUTES else pairs.setdefault(p, p) for p in enterprise)
    return User(
        source_id=raw.id,
        user_name=user_name,
        display_name=_check_text("displayName", display),
        given_name=_check_text("name.givenName", given),
        family_name=_check_text("name.familyName", family),
        email=email,
        active=bool(raw.active),
        enterprise=enterprise,
    )


def _flatten(
    group_id: str,
    by_id: Mapping[str, SourceGroup],
    memo: dict[str, MemberSet],
) -> MemberSet:
    """The user ids in ``group_id`` and every group nested below it; safe against cycles.

    Iterative, so a deep chain of nested groups cannot exhaust Python's recursion limit.
    """
    if group_id in memo:
        return memo[group_id]
    seen: set[str] = set()
    members: set[str] = set()
    stack = [group_id]
    while stack:
        gid = stack.pop()
        if gid in seen:
            continue
        seen.add(gid)
        if gid in memo:
            members.update(memo[gid])
            continue
        group = by_id.get(gid)
        if group is None:
            continue
        members.update(group.members)
        stack.extend(group.groups)
    result = MemberSet(members)
    memo[group_id] = result
    return result


def _first_unique(
    records: Iterable[tuple[str, str]],
    kind: SkipKind,
    what: str,
    skipped: list[Skipped],
    prefer: AbstractSet[str] = frozenset(),
) -> set[str]:
    """Ids whose key is not the first of its case-folded value: they are skipped.

    The first is the smallest id, or the smallest of those in ``prefer`` when one of them has it;
    the others are skipped in that order too. One pass, no sort: a run normalises 100k users in
    every round of writes during the read, and sorting them (a key tuple each) cost tens of MB.
    Only the keys that clash are gathered, to be decided at the end.
    """

    def rank(record: tuple[str, str]) -> tuple[bool, str, str]:
        return (record[0] not in prefer, *record)

    owner: dict[str, tuple[str, str]] = {}
    clashes: dict[str, list[tuple[str, str]]] = {}
    for record in records:
        key = record[1]
        folded = key.casefold()
        if folded == key:
            folded = key  # the record's own string, not a copy per user
        held = owner.get(folded)
        if held is None:
            owner[folded] = record
        else:
            clashes.setdefault(folded, [held]).append(record)
    losers: list[tuple[str, str, str]] = []  # (loser id, its key, the winner's id)
    for contenders in clashes.values():
        first, *rest = sorted(contenders, key=rank)
        losers.extend((record_id, key, first[0]) for record_id, key in rest)
    losers.sort(key=lambda loser: rank((loser[0], loser[1])))
    for record_id, key, winner in losers:
        skipped.append(Skipped(kind, record_id, f"{what} {key!r} is already used by {kind} {winner}"))
    return {record_id for record_id, _, _ in losers}


def _taken(read: SourceRead) -> Iterator[SourceUser]:
    """``read.users`` in order, each let go as the next is taken: ``read.users`` is left empty."""
    pending = read.users
    read.users = []
    pending.reverse()
    while pending:
        yield pending.pop()


def build_snapshot(
    read: SourceRead, scope: Scope, *, prefer: AbstractSet[str] = frozenset(), consume: bool = False
) -> Snapshot:
    """Normalise a source read into the Snapshot Identity Center should hold.

    Groups outside the scope are left out; their members still count through nesting when a
    synced group contains them. With ``users="members"`` only members of synced groups stay.
    Two users whose userNames (or emails) differ only by case: the one with the smallest source
    id is kept, unless only the other is in ``prefer`` (the engine passes the users Identity
    Center holds, those created while the source was read among them, :mod:`syncd.early`), which
    then wins; the loser is skipped. Identity Center would refuse the other's create anyway (409).

    ``consume``: take the users out of ``read.users`` as they are normalised, so that each
    source record is freed once its user is made (the run's final snapshot: 100k records are
    some 10 MB beside their users, at the run's peak); ``read.users`` is then empty.
    """
    skipped = list(read.skipped)

    users: dict[str, User] = {}
    pairs: dict[tuple[str, str], tuple[str, str]] = {}
    for raw in _taken(read) if consume else read.users:
        try:
            user = normalise_user(raw, pairs)
        except InvalidRecord as exc:
            skipped.append(Skipped(SkipKind.USER, raw.id or "?", str(exc)))
            continue
        if user.source_id in users:
            skipped.append(Skipped(SkipKind.USER, user.source_id, "the source returned this id twice"))
            continue
        users[user.source_id] = user

    by_id = {g.id: g for g in read.groups if g.id}
    memo: dict[str, MemberSet] = {}
    groups: dict[str, Group] = {}
    for raw_group in read.groups:
        name = clean_text(raw_group.name)
        if not raw_group.id:
            skipped.append(Skipped(SkipKind.GROUP, "?", "the record has no id"))
            continue
        if not name:
            skipped.append(Skipped(SkipKind.GROUP, raw_group.id, "the group has no name"))
            continue
        if len(name) > TEXT_MAX:
            skipped.append(
                Skipped(SkipKind.GROUP, raw_group.id, f"the name is {len(name)} characters; the limit is {TEXT_MAX}")
            )
            continue
        if not scope.wants_group(name, raw_group.email):
            continue
        members = _flatten(raw_group.id, by_id, memo)
        groups[raw_group.id] = Group(
            source_id=raw_group.id,
            display_name=name,
            description=clean_text(raw_group.description) or None,
            members=members,
        )

    for gid in _first_unique(
        ((g.source_id, g.display_name) for g in groups.values()), SkipKind.GROUP, "displayName", skipped
    ):
        del groups[gid]

    if scope.users == "members":
        wanted: set[str] = set()
        for group in groups.values():
            wanted.update(group.members)
        users = {uid: u for uid, u in users.items() if uid in wanted}

    for uid in _first_unique(
        ((u.source_id, u.user_name) for u in users.values()), SkipKind.USER, "userName", skipped, prefer
    ):
        del users[uid]
    for uid in _first_unique(
        ((u.source_id, u.email) for u in users.values() if u.email), SkipKind.USER, "email", skipped, prefer
    ):
        del users[uid]

    # Members that are not synced users (skipped, filtered, or unknown ids) are dropped here,
    # so the plan only ever sees memberships it can push.
    for gid, group in groups.items():
        kept = group.members & users.keys()
        if kept != group.members:
            groups[gid] = Group(group.source_id, group.display_name, group.description, kept)
    _resolve_managers(users)
    return Snapshot(users=users, groups=groups, skipped=skipped)


def _resolve_managers(users: dict[str, User]) -> None:
    """Make each user's ``manager`` the synced manager's source id, or drop it.

    Identity Center's manager is "the id of the SCIM resource representing the User's manager"
    (RFC 7643 §4.3, enterprise extension ``manager.value``): an Identity Center id, which the SCIM
    target puts in place of this source id when it sends the user. A connector may name the
    manager by source id (Google, Entra) or by userName (LDAP, a file export); a manager who is
    not synced (or a free-text name, as an Okta profile may hold) cannot be referenced and is left out.
    """
    by_name: dict[str, str] | None = None
    for uid, user in users.items():
        if not user.enterprise:
            continue
        values = dict(user.enterprise)
        manager = values.get("manager")
        if manager is None:
            continue
        if manager not in users:
            if by_name is None:
                by_name = {u.user_name.casefold(): u.source_id for u in users.values()}
            found = by_name.get(manager.casefold())
            if found is None or found == uid:
                del values["manager"]
            else:
                values["manager"] = found
        elif manager == uid:
            del values["manager"]
        if values.get("manager") != manager:
            kept = tuple((key, values[key]) for key, _ in user.enterprise if key in values)
            users[uid] = dataclasses.replace(user, enterprise=kept)
