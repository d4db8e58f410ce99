"""Permission sets as code, the pure part: what to create, update, re-provision or delete.

Given the ``[[permission_sets]]`` tables, what AWS holds and what syncd owns (the cache), this
module decides; :mod:`syncd.assignments.manager` reads and writes. The rules:

* a permission set in the config that AWS does not hold is created (and recorded as syncd's);
* one that AWS holds and syncd owns is updated when it differs: only the calls that close the
  difference are made (:func:`steps`), and it is then re-provisioned to every account it is
  provisioned in, so the change reaches people (``ProvisionPermissionSet``; an edit alone does
  not, https://docs.aws.amazon.com/singlesignon/latest/userguide/howtoeditpermissionset.html);
* one that AWS holds and syncd does not own (Control Tower's ``AWSAdministratorAccess``, one made
  in the console) is never touched: the config must rename it, or say ``adopt = true``;
* one syncd created that left the config is deleted (if assignments still use it, the manager
  refuses before any write); one it adopted is handed back (forgotten, kept in AWS); one syncd
  owns that someone deleted is forgotten, or created again if the config still has it;
* accounts that do not run the latest version of an owned permission set (an earlier run updated
  it and stopped before provisioning) are provisioned again, so a cut-short run is finished.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.assignments.config import PermissionSetConfig
from syncd.changes import Action, PermissionSetStep
from syncd.model import PermissionSetChange, PermissionSetSpec


__all__ = [
    "PENDING",
    "Owned",
    "PermissionSetPlan",
    "Step",
    "differences",
    "pending_arn",
    "plan_permission_sets",
    "steps",
]

PENDING = "pending:"
"""Prefix of the stand-in ARN that a permission set created in this run has until it exists."""


def pending_arn(name: str) -> str:
    """The stand-in ARN of a permission set this run creates (``pending:NAME``)."""
    return PENDING + name


@dataclass(frozen=True, slots=True)
class Owned:
    """A permission set syncd owns, as the cache recorded it."""

    name: str
    arn: str
    origin: str = "created"


@dataclass(frozen=True, slots=True)
class Step:
    """One sso-admin call that changes a permission set: ``operation(InstanceArn, <arn_key>=arn, **params)``."""

    operation: str
    params: Mapping[str, Any]
    arn_key: str = "PermissionSetArn"


@dataclass(slots=True)
class PermissionSetPlan:
    """The permission-set changes of one run, and the config errors that stop it before any write."""

    changes: list[PermissionSetStep] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def deleting(self) -> dict[str, str]:
        """ARN → name of the permission sets this plan deletes."""
        return {
            c.target_id: c.source_id for c in self.changes if c.action is Action.DELETE_PERMISSION_SET and c.target_id
        }


def _short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1] if arn.startswith("arn:aws") and ":iam::aws:policy/" in arn else arn


def _listed(before: set[Any], after: set[Any], show: Any = str) -> str:
    added = [f"+ {show(x)}" for x in sorted(after - before)]
    removed = [f"- {show(x)}" for x in sorted(before - after)]
    return ", ".join(added + removed)


def differences(current: PermissionSetSpec, wanted: PermissionSetSpec) -> list[str]:
    """What differs, in people's terms: ``session_duration: PT1H → PT8H``, ``managed_policies: + …``."""
    found: list[str] = []
    for name in ("description", "session_duration", "relay_state"):
        was, now = getattr(current, name), getattr(wanted, name)
        if now is not None and was != now:
            found.append(f"{name}: {was or '(none)'} → {now}")
    if current.managed_policies != wanted.managed_policies:
        found.append(
            "managed_policies: " + _listed(set(current.managed_policies), set(wanted.managed_policies), _short)
        )
    if current.customer_managed_policies != wanted.customer_managed_policies:
        found.append(
            "customer_managed_policies: "
            + _listed(
                set(current.customer_managed_policies),
                set(wanted.customer_managed_policies),
                lambda p: f"{p[1]}{p[0]}",
            )
        )
    if current.inline_policy != wanted.inline_policy:
        if current.inline_policy is None:
            found.append("inline_policy: added")
        elif wanted.inline_policy is None:
            found.append("inline_policy: removed")
        else:
            found.append(
                f"inline_policy: changed ({len(current.inline_policy):,} → {len(wanted.inline_policy):,} characters)"
            )
    if current.permissions_boundary != wanted.permissions_boundary:
        was, now = _boundary(current.permissions_boundary), _boundary(wanted.permissions_boundary)
        found.append(f"permissions_boundary: {was} → {now}")
    if current.tags != wanted.tags:
        found.append("tags: " + _listed(set(current.tags), set(wanted.tags), lambda t: f"{t[0]}={t[1]}"))
    return found


def _boundary(value: str | tuple[str, str] | None) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, tuple):
        return f"{value[1]}{value[0]}"
    return _short(value)


def _boundary_param(value: str | tuple[str, str]) -> dict[str, Any]:
    if isinstance(value, tuple):
        return {"CustomerManagedPolicyReference": {"Name": value[0], "Path": value[1]}}
    return {"ManagedPolicyArn": value}


def steps(current: PermissionSetSpec | None, wanted: PermissionSetSpec) -> list[Step]:
    """The calls that make a permission set holding ``current`` (None: just created, empty) hold ``wanted``.

    Detaching comes before attaching, so that a swap never passes the 10-policy quota. Tags on a
    just-created permission set were given to CreatePermissionSet and are not sent again.
    """
    created = current is None
    now = current or PermissionSetSpec(
        name=wanted.name,
        description=wanted.description,
        session_duration=wanted.session_duration,
        relay_state=wanted.relay_state,
        tags=wanted.tags,
    )
    out: list[Step] = []
    update = {
        key: getattr(wanted, name)
        for key, name in (
            ("Description", "description"),
            ("SessionDuration", "session_duration"),
            ("RelayState", "relay_state"),
        )
        # UpdatePermissionSet cannot clear a field (each takes 1+ characters): None leaves it.
        if getattr(wanted, name) is not None and getattr(now, name) != getattr(wanted, name)
    }
    if update:
        out.append(Step("update_permission_set", update))
    for arn in sorted(now.managed_policies - wanted.managed_policies):
        out.append(Step("detach_managed_policy_from_permission_set", {"ManagedPolicyArn": arn}))
    for name, path in sorted(now.customer_managed_policies - wanted.customer_managed_policies):
        out.append(
            Step(
                "detach_customer_managed_policy_reference_from_permission_set",
                {"CustomerManagedPolicyReference": {"Name": name, "Path": path}},
            )
        )
    for arn in sorted(wanted.managed_policies - now.managed_policies):
        out.append(Step("attach_managed_policy_to_permission_set", {"ManagedPolicyArn": arn}))
    for name, path in sorted(wanted.customer_managed_policies - now.customer_managed_policies):
        out.append(
            Step(
                "attach_customer_managed_policy_reference_to_permission_set",
                {"CustomerManagedPolicyReference": {"Name": name, "Path": path}},
            )
        )
    if wanted.inline_policy != now.inline_policy:
        if wanted.inline_policy is None:
            out.append(Step("delete_inline_policy_from_permission_set", {}))
        else:
            out.append(Step("put_inline_policy_to_permission_set", {"InlinePolicy": wanted.inline_policy}))
    if wanted.permissions_boundary != now.permissions_boundary:
        if wanted.permissions_boundary is None:
            out.append(Step("delete_permissions_boundary_from_permission_set", {}))
        else:
            out.append(
                Step(
                    "put_permissions_boundary_to_permission_set",
                    {"PermissionsBoundary": _boundary_param(wanted.permissions_boundary)},
                )
            )
    if not created and wanted.tags != now.tags:
        gone = sorted({k for k, _ in now.tags} - {k for k, _ in wanted.tags})
        if gone:
            out.append(Step("untag_resource", {"TagKeys": gone}, arn_key="ResourceArn"))
        changed = sorted(set(wanted.tags) - set(now.tags))
        if changed:
            out.append(
                Step("tag_resource", {"Tags": [{"Key": k, "Value": v} for k, v in changed]}, arn_key="ResourceArn")
            )
    return out


def _change(action: Action, name: str, arn: str | None, **extra: Any) -> PermissionSetStep:
    reason = extra.pop("reason", "")
    return PermissionSetStep(action, PermissionSetChange(name, arn, **extra), arn, reason=reason)


def plan_permission_sets(
    configs: Sequence[PermissionSetConfig],
    in_aws: Mapping[str, str],
    current: Mapping[str, PermissionSetSpec],
    owned: Mapping[str, Owned],
    outdated: Mapping[str, Sequence[str]],
) -> PermissionSetPlan:
    """Decide the permission-set changes.

    Args:
        configs: the ``[[permission_sets]]`` tables, in order (errors name them by index).
        in_aws: every permission set of the instance, name → ARN.
        current: what AWS holds for the configured permission sets syncd may manage, by name.
        owned: what syncd created or adopted (the cache), by name.
        outdated: for owned permission sets, the accounts not running their latest version.
    """
    plan = PermissionSetPlan()
    configured = {c.name for c in configs}
    for index, config in enumerate(configs):
        name, wanted = config.name, config.spec()
        arn = in_aws.get(name)
        mine = owned.get(name)
        if arn is None:
            reason = "deleted outside syncd; created again" if mine else ""
            plan.changes.append(_change(Action.CREATE_PERMISSION_SET, name, None, spec=wanted, reason=reason))
            continue
        if mine is None or mine.arn != arn:
            if not config.adopt:
                plan.errors.append(
                    f"permission_sets.{index}.name: a permission set named {name!r} already exists ({arn}) and"
                    " syncd did not create it; syncd never changes permission sets it does not own (Control"
                    " Tower's, or one made in the console). Give yours another name, or set adopt = true to let"
                    " syncd manage that one from now on"
                )
                continue
            plan.changes.append(_change(Action.ADOPT_PERMISSION_SET, name, arn, reason="adopt = true"))
        have = current[name]
        found = differences(have, wanted)
        if found:
            plan.changes.append(
                _change(Action.UPDATE_PERMISSION_SET, name, arn, spec=wanted, current=have, reason="; ".join(found))
            )
            plan.changes.append(_change(Action.PROVISION_PERMISSION_SET, name, arn, reason="updated"))
        elif outdated.get(name):
            accounts = tuple(sorted(outdated[name]))
            plan.changes.append(
                _change(
                    Action.PROVISION_PERMISSION_SET,
                    name,
                    arn,
                    accounts=accounts,
                    reason=f"{len(accounts)} account(s) do not run its latest version",
                )
            )
    for name, mine in sorted(owned.items()):
        if name in configured:
            continue
        if in_aws.get(name) != mine.arn:
            plan.changes.append(_change(Action.FORGET_PERMISSION_SET, name, mine.arn, reason="deleted outside syncd"))
        elif mine.origin == "adopted":
            # syncd did not create it: removing it from the config hands it back, it is not deleted.
            plan.changes.append(
                _change(
                    Action.FORGET_PERMISSION_SET, name, mine.arn, reason="removed from the config; adopted, so kept"
                )
            )
        else:
            plan.changes.append(_change(Action.DELETE_PERMISSION_SET, name, mine.arn, reason="removed from the config"))
    return plan
