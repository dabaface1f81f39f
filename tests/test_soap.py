"""smsxml.soap: the iSMS SOAP client under its public name (tested itself in
tests/providers/test_isms_soap.py)."""

from __future__ import annotations

import subprocess
import sys

import smsxml.soap
from smsxml.providers import isms_soap


def test_it_re_exports_the_client_and_its_constants() -> None:
    """Every public name of providers.isms_soap is the very same object under smsxml.soap."""
    assert sorted(smsxml.soap.__all__) == sorted(isms_soap.__all__)
    for name in isms_soap.__all__:
        assert getattr(smsxml.soap, name) is getattr(isms_soap, name), name


def test_smsxml_soap_imports_first() -> None:
    """``import smsxml.soap`` works in a fresh interpreter, before smsxml.providers."""
    subprocess.run(
        [sys.executable, "-c", "import smsxml.soap"], check=True, capture_output=True, timeout=60
    )
