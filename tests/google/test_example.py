"""deploy/examples/google.toml is a configuration syncd loads."""

from __future__ import annotations

import json
from pathlib import Path

from connectors.google import GoogleSettings
from syncd import config as config_module
from tests.fakes.google import FakeGoogle
from tests.fakes.google_auth import ServiceAccount


EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "google.toml"


def test_the_google_example_loads_with_its_key_file(fake: FakeGoogle, account: ServiceAccount, tmp_path: Path) -> None:
    """The example's [source.google] validates once its secret files exist: the key is read, the admin kept."""
    (tmp_path / "google_key").write_text(json.dumps(fake.auth.key_json(account)), encoding="utf-8")
    (tmp_path / "scim_token").write_text("scim-token", encoding="utf-8")
    text = EXAMPLE.read_text(encoding="utf-8").replace("file:/run/secrets/", f"file:{tmp_path}/")
    path = tmp_path / "google.toml"
    path.write_text(text, encoding="utf-8")

    settings = config_module.load(path)

    google = settings.connector_settings()
    assert isinstance(google, GoogleSettings)
    assert google.key is not None
    assert (google.key.email, google.admin_email) == (account.email, "syncd-reader@example.com")
    assert settings.source.type == "google"
