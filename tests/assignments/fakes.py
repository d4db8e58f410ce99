"""A fake sso-admin client for what moto cannot do: IN_PROGRESS, FAILED, conflicts, and counting.

moto answers SUCCEEDED at once and validates little (docs/references.md §C.1), so the polling loop, the
retry of ConflictException and ThrottlingException, FAILED operations and the in-flight bound
are tested against this fake. It is called from worker threads (``asyncio.to_thread``), so its
bookkeeping is under a lock.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import ClientError

from syncd.assignments.aws import AwsAccess
from syncd.assignments.config import AwsConfig


INSTANCE = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
STORE = "d-1234567890"


def client_error(code: str, message: str = "", operation: str = "CreateAccountAssignment") -> ClientError:
    """A botocore ClientError with this AWS error code."""
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@dataclass
class Script:
    """How the fake answers for one (account, permission set, principal).

    ``submit_errors``: error codes the create/delete call raises first, one per attempt.
    ``in_progress``: status checks that answer IN_PROGRESS before the final status.
    ``final``: SUCCEEDED or FAILED, with ``reason``.
    """

    submit_errors: list[str] = field(default_factory=list)
    in_progress: int = 0
    final: str = "SUCCEEDED"
    reason: str = ""


@dataclass
class _Operation:
    kind: str
    key: tuple[str, str, str]
    script: Script
    checks: int = 0
    done: bool = False


class FakeSsoAdmin:
    """Enough of an sso-admin client for AwsAccess's operations and list_account_assignments."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scripts: dict[tuple[str, str, str], Script] = {}
        self.assigned: set[tuple[str, str, str]] = set()
        self.operations: dict[str, _Operation] = {}
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hold = threading.Event()
        self.hold.set()  # cleared by a test to keep every operation IN_PROGRESS until it is set
        self._ids = itertools.count(1)

    def script(self, account_id: str, permission_set_arn: str, principal_id: str, script: Script) -> None:
        """Answer for this assignment as ``script`` says (others succeed at once)."""
        self.scripts[(account_id, permission_set_arn, principal_id)] = script

    # -- the client surface --------------------------------------------------------------

    def create_account_assignment(self, **kwargs: Any) -> dict[str, Any]:
        return {"AccountAssignmentCreationStatus": self._submit("create", kwargs)}

    def delete_account_assignment(self, **kwargs: Any) -> dict[str, Any]:
        return {"AccountAssignmentDeletionStatus": self._submit("delete", kwargs)}

    def describe_account_assignment_creation_status(self, **kwargs: Any) -> dict[str, Any]:
        return {"AccountAssignmentCreationStatus": self._check(kwargs["AccountAssignmentCreationRequestId"])}

    def describe_account_assignment_deletion_status(self, **kwargs: Any) -> dict[str, Any]:
        return {"AccountAssignmentDeletionStatus": self._check(kwargs["AccountAssignmentDeletionRequestId"])}

    def get_paginator(self, name: str) -> Any:
        assert "list_account_assignments" == name, name
        return self

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        with self.lock:
            self.calls.append("list")
            held = [p for a, ps, p in self.assigned if (a, ps) == (kwargs["AccountId"], kwargs["PermissionSetArn"])]
        yield {"AccountAssignments": [{"PrincipalType": "GROUP", "PrincipalId": p} for p in held]}

    # -- behaviour -------------------------------------------------------------------------

    def _submit(self, kind: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        assert INSTANCE == kwargs["InstanceArn"]
        assert ("AWS_ACCOUNT", "GROUP") == (kwargs["TargetType"], kwargs["PrincipalType"])
        key = (kwargs["TargetId"], kwargs["PermissionSetArn"], kwargs["PrincipalId"])
        with self.lock:
            self.calls.append(kind)
            script = self.scripts.setdefault(key, Script())
            if script.submit_errors:
                raise client_error(script.submit_errors.pop(0), "scripted", f"{kind.title()}AccountAssignment")
            request_id = f"req-{next(self._ids)}"
            self.operations[request_id] = _Operation(kind, key, script)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return self._status(request_id)

    def _check(self, request_id: str) -> dict[str, Any]:
        with self.lock:
            self.calls.append("check")
            operation = self.operations[request_id]
            assert not operation.done, "checked again after a final status"
            operation.checks += 1
        return self._status(request_id)

    def _status(self, request_id: str) -> dict[str, Any]:
        with self.lock:
            operation = self.operations[request_id]
            status = "IN_PROGRESS"
            if self.hold.is_set() and operation.checks >= operation.script.in_progress:
                status = operation.script.final
                operation.done = True
                self.in_flight -= 1
                if status == "SUCCEEDED":
                    if operation.kind == "create":
                        self.assigned.add(operation.key)
                    else:
                        self.assigned.discard(operation.key)
            answer = {"Status": status, "RequestId": request_id}
            if status == "FAILED":
                answer["FailureReason"] = operation.script.reason
            return answer


def fake_access(fake: FakeSsoAdmin) -> AwsAccess:
    """An AwsAccess on the fake, with the instance configured (no list_instances call)."""
    return AwsAccess(cast(Any, fake), cast(Any, None), AwsConfig(instance_arn=INSTANCE, identity_store_id=STORE))
