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

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from syncd.model import PermissionSetSpec


__all__ = ["ApplicationRule", "AssignmentRule", "AwsConfig", "CustomerPolicyRef", "PermissionSetConfig"]

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


# -- [[permission_sets]] ---------------------------------------------------------------------

POLICY_DOCUMENT_MAX = 32_768
"""Longest inline policy CreatePermissionSet's PutInlinePolicyToPermissionSet takes
(PermissionSetPolicyDocument, 1–32,768 characters, sso-admin API reference)."""

POLICIES_PER_PERMISSION_SET = 10
"""AWS managed plus customer managed policies on one permission set: Identity Center's default
quota (https://docs.aws.amazon.com/singlesignon/latest/userguide/limits.html); more is refused."""

TAGS_PER_PERMISSION_SET = 50
"""Tags one resource may carry (TagList, sso-admin API reference)."""

OWNER_TAG = ("syncd:managed", "true")
"""The tag syncd puts on the permission sets it creates, so people can see which ones are its own.
Ownership itself is kept in the cache (the tag can be edited by anyone)."""

MANAGED_POLICY_ARN = re.compile(
    r"arn:aws(-[a-z]{1,5}){0,3}:iam::aws:policy((/[A-Za-z0-9.,+@=_-]+)*)/([A-Za-z0-9.,+=@_-]+)"
)
"""An AWS managed policy ARN (ManagedPolicyArn, sso-admin API reference)."""

MANAGED_POLICY_NAME = re.compile(r"([A-Za-z0-9.,+@=_-]+/)*[A-Za-z0-9.,+=@_-]+")
"""An AWS managed policy name, with its path if it has one (``job-function/ViewOnlyAccess``)."""

CUSTOMER_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}")
CUSTOMER_POLICY_PATH = re.compile(r"((/[A-Za-z0-9.,+@=_-]+)*)/")
DESCRIPTION = re.compile(r"[\t\n\r\x20-\x7e\xa1-\xff]{1,700}")
RELAY_STATE = re.compile(r"[a-zA-Z0-9&$@#\\/%?=~\-_'\"|!:,.;*+\[\] (){}]{1,240}")
TAG_TEXT = re.compile(r"[\w\s.:/=+\-@]*")
_SESSION = re.compile(r"(?:PT)?(?:(\d+)[Hh])?(?:(\d+)[Mm])?", re.IGNORECASE)


def managed_policy_arn(ref: str) -> str:
    """``AmazonS3FullAccess`` → ``arn:aws:iam::aws:policy/AmazonS3FullAccess``; an ARN stays as it is."""
    return ref if ref.startswith("arn:") else f"arn:aws:iam::aws:policy/{ref}"


def session_duration(value: str) -> str:
    """``8h``, ``90m``, ``1h30m`` or ISO 8601 ``PT8H`` → ISO 8601 (``PT8H``, ``PT1H30M``).

    Identity Center takes 1 to 12 hours
    (https://docs.aws.amazon.com/singlesignon/latest/userguide/howtosessionduration.html).
    """
    match = _SESSION.fullmatch(value.strip())
    if not value.strip() or match is None or not any(match.groups()):
        raise ValueError(f"{value!r} is not a session duration; write it like '8h', '90m' or 'PT8H'")
    minutes = int(match.group(1) or 0) * 60 + int(match.group(2) or 0)
    if not 60 <= minutes <= 720:
        raise ValueError(f"{value!r}: Identity Center allows session durations from 1 to 12 hours")
    hours, rest = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{rest}M" if rest else "")


def policy_document(value: Any, where: str) -> str:
    """An inline policy as the compact JSON text syncd sends; ValueError naming the rule it breaks."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a JSON object (a policy document), not {type(value).__name__}")
    if "Statement" not in value:
        raise ValueError(f"{where} has no Statement; an IAM policy document needs one")
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    if len(text) > POLICY_DOCUMENT_MAX:
        raise ValueError(
            f"{where} is {len(text):,} characters without spaces; AWS takes at most {POLICY_DOCUMENT_MAX:,}"
            " (split it into customer managed policies)"
        )
    return text


def _is_json_text(value: Any) -> bool:
    """Whether an ``inline_policy`` string is the policy itself rather than a file's path."""
    return isinstance(value, str) and value.lstrip().startswith("{")


class CustomerPolicyRef(BaseModel):
    """A customer managed policy by name and path; it must exist in every account the set reaches."""

    model_config = ConfigDict(extra="forbid")

    name: str
    path: str = "/"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not CUSTOMER_POLICY_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not an IAM policy name (1–128 letters, digits or +=,.@_-)")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not CUSTOMER_POLICY_PATH.fullmatch(value):
            raise ValueError(f"{value!r} is not an IAM path; it starts and ends with '/', like '/' or '/team/'")
        return value

    def pair(self) -> tuple[str, str]:
        """(name, path), as the spec holds it."""
        return (self.name, self.path)


class PermissionSetConfig(BaseModel):
    """One ``[[permission_sets]]`` table: a permission set syncd creates and keeps as written.

    ``inline_policy`` is a TOML table, JSON text, or the path of a JSON file (relative paths are
    read from the config file's directory; :meth:`read_inline_policy` reads it at load).
    ``adopt = true`` takes over a permission set of the same name that syncd did not create.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = None
    session_duration: str = "PT1H"
    relay_state: str | None = None
    managed_policies: list[str] = []
    customer_managed_policies: list[CustomerPolicyRef] = []
    inline_policy: str | dict[str, Any] | None = None
    permissions_boundary: str | CustomerPolicyRef | None = None
    tags: dict[str, str] = {}
    adopt: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PERMISSION_SET_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a permission set name: 1–32 letters, digits or +=,.@_-")
        return value

    @field_validator("description")
    @classmethod
    def _description(cls, value: str | None) -> str | None:
        if value is not None and not DESCRIPTION.fullmatch(value):
            raise ValueError("must be 1–700 characters of Latin-1 text (AWS refuses other characters)")
        return value

    @field_validator("session_duration", mode="before")
    @classmethod
    def _session(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            raise ValueError("write the duration with its unit, like '8h' (a bare number is ambiguous)")
        return session_duration(str(value))

    @field_validator("relay_state")
    @classmethod
    def _relay_state(cls, value: str | None) -> str | None:
        if value is not None and not RELAY_STATE.fullmatch(value):
            raise ValueError("must be a URL of 1–240 characters (the console's relay state)")
        return value

    @field_validator("managed_policies")
    @classmethod
    def _managed(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not (MANAGED_POLICY_ARN.fullmatch(v) or MANAGED_POLICY_NAME.fullmatch(v))]
        if bad:
            raise ValueError(
                f"{', '.join(map(repr, bad))}: write an AWS managed policy name like 'AmazonS3FullAccess' or its ARN"
                " (customer managed policies go in customer_managed_policies)"
            )
        return list(dict.fromkeys(managed_policy_arn(v) for v in value))

    @field_validator("permissions_boundary")
    @classmethod
    def _boundary(cls, value: str | CustomerPolicyRef | None) -> str | CustomerPolicyRef | None:
        if isinstance(value, str):
            if not (MANAGED_POLICY_ARN.fullmatch(value) or MANAGED_POLICY_NAME.fullmatch(value)):
                raise ValueError(
                    f"{value!r}: write an AWS managed policy name or ARN, or a table {{ name = ..., path = ... }}"
                    " for a customer managed policy"
                )
            return managed_policy_arn(value)
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) + 1 > TAGS_PER_PERMISSION_SET:
            raise ValueError(f"at most {TAGS_PER_PERMISSION_SET - 1} tags (syncd adds {OWNER_TAG[0]!r})")
        for key, text in value.items():
            if not 1 <= len(key) <= 128 or not TAG_TEXT.fullmatch(key) or key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r}: 1–128 letters, digits, spaces or _.:/=+-@, not starting aws:")
            if len(text) > 256 or not TAG_TEXT.fullmatch(text):
                raise ValueError(f"tag {key!r}: a value is at most 256 letters, digits, spaces or _.:/=+-@")
        if OWNER_TAG[0] in value:
            raise ValueError(f"{OWNER_TAG[0]!r} is syncd's own tag; use another key")
        return value

    @model_validator(mode="after")
    def _quota(self) -> PermissionSetConfig:
        count = len(self.managed_policies) + len(self.customer_managed_policies)
        if count > POLICIES_PER_PERMISSION_SET:
            raise ValueError(
                f"{count} managed and customer managed policies; a permission set takes at most"
                f" {POLICIES_PER_PERMISSION_SET} (Identity Center's quota): combine some into an inline policy"
            )
        if isinstance(self.inline_policy, dict) or _is_json_text(self.inline_policy):
            policy_document(self.inline_policy, "inline_policy")
        return self

    def read_inline_policy(self, base: Path) -> None:
        """Replace a file path in ``inline_policy`` by the file's JSON; ValueError saying what is wrong."""
        if not isinstance(self.inline_policy, str) or _is_json_text(self.inline_policy):
            return
        path = Path(self.inline_policy).expanduser()
        if not path.is_absolute():
            path = base / path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"inline_policy: cannot read {path}: {exc.__class__.__name__}: {exc}") from None
        self.inline_policy = json.loads(policy_document(text, f"inline_policy ({path})"))

    def spec(self) -> PermissionSetSpec:
        """What AWS should hold for this permission set (syncd's own tag included)."""
        inline = None if self.inline_policy is None else policy_document(self.inline_policy, "inline_policy")
        boundary: str | tuple[str, str] | None
        boundary = (
            self.permissions_boundary.pair()
            if isinstance(self.permissions_boundary, CustomerPolicyRef)
            else (self.permissions_boundary)
        )
        return PermissionSetSpec(
            name=self.name,
            description=self.description,
            session_duration=self.session_duration,
            relay_state=self.relay_state,
            managed_policies=frozenset(self.managed_policies),
            customer_managed_policies=frozenset(p.pair() for p in self.customer_managed_policies),
            inline_policy=inline,
            permissions_boundary=boundary,
            tags=tuple(sorted({**self.tags, OWNER_TAG[0]: OWNER_TAG[1]}.items())),
        )


# -- [[applications]] ------------------------------------------------------------------------

APPLICATION_ARN = re.compile(
    r"arn:aws(-[a-z]{1,5}){0,3}:sso::\d{12}:application/(sso)?ins-[a-zA-Z0-9-.]{16}/apl-[a-zA-Z0-9]{16}"
)
"""An Identity Center application ARN (ApplicationArn, sso-admin API reference)."""


class ApplicationRule(BaseModel):
    """One ``[[applications]]`` table: the synced groups matching ``group`` may use ``application``.

    ``application`` is the application's ARN or its name as the console shows it; ``group`` a
    group name or a glob matched case-insensitively like ``filters.groups``.
    """

    model_config = ConfigDict(extra="forbid")

    application: str
    group: str

    @field_validator("application")
    @classmethod
    def _application(cls, value: str) -> str:
        if value.startswith("arn:") and not APPLICATION_ARN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an application ARN; it looks like"
                " arn:aws:sso::123456789012:application/ssoins-0123456789abcdef/apl-0123456789abcdef,"
                " or write the application's name"
            )
        if not value.strip() or (len(value) > 100 and not value.startswith("arn:")):
            raise ValueError("write the application's name (1–100 characters) or its ARN")
        return value

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty; write a group name or a glob like sales-*")
        return value

    def describe(self) -> str:
        """The rule in a few words, for plans and errors."""
        return f"group {self.group!r} → application {self.application}"
