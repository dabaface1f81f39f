"""The distribution ships every package and every schema under the smsxml namespace."""

from __future__ import annotations

import tomllib

from .conftest import ROOT


def _declared() -> tuple[list[str], dict[str, str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return config["packages"], config["package-dir"]


def test_every_package_folder_is_declared() -> None:
    """Each folder holding Python modules or schemas is listed in pyproject's packages."""
    packages, mapping = _declared()
    found = set()
    for name, folder in mapping.items():
        base = ROOT / folder
        for path in [base, *(p for p in base.rglob("*") if p.is_dir())]:
            if "__pycache__" in path.parts:
                continue
            if any(path.glob("*.py")) or any(path.glob("*.xsd")) or any(path.glob("*.wsdl")):
                relative = path.relative_to(base).parts
                found.add(".".join((name, *relative)))
    assert found == set(packages)


def test_nothing_is_installed_under_a_generic_top_level_name() -> None:
    """generated/, server/ and schemas/ are importable only as smsxml.* subpackages."""
    packages, mapping = _declared()
    assert all(name == "smsxml" or name.startswith("smsxml.") for name in packages)
    assert mapping["smsxml.generated"] == "generated" and mapping["smsxml.server"] == "server"
