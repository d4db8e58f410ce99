"""Access reviews: the access syncd gives, as the cache knows it, as AWS holds it, and as it changed.

* :func:`effective_grants`: every person's grants through the assignments syncd made, from the
  cache and the rules (no network);
* :func:`live_assignments`: every account assignment AWS holds in the accounts asked for
  (``ListPermissionSetsProvisionedToAccount``, then ``ListAccountAssignments`` per permission set,
  paged by botocore and paced by its adaptive retries), each marked as syncd's or not, plus the
  ones syncd recorded that AWS no longer holds;
* :func:`changes_since`: the access runs gained and lost since a date (the audit trail).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from syncd.access import Grant, directory_of, effective, grant_of
from syncd.state import AccessEvent


if TYPE_CHECKING:
    from syncd.assignments.aws import AwsAccess
    from syncd.cache import Cache
    from syncd.config import Settings


__all__ = ["Change", "LiveAssignment", "changes_since", "effective_grants", "live_assignments"]


def effective_grants(settings: Settings, cache: Cache) -> list[Grant]:
    """Every active person's grants through what syncd assigned, sorted."""
    state = cache.load()
    directory = directory_of(state, {}, cache.assignments(), cache.application_assignments())
    grants = effective(directory, rules=settings.assignments, apps=settings.applications)
    return sorted(g for g in grants if g.active)


@dataclass(frozen=True, slots=True, order=True)
class LiveAssignment:
    """An account assignment as AWS holds it (or as syncd recorded it, when AWS no longer does)."""

    account: str
    permission_set: str
    principal: str
    principal_type: str
    principal_id: str
    account_id: str
    managed_by_syncd: bool
    status: str
    """``managed`` (syncd made it), ``not managed by syncd`` (by hand, another tool, before syncd),
    or ``missing in AWS`` (syncd recorded it; someone deleted it)."""

    def to_json(self) -> dict[str, Any]:
        """The row as ``--json`` and CSV show it."""
        return asdict(self)


def live_assignments(
    cache: Cache, aws: AwsAccess, *, accounts: Callable[[str, str], bool] = lambda _id, _name: True
) -> list[LiveAssignment]:
    """What AWS holds in the accounts ``accounts(id, name)`` selects, compared with what syncd made."""
    from syncd.assignments.aws_resources import ResourcesApi

    api = ResourcesApi(aws)
    state = cache.load()
    groups = {g.target_id: g.display_name for g in state.groups.values()}
    users = {u.target_id: u.user_name for u in state.users.values()}
    group_ids = {sid: g.target_id for sid, g in state.groups.items()}
    made = {(group_ids.get(a.group, ""), a.account_id, a.permission_set_arn): a for a in cache.assignments()}
    names = aws.permission_sets()
    chosen = {i: a for i, a in aws.accounts().items() if a.active and accounts(i, a.name)}
    rows: list[LiveAssignment] = []
    seen: set[tuple[str, str, str]] = set()
    for account_id, account in sorted(chosen.items()):
        for arn in api.provisioned_to(account_id):
            for _, kind, principal in api.principals_using(arn, [account_id]):
                key = (principal, account_id, arn)
                seen.add(key)
                ours = kind == "GROUP" and key in made
                rows.append(
                    LiveAssignment(
                        account=account.name or account_id,
                        permission_set=names.get(arn, arn.rsplit("/", 1)[-1]),
                        principal=(groups if kind == "GROUP" else users).get(principal, principal),
                        principal_type=kind,
                        principal_id=principal,
                        account_id=account_id,
                        managed_by_syncd=ours,
                        status="managed" if ours else "not managed by syncd",
                    )
                )
    for key, assignment in sorted(made.items()):
        if key in seen or assignment.account_id not in chosen:
            continue
        rows.append(
            LiveAssignment(
                account=assignment.account_name or assignment.account_id,
                permission_set=assignment.permission_set_name or assignment.permission_set_arn,
                principal=assignment.group_name or assignment.group,
                principal_type="GROUP",
                principal_id=key[0],
                account_id=assignment.account_id,
                managed_by_syncd=True,
                status="missing in AWS",
            )
        )
    return sorted(rows)


@dataclass(frozen=True, slots=True)
class Change:
    """One grant gained or lost, when, in which run."""

    at: datetime
    run_id: int | None
    change: str
    grant: Grant
    result: str

    def to_json(self) -> dict[str, Any]:
        """``{"at", "run_id", "change", <grant>, "result"}``."""
        return {
            "at": self.at.isoformat(),
            "run_id": self.run_id,
            "change": self.change,
            **self.grant.to_json(),
            "result": self.result,
        }


def changes_since(cache: Cache, since: datetime) -> list[Change]:
    """Access gained and lost from ``since`` on, oldest first."""
    found = []
    for at, run_id, entry in cache.access_changes(since):
        data: Mapping[str, Any] = entry.after or {}
        change = "gained" if entry.action == AccessEvent.GAINED else "lost"
        found.append(Change(at, run_id, change, grant_of(data), entry.result))
    return found


def matches(value: str, *wanted: str | None) -> bool:
    """Whether ``value`` is one of the non-None ``wanted`` (case-insensitive); True when none is given."""
    given = [w for w in wanted if w is not None]
    return not given or value.casefold() in {w.casefold() for w in given}


def select(grants: Iterable[Grant], **filters: str | None) -> list[Grant]:
    """Grants matching every given filter: ``user``, ``group``, ``account`` (name or id), ``permission_set``."""
    kept = []
    for grant in grants:
        if filters.get("user") and not matches(grant.user, filters["user"]):
            continue
        if filters.get("group") and not matches(grant.via_group, filters["group"]):
            continue
        if filters.get("account") and not (
            matches(grant.account, filters["account"]) or matches(grant.account_id, filters["account"])
        ):
            continue
        if filters.get("permission_set") and not matches(grant.permission_set, filters["permission_set"]):
            continue
        kept.append(grant)
    return kept
