"""The daemon's settings: [schedule], [http], target.scim_token_expires, and durations."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from syncd import config as config_module
from syncd.config import ScheduleConfig, parse_listen
from syncd.durations import format_duration
from syncd.errors import ConfigError
from tests.conftest import Workspace


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("24h", 86400), ("7d", 604800), ("1h30m", 5400), ("PT2M", 120)],
)
def test_durations_are_written_with_a_unit(text: str, seconds: int) -> None:
    """Durations are read from "30s", "15m", "24h", "7d", sums or ISO 8601."""
    assert timedelta(seconds=seconds) == ScheduleConfig(interval=text).interval


@pytest.mark.parametrize("bare", [15, 1.5, "15"])
def test_a_bare_number_is_refused(bare: str | float) -> None:
    """A duration without its unit (is 15 seconds or minutes?) is refused, with the form to write."""
    with pytest.raises(ValueError, match=r'has no unit; write it with one, like "15m"'):
        ScheduleConfig(interval=bare)


@pytest.mark.parametrize(("seconds", "text"), [(900, "15m"), (5400, "1h30m"), (86400, "1d"), (1.5, "1.5s")])
def test_durations_are_shown_in_their_shortest_form(seconds: float, text: str) -> None:
    """A duration is shown the way it is written in the config."""
    assert text == format_duration(timedelta(seconds=seconds))


def test_defaults(workspace: Workspace) -> None:
    """Without [schedule] or [http]: every 15m, a full resync every 24h, 30s to stop, 127.0.0.1:9464."""
    settings = config_module.load(workspace.config)
    assert (timedelta(minutes=15), timedelta(hours=24), None, timedelta(seconds=30)) == (
        settings.schedule.interval,
        settings.schedule.full_resync_every,
        settings.schedule.full_resync_cron,
        settings.schedule.shutdown_timeout,
    )
    assert ("127.0.0.1", 9464) == settings.http.address()
    assert settings.target.scim_token_expires is None


def test_the_new_keys_are_read_from_the_file(workspace: Workspace) -> None:
    """[schedule], [http] and target.scim_token_expires are read from the TOML file."""
    text = workspace.config.read_text(encoding="utf-8").replace("[cache]", "scim_token_expires = 2027-03-01\n\n[cache]")
    text += '\n[schedule]\ninterval = "30s"\nfull_resync_cron = "0 3 * * *"\n\n[http]\nlisten = "[::]:9000"\n'
    workspace.config.write_text(text, encoding="utf-8")
    settings = config_module.load(workspace.config)
    assert (timedelta(seconds=30), "0 3 * * *") == (settings.schedule.interval, settings.schedule.full_resync_cron)
    assert ("::", 9000) == settings.http.address()
    assert date(2027, 3, 1) == settings.target.scim_token_expires


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ('[schedule]\ninterval = "15 minutes"', "schedule.interval: '15 minutes' is not a duration"),
        ('[schedule]\ninterval = "0s"', "schedule.interval: must be longer than zero"),
        ('[schedule]\nfull_resync_cron = "every day"', "schedule.full_resync_cron: 'every day' is not a crontab"),
        ('[schedule]\nfull_resync_cron = "0 3 * * *"\nfull_resync_every = "12h"', "not both"),
        ('[http]\nlisten = "9464"', "http.listen: '9464' is not host:port"),
        ('[schedule]\nintervall = "1m"', "did you mean 'interval'?"),
    ],
)
def test_a_bad_value_names_the_key_and_the_fix(workspace: Workspace, table: str, fragment: str) -> None:
    """A wrong [schedule] or [http] value is a ConfigError naming the key and how to write it."""
    workspace.config.write_text(workspace.config.read_text(encoding="utf-8") + "\n" + table + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        config_module.load(workspace.config)
    assert fragment in str(caught.value)


def test_settings_can_come_from_the_environment(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """SYNCD_SCHEDULE__INTERVAL and SYNCD_HTTP__LISTEN override the file (containers set them)."""
    monkeypatch.setenv("SYNCD_SCHEDULE__INTERVAL", "5m")
    monkeypatch.setenv("SYNCD_HTTP__LISTEN", "0.0.0.0:9464")
    settings = config_module.load(Path(workspace.config))
    assert (timedelta(minutes=5), ("0.0.0.0", 9464)) == (settings.schedule.interval, settings.http.address())


@pytest.mark.parametrize(
    ("listen", "address"),
    [("127.0.0.1:9464", ("127.0.0.1", 9464)), (":9464", ("0.0.0.0", 9464)), ("[::1]:80", ("::1", 80))],
)
def test_listen_forms(listen: str, address: tuple[str, int]) -> None:
    """http.listen takes host:port, :port (every address) and [IPv6]:port."""
    assert address == parse_listen(listen)


@pytest.mark.parametrize("listen", ["::1:80", "host:", "host:99999"])
def test_listen_rejects_ambiguous_forms(listen: str) -> None:
    """An IPv6 address without brackets, a missing or impossible port is refused."""
    with pytest.raises(ValueError, match="9464"):
        parse_listen(listen)
