"""Saved plans: ``syncd plan --out plan.json``, then ``syncd sync --plan plan.json``.

For change-controlled shops: the reviewed plan is what is applied, or nothing is. The file holds
every change (to read and to diff) and two fingerprints: one of the source snapshot the plan came
from and one of the plan itself. ``sync --plan`` reads the source and Identity Center again, plans
again, and applies only when the new plan is the saved one, change for change; otherwise it is
refused (exit 3) and says what moved: the source, or Identity Center and the cache, and which
changes differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syncd.changes import AssignmentChange, Change, GroupChange, MemberChange, UserChange, members_of
from syncd.errors import ConfigError
from syncd.model import Group, Snapshot
from syncd.plan import Plan
from syncd.plan_view import attribute_diff


FORMAT = "syncd-plan/1"


def _key(change: Change) -> str:
    """What makes two changes the same change: action, object, ids, members and the new attributes.

    The same text for the same change as plans saved before changes were typed (their files
    keep these keys): an account assignment's description, else the user's or group's payload.
    """
    after: Any = None
    match change:
        case AssignmentChange(assignment=assignment):
            after = assignment.describe()
        case UserChange(user=user):
            after = user.payload()
        case GroupChange(group=group) | MemberChange(group=Group() as group):
            after = group.payload()
    return json.dumps(
        [str(change.action), change.source_id, change.target_id, list(members_of(change)), after],
        sort_keys=True,
        separators=(",", ":"),
    )


def plan_fingerprint(plan: Plan) -> str:
    """A digest of every change, in order."""
    h = hashlib.sha256()
    for change in plan:
        h.update(_key(change).encode())
        h.update(b"\n")
    return h.hexdigest()


def snapshot_fingerprint(snapshot: Snapshot) -> str:
    """A digest of what the source said: every user's and group's attributes and members."""
    h = hashlib.sha256()
    for sid in sorted(snapshot.users):
        h.update(f"u {sid} {snapshot.users[sid].digest()}\n".encode())
    for sid in sorted(snapshot.groups):
        group = snapshot.groups[sid]
        members = hashlib.sha256("\n".join(sorted(group.members)).encode()).hexdigest()
        h.update(f"g {sid} {group.digest()} {members}\n".encode())
    return h.hexdigest()


def change_json(change: Change) -> dict[str, Any]:
    """One change as ``plan --json`` and a saved plan list it."""
    entry: dict[str, Any] = {
        "action": str(change.action),
        "object": change.label(),
        "source_id": change.source_id,
        "target_id": change.target_id,
        "members": len(members_of(change)),
        "reason": change.reason,
    }
    diff = attribute_diff(change)
    if diff:
        entry["diff"] = {key: {"before": before, "after": after} for key, before, after in diff}
    return entry


def write(path: Path, plan: Plan, snapshot: Snapshot, *, mode: str, config: Path | None) -> None:
    """Save ``plan`` (made from ``snapshot``) to ``path``."""
    document = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": str(config) if config is not None else None,
        "mode": mode,
        "source": snapshot_fingerprint(snapshot),
        "plan": plan_fingerprint(plan),
        "keys": [_key(c) for c in plan],
        "changes": [change_json(c) for c in plan],
        "counts": plan.counts(),
    }
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


@dataclass(frozen=True, slots=True)
class SavedPlan:
    """A plan read back from its file."""

    path: Path
    mode: str
    source: str
    plan: str
    keys: tuple[str, ...]
    created_at: str

    @classmethod
    def read(cls, path: Path) -> SavedPlan:
        """Read a saved plan; ConfigError (exit 2) when the file is missing or not one."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"--plan {path}: cannot be read ({exc.strerror})") from None
        except ValueError as exc:
            raise ConfigError(f"--plan {path}: not a saved plan ({exc})") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ConfigError(f"--plan {path}: not a saved plan (make one with `syncd plan --out {path}`)")
        return cls(
            path,
            str(document.get("mode", "incremental")),
            str(document["source"]),
            str(document["plan"]),
            tuple(document.get("keys", ())),
            str(document.get("created_at", "")),
        )

    def check(self, plan: Plan, snapshot: Snapshot) -> str | None:
        """None when ``plan`` is exactly this saved plan; else why it must not be applied."""
        if plan_fingerprint(plan) == self.plan:
            return None
        moved = (
            "the source changed"
            if snapshot_fingerprint(snapshot) != self.source
            else "Identity Center or the cache changed (another run, or a change by hand)"
        )
        return (
            f"the saved plan {self.path} (made {self.created_at}) is out of date: {moved} since;"
            f" {_differences(self.keys, [_key(c) for c in plan])}. Nothing was changed;"
            " make and review a new plan with `syncd plan --out`."
        )


def _differences(saved: Iterable[str], now: Iterable[str], shown: int = 5) -> str:
    saved_set, now_set = set(saved), set(now)
    gone = [k for k in saved if k not in now_set]
    new = [k for k in now if k not in saved_set]
    parts = [f"no longer {_describe(k)}" for k in gone[:shown]] + [f"now also {_describe(k)}" for k in new[:shown]]
    more = max(0, len(gone) - shown) + max(0, len(new) - shown)
    if more:
        parts.append(f"and {more} more")
    return "; ".join(parts) if parts else "the same changes in another order"


def _describe(key: str) -> str:
    action, source_id, _target, members, after = json.loads(key)
    name = after.get("userName") or after.get("displayName") if isinstance(after, dict) else after
    text = f"{action} {name or source_id}"
    return text + (f" ({len(members)} members)" if members else "")
