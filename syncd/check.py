"""``syncd check``: read the source the way a run would, write nothing, and show what was read.

For setting up a connector: it proves the credentials and scopes work and shows which groups
the filters select, how many users that brings in, and which records would be skipped and why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import httpx2

from connectors import base as connectors
from connectors.base import Deps, ReadContext
from syncd.config import Settings
from syncd.errors import ConfigError, SourceError, TargetAuthError, TargetError, TargetUnavailable
from syncd.model import Snapshot
from syncd.normalise import build_snapshot


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What one full read of the source gave, after normalisation and filters."""

    source_type: str
    snapshot: Snapshot
    users_read: int
    groups_read: int
    requests: int
    target: str = ""
    """What the one authenticated read of Identity Center found (empty when it was not made)."""


async def prove_target(settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> str:
    """One authenticated read of Identity Center, so that a wrong token or URL fails before a plan looks green.

    The read is the SCIM target's own token check (:meth:`~syncd.target.scim.ScimTarget.probe`,
    the one every run makes), tried twice with short timeouts: an unreachable host fails in
    seconds, not minutes.

    Raises:
        ConfigError: the token is refused (401/403) or the URL is not a SCIM endpoint (exit 2).
        TargetUnavailable: the host cannot be reached or keeps failing (exit 5).
    """
    from syncd.target.scim import ScimTarget

    host = urlsplit(settings.target.scim_url).hostname or settings.target.scim_url
    target = ScimTarget(
        settings.target.scim_url,
        settings.target.scim_token,
        requests_per_second=settings.target.requests_per_second,
        transport=transport,
        timeout=5.0,
        retry_timeout=10.0,
        attempts=2,
    )
    try:
        await target.probe()
    except TargetAuthError as exc:
        raise ConfigError(f"target.scim_token: {exc}") from None
    except TargetUnavailable as exc:
        raise TargetUnavailable(f"Identity Center at {host} did not answer: {exc}") from None
    except TargetError as exc:
        raise ConfigError(
            f"target.scim_url: {settings.target.scim_url} does not answer like Identity Center's SCIM endpoint ({exc});"
            " copy the SCIM endpoint from the console (Settings, Identity source, Automatic provisioning)"
        ) from None
    finally:
        await target.aclose()
    return f"{host} answered an authenticated read; the SCIM token is accepted"


async def check_source(
    settings: Settings,
    *,
    deps: Deps | None = None,
    prove: bool = True,
    target_transport: httpx2.AsyncBaseTransport | None = None,
) -> CheckResult:
    """A full read of the configured source (no state, no cache), then one read of Identity Center (``prove``)."""
    source_type = connectors.get(settings.source.type)
    source = source_type.factory(settings.connector_settings(), deps or Deps())
    scope = settings.filters.scope()
    try:
        read = await source.read(ReadContext(scope=scope, full=True, state={}))
    finally:
        await source.aclose()
    if not read.complete:
        raise SourceError(f"the {settings.source.type} source returned an incomplete read")
    result = CheckResult(
        source_type=settings.source.type,
        snapshot=build_snapshot(read, scope),
        users_read=len(read.users),
        groups_read=len(read.groups),
        requests=read.requests,
    )
    if not prove:
        return result
    return replace(result, target=await prove_target(settings, transport=target_transport))
