"""The daemon's status page: what a person sees at / and /runs/<id>, in a real headless Chromium.

AWS is moto_server (tests/fakes/aws_sso.py adds what moto lacks); Identity Center is the emulator.
Chromium is Debian's ``chromium`` package (scripts/test installs it); without it the browser test
is skipped, saying so, and the HTML is still checked as served.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.assignments.conftest import REGION, Org
from tests.conftest import Workspace, make_directory
from tests.daemon.conftest import PATIENCE, ThreadDaemon, runs, schedule, wait_for


HOSTILE = "<script>alert('x')</script>ops"
"""A group name with markup: it must be shown as text, never run."""


@pytest.fixture
def served(
    workspace: Workspace, org: Org, thread_daemon: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[ThreadDaemon, str]:
    """`syncd run` on a workspace whose groups have access (one of them named with markup), after its first run."""
    monkeypatch.setenv("SYNCD_TARGET__SCIM_TOKEN_EXPIRES", "2099-01-01")
    data = make_directory(3, {"platform-admins": [0], HOSTILE: [1, 2]})
    workspace.write(data)
    workspace.configure(
        f"""
[aws]
region = "{REGION}"

[[assignments]]
group = "platform-admins"
permission_set = "AdministratorAccess"
accounts = ["{org.accounts["prod"]}"]

[[assignments]]
group = "*ops"
permission_set = "ReadOnly"
accounts = ["{org.accounts["dev"]}"]
"""
        + schedule(interval="1h"),
    )
    daemon = thread_daemon(workspace.config)
    wait_for(lambda: [r for r in runs(workspace.cache_url) if r.status == "ok"], what="the first run to succeed")
    return daemon, f"http://127.0.0.1:{daemon.port}"


def test_the_page_lists_runs_access_and_escapes_names(served: tuple[ThreadDaemon, str]) -> None:
    """/ shows the run, the access matrix and the token's days left; markup in a group name is escaped text."""
    _, url = served
    response = httpx2.get(url + "/", timeout=PATIENCE)
    assert 200 == response.status_code
    assert "script-src" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    page = response.text
    assert "<script" not in page
    assert html.escape(HOSTILE, quote=True) in page
    assert "AdministratorAccess" in page
    assert "ReadOnly" in page
    assert re.search(r"expires 2099-01-01 \(\d+ days left\)", page)
    run = re.search(r'href="/runs/(\d+)"', page)
    assert run is not None
    detail = httpx2.get(f"{url}/runs/{run.group(1)}", timeout=PATIENCE).text
    assert "user1@example.com" in detail  # access gained, in people's terms
    assert 404 == httpx2.get(url + "/runs/99999", timeout=PATIENCE).status_code


def test_nothing_secret_is_on_the_page(served: tuple[ThreadDaemon, str], workspace: Workspace) -> None:
    """The SCIM token and AWS keys never appear on the status page or a run's page."""
    from tests.conftest import TOKEN

    _, url = served
    pages = [httpx2.get(url + path, timeout=PATIENCE).text for path in ("/", "/runs/1")]
    for secret in (TOKEN, "testing"):
        assert all(secret not in page for page in pages)


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
def test_a_browser_shows_the_runs_and_the_hostile_name_as_text(
    served: tuple[ThreadDaemon, str], tmp_path: Path
) -> None:
    """Headless Chromium renders the page: runs and matrix are there, the group name is text, no script ran."""
    _, url = served
    browser = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + str(tmp_path / "p")]
    dom = subprocess.run(
        [*browser, "--dump-dom", url + "/"], capture_output=True, text=True, timeout=PATIENCE, check=True
    ).stdout
    assert "Last runs" in dom
    assert "Access matrix" in dom
    assert "<script" not in dom  # the browser built no script element out of the group name
    assert html.escape(HOSTILE, quote=False) in dom
    shot = tmp_path / "status.png"
    subprocess.run(
        [*browser, "--window-size=1280,900", f"--screenshot={shot}", url + "/"],
        capture_output=True,
        timeout=PATIENCE,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
