"""Users and groups out of LDAP entries, and member DNs resolved to them. Pure: no I/O.

A group's ``member`` values are DNs (RFC 4519 §2.17); they are resolved against the users and
groups read in the same run, never with one search per member. A DN that is neither is
counted: ``outside`` when it is not under any base (someone in another OU, a deleted user's
dangling reference), ``unmatched`` when it is under a user base but not one of the users the
filter selects (a computer, a contact, a service account filtered out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from connectors.ldap.conn import Entry
from connectors.ldap.settings import LdapSettings
from connectors.ldap.values import (
    FILETIME_MAX,
    dn_key,
    filetime_epoch,
    first_text,
    guid_text,
    under,
    values_of,
)
from syncd.model import SkipKind, Skipped


__all__ = [
    "GroupRecord",
    "Index",
    "Resolution",
    "UserRecord",
    "account_expiry",
    "group_record",
    "resolve_members",
    "user_record",
]

ACCOUNTDISABLE = 0x2  # userAccountControl bit (MS-ADTS §2.2.16)
ACCOUNT_EXPIRES = "accountExpires"  # https://learn.microsoft.com/windows/win32/adschema/a-accountexpires
ENTERPRISE_FIELDS = ("employee_number", "cost_center", "organization", "division", "department")


@dataclass(slots=True)
class UserRecord:
    """A user as read: its stable id, DN, the fields syncd sends, and its change marker.

    ``active`` is what the entry says now; ``expires`` (AD's accountExpires, epoch seconds, None
    for never) is compared with the clock each time the user is handed on, since an account
    expires without any change to its entry. ``unreadable``: attributes whose value made no sense.
    """

    id: str
    dn: str
    user_name: str | None
    email: str | None
    given_name: str | None
    family_name: str | None
    display_name: str | None
    active: bool
    enterprise: dict[str, str] = field(default_factory=dict)
    manager_dn: str | None = None
    uid: str | None = None
    member_of: list[str] = field(default_factory=list)  # AD's memberOf, when asked for
    expires: float | None = None
    unreadable: tuple[str, ...] = ()


@dataclass(slots=True)
class GroupRecord:
    """A group as read: id, DN, name, and its members still as DNs (and posix memberUid values)."""

    id: str
    dn: str
    name: str
    description: str | None
    member_dns: list[str] = field(default_factory=list)
    member_uids: list[str] = field(default_factory=list)

    @property
    def members(self) -> list[str]:
        """Member DNs, then posix members as ``memberUid:<uid>``."""
        return [*self.member_dns, *(UID_PREFIX + uid for uid in self.member_uids)]


def entry_id(entry: Entry, settings: LdapSettings) -> str | None:
    """The stable id: AD's objectGUID as a GUID string, else the id attribute's text (entryUUID)."""
    name = settings.attribute("id")
    if not name:
        return None
    if name.casefold() == "objectguid":
        raw = values_of(entry, name)
        return guid_text(raw[0]) if raw and len(raw[0]) == 16 else None
    return first_text(entry, name)


def user_attributes(settings: LdapSettings) -> list[str]:
    """The attributes a user search asks for."""
    fields = ["id", "user_name", "email", "given_name", "family_name", "display_name", "manager", "uid"]
    names = [settings.attribute(f) for f in (*fields, *ENTERPRISE_FIELDS)]
    extra = ["userAccountControl", ACCOUNT_EXPIRES] if settings.preset == "ad" else ["pwdAccountLockedTime"]
    return _unique([n for n in names if n] + extra + [settings.defaults.change_attribute])


def group_attributes(settings: LdapSettings) -> list[str]:
    """The attributes a group search asks for."""
    names = [settings.attribute("id"), settings.attribute("group_name"), settings.attribute("group_description")]
    names += list(settings.member_attributes)
    if settings.posix_groups:
        names.append("memberUid")
    return _unique([n for n in names if n] + [settings.defaults.change_attribute])


def _unique(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for name in names:
        if name.casefold() not in seen:
            seen.add(name.casefold())
            out.append(name)
    return out


def account_expiry(entry: Entry) -> float | None:
    """When an AD account expires, in epoch seconds, or None when it never does.

    ``accountExpires`` is a FILETIME (100 ns intervals since 1601-01-01 UTC) written as a decimal;
    0 and 0x7FFFFFFFFFFFFFFF mean never, as does no value (Account-Expires attribute,
    https://learn.microsoft.com/windows/win32/adschema/a-accountexpires). ValueError when the
    value is not a FILETIME.
    """
    text = first_text(entry, ACCOUNT_EXPIRES)
    if text is None:
        return None
    moment = filetime_epoch(text)
    return None if int(text) in (0, FILETIME_MAX) else moment


def _ad_expiry(entry: Entry) -> tuple[float | None, tuple[str, ...]]:
    """The account's expiry, and the attributes that could not be read (for the read to log)."""
    try:
        return account_expiry(entry), ()
    except ValueError:
        # A value that is not a FILETIME (AD's Large Integer syntax never gives one; a proxy or
        # another server behind preset = "ad" might) cannot tell us when the account expires. It
        # is not taken as expired: deactivating people in Identity Center on a value nobody set to
        # mean that would lock them out by our misreading. Nor is it a claim that the account never
        # expires: no expiry is applied, the user stays as userAccountControl says (the DC checks
        # that at logon too), and the read names the users concerned, without the value.
        return None, (ACCOUNT_EXPIRES,)


def user_record(entry: Entry, settings: LdapSettings, disabled: frozenset[str]) -> UserRecord | Skipped:
    """A user entry as a record, or why it is skipped. ``disabled``: DN keys matched by disabled_filter."""
    user_id = entry_id(entry, settings)
    if not user_id:
        return Skipped(SkipKind.USER, entry.dn, f"the entry has no {settings.attribute('id')} (its stable id)")
    expires: float | None = None
    unreadable: tuple[str, ...] = ()
    if settings.preset == "ad":
        expires, unreadable = _ad_expiry(entry)
        uac = first_text(entry, "userAccountControl")
        active = not (uac is not None and uac.lstrip("-").isdigit() and int(uac) & ACCOUNTDISABLE)
    else:
        # ppolicy: pwdAccountLockedTime set means locked (draft-behera-ldap-password-policy §5.3.3).
        active = not values_of(entry, "pwdAccountLockedTime")
    if dn_key(entry.dn) in disabled:
        active = False
    enterprise = {f: text for f in ENTERPRISE_FIELDS if (text := first_text(entry, settings.attribute(f)))}
    return UserRecord(
        id=user_id,
        dn=entry.dn,
        user_name=first_text(entry, settings.attribute("user_name")),
        email=first_text(entry, settings.attribute("email")),
        given_name=first_text(entry, settings.attribute("given_name")),
        family_name=first_text(entry, settings.attribute("family_name")),
        display_name=first_text(entry, settings.attribute("display_name")),
        active=active,
        enterprise=enterprise,
        manager_dn=first_text(entry, settings.attribute("manager")),
        uid=first_text(entry, settings.attribute("uid")),
        member_of=[v.decode("utf-8", errors="replace") for v in values_of(entry, "memberOf")],
        expires=expires,
        unreadable=unreadable,
    )


def group_record(entry: Entry, settings: LdapSettings, members: Sequence[bytes]) -> GroupRecord | Skipped:
    """A group entry as a record (``members``: every member DN, ranges already fetched)."""
    group_id = entry_id(entry, settings)
    if not group_id:
        return Skipped(SkipKind.GROUP, entry.dn, f"the entry has no {settings.attribute('id')} (its stable id)")
    name = first_text(entry, settings.attribute("group_name"))
    if not name:
        return Skipped(SkipKind.GROUP, group_id, f"the group {entry.dn} has no {settings.attribute('group_name')}")
    dns = []
    for raw in members:
        text = raw.decode("utf-8", errors="replace").strip()
        # groupOfUniqueNames values may carry an optional "#'0101'B" UID part (RFC 4517 §3.3.21).
        if "#'" in text and text.endswith("'B"):
            text = text[: text.rindex("#'")]
        if text:  # an empty DN stands in for "no members" (groupOfNames MUSTs one)
            dns.append(text)
    uids = [v.decode("utf-8", errors="replace").strip() for v in values_of(entry, "memberUid")]
    return GroupRecord(
        id=group_id,
        dn=entry.dn,
        name=name,
        description=first_text(entry, settings.attribute("group_description")),
        member_dns=dns,
        member_uids=[u for u in uids if u],
    )


UID_PREFIX = "memberUid:"  # a pending posixGroup member, kept beside pending DNs (a DN always has "=")


@dataclass(slots=True)
class Resolution:
    """A group's members resolved: user ids, nested group ids, and the members that were neither
    (``pending``: their DNs, or ``memberUid:<uid>``; tried again on later reads)."""

    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    outside: int = 0
    unmatched: int = 0


@dataclass(frozen=True, slots=True)
class Index:
    """Users and groups by DN key (:func:`dn_key`), and users by folded uid."""

    users_by_dn: Mapping[str, str]
    groups_by_dn: Mapping[str, str]
    users_by_uid: Mapping[str, str]


def resolve_members(
    group_id: str, members: Iterable[str], index: Index, settings: LdapSettings, out: Resolution | None = None
) -> Resolution:
    """Members (DNs, or ``memberUid:<uid>``) → user ids and nested group ids, added to ``out``."""
    out = out or Resolution()
    seen = {*out.users, *out.groups}
    for member in members:
        if member.startswith(UID_PREFIX):
            found = index.users_by_uid.get(member[len(UID_PREFIX) :].casefold())
            if found is None:
                out.outside += 1
                out.pending.append(member)
                continue
            target, bucket = found, out.users
        else:
            key = dn_key(member)
            if key in index.users_by_dn:
                target, bucket = index.users_by_dn[key], out.users
            elif key in index.groups_by_dn and settings.nesting == "expand":
                target, bucket = index.groups_by_dn[key], out.groups
            elif key in index.groups_by_dn:
                continue  # nesting = "none": a nested group adds no one
            else:
                if under(member, settings.user_base) or under(member, settings.group_base):
                    out.unmatched += 1
                else:
                    out.outside += 1
                out.pending.append(member)
                continue
        if target not in seen and target != group_id:
            seen.add(target)
            bucket.append(target)
    return out
