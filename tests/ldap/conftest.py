"""Fixtures for the LDAP connector's tests: one real slapd for the session, a fresh subtree per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

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
