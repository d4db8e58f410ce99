"""LDAP and Active Directory source: ``[source] type = "ldap"``.

Modules, outside in: ``conn`` (the seam to a directory server, and its ldap3 adapter),
``session`` (one read's connection: failover, paging, ranges, off the event loop), ``read``
(the searches of a read), ``records`` (entries to users and groups, member DNs resolved),
``values`` (raw values), ``advice`` (failures in plain words), ``settings`` (``[source.ldap]``
and the ``ad``/``openldap`` presets), ``source`` (a read, full or incremental).
"""

from __future__ import annotations

from connectors.base import Deps, SourceType, register
from connectors.ldap.settings import LdapSettings
from connectors.ldap.source import LdapSource


__all__ = ["LdapSettings", "LdapSource"]


def _build(settings: LdapSettings, deps: Deps) -> LdapSource:
    # LDAP makes no HTTP calls: deps.ldap is the connection factory (None: ldap3 to the real server).
    return LdapSource(settings, deps.ldap, clock=deps.clock, sleep=deps.sleep)


register(SourceType("ldap", LdapSettings, _build, "LDAP directory or Active Directory (ldaps:// or StartTLS)"))
