"""The XSDs and WSDLs, the source of truth; importable as ``smsxml.schemas`` so that an
installed smsxml finds them as package data (see pyproject.toml, package-dir)."""
