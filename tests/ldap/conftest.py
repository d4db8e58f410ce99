"""Fixtures for the LDAP connector's tests: one real slapd for the session, a fresh subtree per test."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

from connectors.base import ReadContext
from connectors.ldap.settings import LdapSettings
from connectors.ldap.source import LdapSource
from syncd.model import SourceRead
from tests.fakes.ad import FakeAD
from tests.fakes.slapd import Slapd, Tree, running_slapd


_trees = itertools.count()


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    """A real slapd (ppolicy, refint, memberof, syncprov, TLS) shared by the session's tests."""
    with running_slapd() as server:
        yield server


@pytest.fixture
def tree(slapd: Slapd) -> Tree:
    """An empty subtree of its own (``ou=people`` and ``ou=groups`` under ``ou=tN``) for one test."""
    return Tree.create(slapd, f"t{next(_trees)}")


@pytest.fixture
def ad() -> FakeAD:
    """An empty fake Active Directory domain controller."""
    return FakeAD()


def openldap_settings(slapd: Slapd, tree: Tree, **overrides: object) -> LdapSettings:
    """Settings for ``tree`` on the session's slapd, bound as the read-only service account."""
    raw: dict[str, object] = {
        "preset": "openldap",
        "url": slapd.url,
        "allow_plaintext": True,
        "bind_dn": slapd.reader_dn,
        "bind_password": slapd.reader_password,
        "user_base": tree.people,
        "group_base": tree.groups,
    }
    raw.update(overrides)
    return LdapSettings.model_validate(raw)


def read(source: LdapSource, ctx: ReadContext | None = None) -> SourceRead:
    """One read, on a fresh event loop."""
    return asyncio.run(source.read(ctx or ReadContext()))
