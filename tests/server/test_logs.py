"""The bridge's log set-up (server/logs.py) and the settings and flags that choose it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from smsxml.cli import main
from smsxml.server import logs
from smsxml.server.settings import Settings


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """configure() changes the root logger: give pytest's handlers and level back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    chatty = {name: logging.getLogger(name).level for name in logs.CHATTY}
    yield
    root.handlers[:], root.level = handlers, level
    for name, old in chatty.items():
        logging.getLogger(name).setLevel(old)


def test_the_level_decides_what_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    """At WARNING an INFO line is dropped and a warning is written, tagged with the role."""
    logging.getLogger().handlers[:] = []  # as in a fresh process (pytest adds its own)
    logs.configure("WARNING", "dispatch")
    log = logging.getLogger("smsxml.server.test")
    log.info("quiet please")
    log.warning("provider slow")
    written = capsys.readouterr().err
    assert "quiet please" not in written
    assert "WARNING [dispatch] smsxml.server.test: provider slow" in written


def test_libraries_chatter_only_at_debug() -> None:
    """httpx's line per call stays at WARNING unless the bridge logs at DEBUG."""
    logs.configure("INFO")
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    logs.configure("DEBUG")
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG


def test_the_level_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """SMSXML_LOG_LEVEL sets it; a level that does not exist is refused by name."""
    monkeypatch.setenv("SMSXML_LOG_LEVEL", "WARNING")
    assert Settings.load(None).log_level == "WARNING"
    monkeypatch.setenv("SMSXML_LOG_LEVEL", "LOUD")
    with pytest.raises(ValueError, match="log_level"):
        Settings.load(None)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_the_flag_refuses_a_level_that_does_not_exist(command: str) -> None:
    """--log-level takes DEBUG, INFO, WARNING or ERROR (any case) and nothing else."""
    result = CliRunner().invoke(main, [command, "--log-level", "loud"])
    assert result.exit_code == 2
    assert "'loud' is not one of" in result.output
