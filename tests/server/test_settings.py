"""The bridge's settings: one object, from arguments, the environment and a TOML file, in
that order of strength."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from smsxml.server.settings import Settings


@pytest.fixture(autouse=True)
def no_smsxml_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the variables a test sets: none of the machine's SMSXML_* settings."""
    for name in list(os.environ):
        if name.startswith("SMSXML_"):
            monkeypatch.delenv(name)


def test_arguments_beat_the_environment_which_beats_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flag beats SMSXML_*, which beats the TOML file, nested settings merged key by key
    (SMSXML_DISPATCH__WORKERS leaves the file's batch); a flag not given (None) takes
    nothing away."""
    config = tmp_path / "smsxml.toml"
    config.write_text(
        'port = 7000\npublic_url = "https://toml.example.org"\n'
        "[dispatch]\nworkers = 3\nbatch = 50\n"
    )
    monkeypatch.setenv("SMSXML_PORT", "7100")
    monkeypatch.setenv("SMSXML_DISPATCH__WORKERS", "5")
    settings = Settings.load(config, port=7200, public_url=None)
    assert settings.port == 7200
    assert settings.public_url == "https://toml.example.org"
    assert (settings.dispatch.workers, settings.dispatch.batch) == (5, 50)
    assert Settings.load(config).port == 7100


def test_smsxml_config_names_the_file_when_no_flag_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SMSXML_CONFIG is read as --config is; without either, the embedded defaults."""
    config = tmp_path / "smsxml.toml"
    config.write_text('database_url = "sqlite:///elsewhere.sqlite3"\n')
    assert Settings.load().database_url == "sqlite:///smsxml.sqlite3"
    monkeypatch.setenv("SMSXML_CONFIG", str(config))
    assert Settings.load().database_url == "sqlite:///elsewhere.sqlite3"


def test_a_misspelt_setting_is_an_error_not_a_default(tmp_path: Path) -> None:
    """A key the bridge does not know (a typo in the file) is refused with its name,
    rather than leaving the default silently in place."""
    config = tmp_path / "smsxml.toml"
    config.write_text('databse_url = "postgresql://db/sms"\n')
    with pytest.raises(ValidationError, match="databse_url"):
        Settings.load(config)


def test_the_published_address_is_the_public_url_else_the_listening_one() -> None:
    """Behind a proxy the WSDL names the public URL (without its trailing slash);
    otherwise the host and port the bridge listens on."""
    proxied = Settings(public_url="https://sms.example.org/", soap_path="/soap")
    assert proxied.base_url == "https://sms.example.org"
    assert proxied.address == "https://sms.example.org/soap"
    direct = Settings(host="10.0.0.7", port=8081)
    assert direct.address == "http://10.0.0.7:8081/soap"
