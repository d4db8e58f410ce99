"""The SCIM token's expiry, said loudly: an error once it has passed, a warning in its last month.

Identity Center's SCIM access tokens last a year, and an expired one stops provisioning
("Automatic provisioning", https://docs.aws.amazon.com/singlesignon/latest/userguide/provision-automatically.html).
The daemon says so here; the metric ``syncd_scim_token_expiry_days`` counts the days down
(:mod:`syncd.metrics`).
"""

from __future__ import annotations

from datetime import date, datetime

import structlog

from syncd.metrics import days_until


__all__ = ["TOKEN_WARNING_DAYS", "warn_token_expiry"]

log = structlog.get_logger(__name__)

TOKEN_WARNING_DAYS = 30


def warn_token_expiry(expires: date, now: datetime | None = None) -> str | None:
    """Log an error when the SCIM token has expired, a warning from 30 days before; returns the level or None.

    An expired token does not fail loudly anywhere else: Identity Center answers 401 and
    provisioning simply stops.
    """
    days = days_until(expires, now)
    if days <= 0:
        log.error(
            "scim_token.expired",
            expired_on=expires.isoformat(),
            action="Identity Center refuses every request: make a new token in the console, "
            "store it, and update target.scim_token_expires",
        )
        return "error"
    if days <= TOKEN_WARNING_DAYS:
        log.warning(
            "scim_token.expires_soon",
            expires_on=expires.isoformat(),
            days_left=int(days),
            action="make a new SCIM token in the Identity Center console before then; "
            "provisioning stops silently when it expires",
        )
        return "warning"
    return None
