"""Access in people's terms, as lines: the flags first, then who gains and who loses what.

Pure functions from a :class:`~syncd.access.Impact` to :class:`~syncd.plan_view.Line` values;
the CLI prints them with rich.
"""

from __future__ import annotations

from collections.abc import Iterator

from syncd.access import Grant, Impact
from syncd.plan_view import Line


__all__ = ["describe", "impact_lines"]


def describe(grant: Grant) -> str:
    """``AdministratorAccess on prod (111111111111) via platform-admins (assignments.0)``."""
    if grant.application:
        what = f"application {grant.application}"
    else:
        account = f"{grant.account} ({grant.account_id})" if grant.account != grant.account_id else grant.account
        what = f"{grant.permission_set} on {account}"
    rule = f", {grant.rule}" if grant.rule else ""
    return f"{what} via {grant.via_group}{rule}"


def impact_lines(impact: Impact | None) -> Iterator[Line]:
    """The access section of a plan; nothing when no one's access changes."""
    if not impact:
        return
    for grant in impact.last_path:
        where = f"application {grant.application}" if grant.application else f"account {grant.account}"
        yield Line("!", "bold red", f"{grant.user} loses their last access to {where} ({describe(grant)})")
    for grant in impact.new_admins:
        yield Line("!", "bold yellow", f"{grant.user} gains administrator access: {describe(grant)}")
    people = len({g.user for g in (*impact.gained, *impact.lost)})
    yield Line(
        "",
        "",
        f"Access: {len(impact.gained)} gained, {len(impact.lost)} lost, for {people} "
        f"{'person' if people == 1 else 'people'}",
    )
    for grant in impact.gained:
        yield Line("+", "green", f"{grant.user} gains {describe(grant)}")
    for grant in impact.lost:
        yield Line("-", "red", f"{grant.user} loses {describe(grant)}")
