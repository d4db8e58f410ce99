"""Keyless domain-wide delegation: Application Default Credentials sign the JWT through IAM.

Orgs with ``iam.disableServiceAccountKeyCreation`` cannot make a key file (ssosync#168, #345).
Instead, whatever Application Default Credentials find (workload identity federation, a GCE or
GKE service account, ``gcloud auth application-default login``) gets a ``cloud-platform`` token,
and the IAM Credentials API signs the delegation JWT as the service account
(``projects/-/serviceAccounts/{email}:signJwt``, "Creating short-lived service account
credentials", https://cloud.google.com/iam/docs/create-short-lived-credentials-direct#sa-credentials-jwt).
The caller needs the Service Account Token Creator role on that account.

google-auth finds and refreshes the ADC credentials; its HTTP calls go through the connector's
:class:`~connectors.kit.Http` (so they use ``deps.transport``, are counted and retried), from a
worker thread, since google-auth's refresh is synchronous.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import google.auth
import google.auth.exceptions
import google.auth.transport
import httpx2
import structlog

from connectors.kit import Http, json_or_empty
from syncd.errors import SourceAuthError, SourceError


__all__ = ["CLOUD_PLATFORM", "IamSigner"]

log = structlog.get_logger(__name__)

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


class _Response(google.auth.transport.Response):
    def __init__(self, response: httpx2.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return dict(self._response.headers)

    @property
    def data(self) -> bytes:
        return self._response.content


class _Bridge(google.auth.transport.Request):
    """google-auth's requests, sent on the event loop through the connector's Http."""

    def __init__(self, http: Http, loop: asyncio.AbstractEventLoop) -> None:
        self._http = http
        self._loop = loop

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> _Response:
        """Called from the worker thread: wait for the loop to send it."""
        call = self._http.request(method, url, bucket="adc", headers=headers, content=body, auth=None)
        try:
            return _Response(asyncio.run_coroutine_threadsafe(call, self._loop).result())
        except SourceError as exc:
            raise google.auth.exceptions.TransportError(str(exc)) from None  # type: ignore[no-untyped-call]


class IamSigner:
    """A :class:`connectors.kit.Signer` that signs as ``service_account`` through IAM signJwt."""

    def __init__(self, http: Http, iam_url: str, service_account: str) -> None:
        self._http = http
        self._url = f"{iam_url}/v1/projects/-/serviceAccounts/{quote(service_account, safe='@')}:signJwt"
        self.service_account = service_account
        self._credentials: Any = None

    async def _adc_token(self, *, fresh: bool = False) -> str:
        bridge = _Bridge(self._http, asyncio.get_running_loop())
        try:
            if self._credentials is None:
                self._credentials, _ = await asyncio.to_thread(
                    google.auth.default, scopes=[CLOUD_PLATFORM], request=bridge
                )
            if fresh or not self._credentials.valid:
                await asyncio.to_thread(self._credentials.refresh, bridge)
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise SourceAuthError(
                "no credentials to sign with: source.google has no credentials (key file), so syncd uses "
                f"Application Default Credentials, and they were not found ({exc}); run on GCE/GKE with a "
                "service account, set GOOGLE_APPLICATION_CREDENTIALS to a workload identity federation "
                "configuration, or run `gcloud auth application-default login`"
            ) from None
        except google.auth.exceptions.GoogleAuthError as exc:
            raise SourceAuthError(f"Application Default Credentials could not get an access token: {exc}") from None
        return str(self._credentials.token)

    async def sign(self, claims: dict[str, Any]) -> str:
        """The delegation JWT, signed by a Google-managed key of the service account."""
        body = {"payload": json.dumps(claims)}
        for attempt in range(2):
            token = await self._adc_token(fresh=attempt > 0)
            response = await self._http.request(
                "POST", self._url, bucket="iam", json=body, headers={"Authorization": f"Bearer {token}"}, auth=None
            )
            if response.status_code != 401:
                break  # a 401 is an ADC token revoked or expired early: one fresh one, then give up
        answer = json_or_empty(response)
        signed = answer.get("signedJwt") if isinstance(answer, dict) else None
        if response.status_code == 200 and isinstance(signed, str):
            log.info("google.jwt_signed", service_account=self.service_account, key_id=answer.get("keyId"))
            return signed
        raise self._refusal(response.status_code, answer)

    def _refusal(self, status: int, body: Any) -> SourceAuthError:
        error = body.get("error") if isinstance(body, dict) else None
        error = error if isinstance(error, dict) else {}
        message = str(error.get("message") or f"HTTP {status}")
        details = error["details"] if isinstance(error.get("details"), list) else []
        reasons = {d.get("reason") for d in details if isinstance(d, dict)}
        account = self.service_account
        if status == 403 and "ACCESS_TOKEN_SCOPE_INSUFFICIENT" in reasons:
            return SourceAuthError(
                f"IAM Credentials refused to sign as {account} (HTTP 403: {message}): the Application Default "
                f"Credentials lack the {CLOUD_PLATFORM} scope; for gcloud, run `gcloud auth "
                "application-default login` again"
            )
        if status == 403:
            return SourceAuthError(
                f"IAM Credentials refused to sign as {account} (HTTP 403: {message}): give the identity "
                "Application Default Credentials found the Service Account Token Creator role on it "
                f"(`gcloud iam service-accounts add-iam-policy-binding {account} --member=<that identity> "
                "--role=roles/iam.serviceAccountTokenCreator`), and check that source.google.service_account "
                "names an existing service account"
            )
        if status == 401:
            return SourceAuthError(
                f"IAM Credentials rejected the Application Default Credentials' token (HTTP 401: {message})"
            )
        return SourceAuthError(f"IAM Credentials could not sign as {account} (HTTP {status}: {message})")
