"""The manager over real HTTP: moto_server in-process, reached through AWS_ENDPOINT_URL.

This checks what the in-process mock cannot: that build_assigner's default boto3 session (the
standard credential chain) honours ``AWS_ENDPOINT_URL`` for both sso-admin and Organizations.
"""

from __future__ import annotations

import asyncio

import boto3

from syncd.assignments.manager import build_assigner
from syncd.cache import Cache
from syncd.changes import Action
from syncd.config import Settings
from tests.assignments.conftest import Writes, build_org, rules, snapshot, sync_assignments, targets


def test_a_run_through_aws_endpoint_url(moto_endpoint: str, cache: Cache) -> None:
    """Against moto_server: the rules are applied over HTTP, and the next run sends no write."""
    org = build_org(boto3.Session())
    settings = Settings(
        source={"type": "file"},
        target={"scim_url": "https://scim.eu-west-1.amazonaws.com/x/scim/v2", "scim_token": "t"},
        assignments=rules(org),
    )
    snap = snapshot(org)
    group_targets = targets(snap)
    manager = build_assigner(settings, cache)
    assert manager is not None
    assert moto_endpoint == manager.aws.sso_admin.meta.endpoint_url
    assert moto_endpoint == manager.aws.organizations.meta.endpoint_url

    first = asyncio.run(sync_assignments(manager, snap, cache, group_targets))

    assert 6 == first.count(Action.CREATE_ASSIGNMENT)
    assert 6 == len(org.held())
    again = build_assigner(settings, cache)
    assert again is not None
    writes = Writes(again.aws.sso_admin)
    second = asyncio.run(sync_assignments(again, snap, cache, group_targets))
    assert ([], []) == (second.planned, writes.calls)
