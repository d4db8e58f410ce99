"""``[source.ldap]``: where the directory is, how to bind, what to read, and each preset's defaults.

Two presets carry a directory's facts; every one of them can be overridden:

* ``ad`` (Active Directory): users ``(&(objectCategory=person)(objectClass=user))``, userName
  from ``userPrincipalName``, id ``objectGUID``, disabled when ``userAccountControl`` has bit 0x2
  (ACCOUNTDISABLE, MS-ADTS §2.2.16) or once ``accountExpires`` has passed (checked on every read,
  changed entry or not), groups ``(objectClass=group)``, changes by ``uSNChanged``.
* ``openldap``: users ``(objectClass=inetOrgPerson)``, userName from ``mail``, id ``entryUUID``
  (RFC 4530), disabled when ppolicy's ``pwdAccountLockedTime`` is set (draft-behera-ldap-password-policy
  §5.3.3), groups ``groupOfNames``/``groupOfUniqueNames`` (RFC 4519 §3.5, §3.6), changes by
  ``modifyTimestamp`` (RFC 4512 §3.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from syncd.durations import Duration
from syncd.secrets import SecretPassword


__all__ = ["PRESETS", "AttributeMap", "LdapSettings", "Preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    """A directory's defaults: filters, attribute names, how a disabled user shows, what marks a change."""

    user_filter: str
    group_filter: str
    attributes: dict[str, str | None]
    member_attributes: tuple[str, ...]
    change_attribute: str  # "uSNChanged" or "modifyTimestamp"


# Enterprise fields (syncd.model.ENTERPRISE_ATTRIBUTES) and the source attribute for each.
PRESETS = {
    "ad": Preset(
        user_filter="(&(objectCategory=person)(objectClass=user))",
        group_filter="(objectClass=group)",
        attributes={
            "id": "objectGUID",
            "user_name": "userPrincipalName",
            "email": "mail",
            "given_name": "givenName",
            "family_name": "sn",
            "display_name": "displayName",
            "group_name": "cn",
            "group_description": "description",
            "employee_number": "employeeID",
            "cost_center": None,
            "organization": "company",
            "division": "division",
            "department": "department",
            "manager": "manager",
            "uid": None,
        },
        member_attributes=("member",),
        change_attribute="uSNChanged",
    ),
    "openldap": Preset(
        user_filter="(objectClass=inetOrgPerson)",
        group_filter="(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
        attributes={
            "id": "entryUUID",
            "user_name": "mail",
            "email": "mail",
            "given_name": "givenName",
            "family_name": "sn",
            "display_name": "displayName",
            "group_name": "cn",
            "group_description": "description",
            "employee_number": "employeeNumber",
            "cost_center": None,
            "organization": "o",
            "division": None,
            "department": "departmentNumber",
            "manager": "manager",
            "uid": "uid",
        },
        member_attributes=("member", "uniqueMember"),
        change_attribute="modifyTimestamp",
    ),
}


class AttributeMap(BaseModel):
    """``[source.ldap.attributes]``: the directory attribute each field is read from (preset's by default).

    Set a field to ``""`` to read nothing for it. ``member`` replaces the preset's member
    attributes; ``uid`` is what a posixGroup's ``memberUid`` values are matched against.
    """

    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    user_name: str | None = None
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    display_name: str | None = None
    group_name: str | None = None
    group_description: str | None = None
    member: str | None = None
    uid: str | None = None
    employee_number: str | None = None
    cost_center: str | None = None
    organization: str | None = None
    division: str | None = None
    department: str | None = None
    manager: str | None = None


def _check_filter(value: str, key: str) -> str:
    text = value.strip()
    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError(f"{key} must be an LDAP filter in parentheses (RFC 4515), e.g. (objectClass=user)")
    depth = 0
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                break
    if depth != 0:
        raise ValueError(f"{key} has unbalanced parentheses: {text}")
    return text


def _check_dn(value: str, key: str) -> str:
    text = value.strip()
    parts = text.replace("\\,", "").split(",")
    if not text or any("=" not in p or not p.split("=", 1)[0].strip() for p in parts):
        raise ValueError(f"{key} entry {value!r} is not a DN (RFC 4514), e.g. OU=Staff,DC=corp,DC=example,DC=com")
    return text


class LdapSettings(BaseModel):
    """``[source.ldap]``: an Active Directory domain or an OpenLDAP (or FreeIPA, JumpCloud) directory."""

    # Validation errors must not echo the input: bind_password may be written inline.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    preset: Literal["ad", "openldap"] = Field(description='"ad" (Active Directory) or "openldap".')
    url: list[str] = Field(
        description="ldaps://host[:port], or ldap://host with start_tls = true; several URLs are tried in turn."
    )
    start_tls: bool = Field(False, description="Upgrade an ldap:// connection with StartTLS (RFC 4511 §4.14).")
    ca_file: Path | None = Field(None, description="PEM file of the CA(s) that signed the server certificate.")
    tls_verify: bool = Field(True, description="false accepts any certificate (a loud warning on every run).")
    allow_plaintext: bool = Field(False, description="Allow ldap:// without StartTLS (test servers only).")
    bind_dn: str | None = Field(None, description="The service account: a DN, or user@domain on AD.")
    bind_password: SecretPassword | None = Field(None, description="Its password (env:NAME or file:PATH).")
    user_base: list[str] = Field(description="DN(s) under which users are searched.")
    group_base: list[str] = Field(description="DN(s) under which groups are searched.")
    user_filter: str | None = Field(None, description="Users to read (the preset's by default).")
    group_filter: str | None = Field(None, description="Groups to read (the preset's by default).")
    disabled_filter: str | None = Field(None, description="Users matching it are synced inactive.")
    attributes: AttributeMap = Field(default_factory=AttributeMap)
    nesting: Literal["expand", "in_chain", "none"] = Field(
        "expand",
        description='"expand" member groups (cycle-safe), "in_chain" (AD: the DC flattens), or "none".',
    )
    posix_groups: bool = Field(False, description="Also read posixGroup memberUid (matched to users' uid).")
    page_size: int = Field(500, ge=1, le=10000, description="Entries per page (RFC 2696); AD caps at 1000.")
    timeout: Duration = Field(timedelta(seconds=30), description="Per connection and per request.")
    follow_referrals: bool = Field(False, description="Chase referrals to other servers.")
    incremental: bool = Field(True, description="Between full reads, read only entries changed since the last.")
    full_read_every: Duration = Field(timedelta(hours=24), description="A full read (which sees deletions) this often.")

    @field_validator("url", "user_base", "group_base", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _check_urls(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one URL, e.g. ldaps://dc1.corp.example.com")
        urls = []
        for url in value:
            text = url.strip().rstrip("/")
            scheme, _, rest = text.partition("://")
            if scheme.lower() not in {"ldap", "ldaps"} or not rest or "/" in rest:
                raise ValueError(f"{url!r} is not ldaps://host[:port] or ldap://host[:port]")
            urls.append(text)
        return urls

    @field_validator("user_base", "group_base")
    @classmethod
    def _check_bases(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one base DN")
        return [_check_dn(dn, "base") for dn in value]

    @field_validator("user_filter", "group_filter", "disabled_filter")
    @classmethod
    def _check_filters(cls, value: str | None) -> str | None:
        return None if value is None else _check_filter(value, "the filter")

    @field_validator("ca_file")
    @classmethod
    def _check_ca(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = value.expanduser()
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise ValueError(f"{path} cannot be read ({exc.strerror}); give the CA's PEM file") from None
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError(f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
        return path

    @field_validator("timeout", "full_read_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero, e.g. 30s")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LdapSettings:
        plain = [u for u in self.url if u.lower().startswith("ldap://")]
        if self.start_tls and len(plain) != len(self.url):
            raise ValueError("start_tls = true needs ldap:// URLs; ldaps:// is TLS already")
        if plain and not self.start_tls and not self.allow_plaintext:
            raise ValueError(
                f"{plain[0]} would send the bind password unencrypted: use ldaps:// (port 636), "
                "or set start_tls = true (allow_plaintext = true is for test servers only)"
            )
        if (self.bind_dn is None) != (self.bind_password is None):
            raise ValueError("set both bind_dn and bind_password (or neither, for an anonymous bind)")
        if self.nesting == "in_chain" and self.preset != "ad":
            raise ValueError('nesting = "in_chain" uses an Active Directory matching rule; it needs preset = "ad"')
        return self

    # -- what the preset and the overrides come to ----------------------------------------

    @property
    def defaults(self) -> Preset:
        """The preset's facts."""
        return PRESETS[self.preset]

    def attribute(self, field: str) -> str | None:
        """The directory attribute read for ``field`` (None: not read)."""
        override = getattr(self.attributes, field, None) if field != "member" else None
        if override is not None:
            return override or None
        return self.defaults.attributes.get(field)

    @property
    def member_attributes(self) -> tuple[str, ...]:
        """The attributes whose values are member DNs."""
        if self.attributes.member:
            return (self.attributes.member,)
        return self.defaults.member_attributes

    @property
    def effective_user_filter(self) -> str:
        """The user filter in force."""
        return self.user_filter or self.defaults.user_filter

    @property
    def effective_group_filter(self) -> str:
        """The group filter in force (posixGroup added when ``posix_groups``)."""
        base = self.group_filter or self.defaults.group_filter
        if self.posix_groups and self.group_filter is None:
            return f"(|{base}(objectClass=posixGroup))"
        return base
