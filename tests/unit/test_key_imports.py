"""Signing in with a token or a client secret loads neither PyJWT nor cryptography (about 10 MB of memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat


_SCRIPT = """
import json, sys
import syncd.wiring, connectors.okta, connectors.entra, connectors.google
from connectors.okta_settings import OktaSettings
from connectors.entra_settings import EntraSettings
EntraSettings.model_validate({"tenant_id": "acme.example", "client_id": "app", "client_secret": "env:SYNCD_TEST_TOKEN"})
if sys.argv[1] == "key":  # a private-key sign-in, as a user configures it; the key is made by the test
    key = {"url": "https://acme.okta.com", "client_id": "app", "private_key": "env:SYNCD_TEST_KEY"}
    OktaSettings.model_validate(key).signing_key.sign({"sub": "app"})
else:
    OktaSettings.model_validate({"url": "https://acme.okta.com", "token": "env:SYNCD_TEST_TOKEN"})
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("jwt", "cryptography"))))
"""


def _loaded(mode: str) -> list[str]:
    """Run the script in a fresh interpreter; the PyJWT and cryptography modules it ended up with."""
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    env = {**os.environ, "SYNCD_TEST_TOKEN": "not-a-real-token", "SYNCD_TEST_KEY": key.decode()}
    done = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, env=env, check=True)
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_token_and_secret_sign_ins_load_no_key_library() -> None:
    """Okta with an API token, Entra with a client secret, every connector imported: no PyJWT, no cryptography."""
    assert [] == _loaded("token")


def test_loading_a_signing_key_does_load_them() -> None:
    """The check above can fail: an Okta private-key sign-in, loaded and used, imports PyJWT and cryptography."""
    loaded = _loaded("key")
    assert {"jwt", "cryptography"} <= {m.split(".")[0] for m in loaded}
