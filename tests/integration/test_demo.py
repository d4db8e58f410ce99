"""`syncd demo`: the whole loop with nothing but the package."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from syncd.cli import app


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    """The demo syncs the sample, applies a leaver, a joiner and a rename, and ends with a no-write run."""
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path)])
    assert 0 == result.exit_code, result.output
    assert "Demo finished." in result.output
    assert "kept its Identity Center id" in result.output
    assert "writes to Identity Center: 0" in result.output
    assert (tmp_path / "syncd.db").exists()
