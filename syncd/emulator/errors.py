"""The one exception the emulator raises, and the error body Identity Center sends for it.

Body shape, as captured from AWS [slashdevops/idp-scim-sync#30, #45, #62, #98;
goauthentik/authentik#12321]::

    {"schema": [ERROR_URN], "schemas": [ERROR_URN], "detail": "...", "status": "409",
     "exceptionRequestId": "<uuid>", "timeStamp": "YYYY-MM-DD hh:mm:ss.mmm"}

``status`` is a string, both ``schema`` (singular, non-standard) and ``schemas`` are present, and
there is no ``scimType`` [docs/references.md §A.6].
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from syncd.emulator.constants import ERROR_URN


class ScimError(Exception):
    """A request the emulator refuses; becomes an AWS-shaped error response.

    Args:
        status: the HTTP status (400, 401, 404, 409, 429, 500).
        detail: the human text for ``detail``.
        reason: why the emulator refused, when ``detail`` is AWS's generic text; sent in the
            non-AWS ``x-syncd-emulator-reason`` header to help debugging, never in the body.
    """

    def __init__(self, status: int, detail: str, *, reason: str | None = None) -> None:
        super().__init__(f"{status}: {detail}" + (f" ({reason})" if reason else ""))
        self.status = status
        self.detail = detail
        self.reason = reason


def error_timestamp(now: datetime | None = None) -> str:
    """Format ``timeStamp`` the way AWS does: ``YYYY-MM-DD hh:mm:ss.mmm`` in UTC."""
    moment = now or datetime.now(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def error_body(status: int, detail: str, request_id: str) -> dict[str, Any]:
    """Build the JSON error body for ``status`` and ``detail`` [docs/references.md §A.6]."""
    return {
        "schema": [ERROR_URN],
        "schemas": [ERROR_URN],
        "detail": detail,
        "status": str(status),
        "exceptionRequestId": request_id,
        "timeStamp": error_timestamp(),
    }
