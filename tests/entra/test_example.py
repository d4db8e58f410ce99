"""deploy/examples/entra.toml is a configuration that loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd import config as config_module


EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "entra.toml"


def test_the_entra_example_is_a_valid_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example loads: Entra source with a federated token file, the filters and the schedule."""
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    (tmp_path / "scim_token").write_text("scim-token", encoding="utf-8")
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "file:/run/secrets/scim_token", f"file:{tmp_path / 'scim_token'}"
    )
    path = tmp_path / "entra.toml"
    path.write_text(text, encoding="utf-8")

    settings = config_module.load(path)

    assert settings.source.type == "entra"
    entra = settings.connector_settings()
    assert entra.federated_token_file == Path("/var/run/secrets/azure/tokens/azure-identity-token")
    assert entra.client_secret is None
