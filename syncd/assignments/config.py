"""The ``[aws]`` table and the ``[[assignments]]`` rules of the configuration.

Two kinds of rule::

    [[assignments]]                      # explicit: a group (name or glob), a permission set, a target
    group = "aws-platform-*"
    permission_set = "AdministratorAccess"   # a name, or the permission set's ARN
    accounts = ["111111111111", "222222222222"]   # or ous = ["ou-ab12-cdef3456"], or all = true

    [[assignments]]                      # by naming convention: the group's name says it all
    pattern = '^aws-(?P<account>\\d{12})-(?P<permission_set>[\\w+=,.@-]+)$'

Only the shape is checked here; whether the permission sets, accounts and OUs exist is checked
against AWS at the start of each run (:mod:`syncd.assignments.resolve`), before any write.
Errors name the rule by its key, e.g. ``assignments.0.permission_set``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator


__all__ = ["AssignmentRule", "AwsConfig"]

ACCOUNT_ID = re.compile(r"\d{12}")
"""An AWS account id: exactly 12 digits (sso-admin TargetId [model:sso-admin], docs/references.md §B.1)."""

OU_ID = re.compile(r"ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}|r-[0-9a-z]{4,32}")
"""An OU id, or a root id (every account of the organisation) [model:organizations ParentId]."""

PERMISSION_SET_NAME = re.compile(r"[\w+=,.@-]{1,32}")
"""A permission set name: 1–32 of ``[\\w+=,.@-]`` (describe_permission_set Name, docs/references.md §B.1)."""

INSTANCE_ARN = re.compile(r"arn:aws(-[a-z]{1,5}){0,3}:sso:::instance/(sso)?ins-[a-zA-Z0-9-.]{16}")
"""The Identity Center instance ARN pattern of CreateAccountAssignment (its API reference page)."""

REQUIRED_GROUPS = ("account", "permission_set")


class AwsConfig(BaseModel):
    """``[aws]``: where the Identity Center instance is. Credentials come from boto3's standard chain.

    ``region`` defaults to boto3's own (``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile);
    ``instance_arn`` and ``identity_store_id`` are found with ``sso-admin list_instances`` when
    absent (there is one instance per account, docs/references.md §B.1). ``AWS_ENDPOINT_URL`` is honoured.
    """

    model_config = ConfigDict(extra="forbid")

    region: str | None = None
    instance_arn: str | None = None
    identity_store_id: str | None = None

    @field_validator("instance_arn")
    @classmethod
    def _instance_arn(cls, value: str | None) -> str | None:
        if value is not None and not INSTANCE_ARN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an Identity Center instance ARN; it looks like"
                " arn:aws:sso:::instance/ssoins-0123456789abcdef (aws sso-admin list-instances shows it),"
                " or leave it out to have syncd find it"
            )
        return value

    @field_validator("region", "identity_store_id")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is empty; set it or leave it out")
        return value


class AssignmentRule(BaseModel):
    """One ``[[assignments]]`` table.

    Explicit: ``group`` (a name, or a glob matched case-insensitively like ``filters.groups``),
    ``permission_set`` (a name or an ARN) and exactly one target: ``accounts`` (ids), ``ous``
    (OU or root ids; every account below them, nested OUs included) or ``all = true`` (every
    active account). By naming convention: ``pattern`` alone, a regular expression that must match
    a whole group name and has the named groups ``account`` (an account id or name) and
    ``permission_set`` (a permission set name).
    """

    model_config = ConfigDict(extra="forbid")

    group: str | None = None
    permission_set: str | None = None
    accounts: list[str] | None = None
    ous: list[str] | None = None
    all: bool = False
    pattern: str | None = None

    @property
    def kind(self) -> Literal["pattern", "accounts", "ous", "all"]:
        """Which kind of rule this is: by naming convention, or by its explicit target."""
        if self.pattern is not None:
            return "pattern"
        if self.accounts is not None:
            return "accounts"
        if self.ous is not None:
            return "ous"
        return "all"

    def describe(self) -> str:
        """The rule in a few words, for plans and errors."""
        if self.pattern is not None:
            return f"pattern {self.pattern!r}"
        target = {
            "accounts": f"accounts {', '.join(self.accounts or ())}",
            "ous": f"OUs {', '.join(self.ous or ())}",
            "all": "every active account",
        }[self.kind]
        return f"group {self.group!r} → {self.permission_set} on {target}"

    def compiled(self) -> re.Pattern[str]:
        """The compiled ``pattern`` (only for pattern rules)."""
        if self.pattern is None:
            raise TypeError("not a pattern rule")
        return re.compile(self.pattern)

    @field_validator("accounts", mode="before")
    @classmethod
    def _accounts_are_strings(cls, value: Any) -> Any:
        if isinstance(value, list) and any(isinstance(item, int) for item in value):
            raise ValueError(
                'write account ids as strings in quotes, like ["012345678901"]: as numbers they lose leading zeros'
            )
        return value

    @field_validator("accounts")
    @classmethod
    def _account_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("is empty; name at least one account id")
        bad = [v for v in value if not ACCOUNT_ID.fullmatch(v)]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))}: an account id is 12 digits")
        return list(dict.fromkeys(value))

    @field_validator("ous")
    @classmethod
    def _ou_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("is empty; name at least one OU id")
        bad = [v for v in value if not OU_ID.fullmatch(v)]
        if bad:
            raise ValueError(
                f"{', '.join(map(repr, bad))}: write OU ids like ou-ab12-cdef3456 (or a root id like r-ab12),"
                " not OU names"
            )
        return list(dict.fromkeys(value))

    @field_validator("permission_set")
    @classmethod
    def _permission_set(cls, value: str | None) -> str | None:
        if value is None or value.startswith("arn:") or PERMISSION_SET_NAME.fullmatch(value):
            return value
        raise ValueError(
            f"{value!r} is neither a permission set name (1–32 letters, digits or +=,.@_-) nor a permission set ARN"
        )

    @field_validator("group")
    @classmethod
    def _group(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is empty; write a group name or a glob like aws-*")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
        missing = [name for name in REQUIRED_GROUPS if name not in compiled.groupindex]
        if missing:
            raise ValueError(
                f"{value!r} has no named group {' or '.join(f'(?P<{m}>...)' for m in missing)}; a pattern names"
                r" both, like ^aws-(?P<account>\d{12})-(?P<permission_set>[\w+=,.@-]+)$"
            )
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> AssignmentRule:
        targets = [
            key for key, given in (("accounts", self.accounts), ("ous", self.ous), ("all", self.all or None)) if given
        ]
        if self.pattern is not None:
            extra = [key for key in ("group", "permission_set") if getattr(self, key) is not None] + targets
            if extra:
                raise ValueError(
                    f"a pattern rule takes nothing else, but {' and '.join(extra)} {'is' if len(extra) == 1 else 'are'}"
                    " set too;"
                    " its group names give the account and the permission set. Split it into two rules"
                )
            return self
        missing = [key for key in ("group", "permission_set") if getattr(self, key) is None]
        if missing:
            raise ValueError(
                f"{' and '.join(missing)} missing; a rule needs group, permission_set and one of accounts, ous or"
                " all = true (or a pattern alone)"
            )
        if len(targets) != 1:
            found = f"{' and '.join(targets)} are set" if targets else "none is set"
            raise ValueError(f"give exactly one target: accounts, ous or all = true ({found})")
        return self
