"""Regenerate ``generated/`` from ``schemas/`` with xsdata, or check it is up to date.

One xsdata run per schema folder, each into its own subpackage of ``smsxml.generated``,
with the committed configuration ``schemas/xsdata.xml``. xsdata writes into a scratch
directory; the result replaces ``generated/`` (or, with ``check``, is compared to it).
xsdata shells out to ``ruff`` (pinned), so the virtualenv's bin directory is put first
on PATH: the output depends on that exact ruff.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from smsxml.errors import SmsxmlError
from smsxml.xmlsafe import SCHEMAS_DIR

__all__ = ["SOURCES", "CodegenError", "Drift", "check", "generate"]

#: schema source (relative to schemas/) → subpackage of smsxml.generated
SOURCES: dict[str, str] = {
    "allmysms": "allmysms",
    "net2sms": "net2sms",
    "smspartner": "smspartner",
    "isms/sms.wsdl": "isms",
}
GENERATED_PACKAGE = "smsxml.generated"


class CodegenError(SmsxmlError):
    """xsdata failed; the message carries its output."""


@dataclass(frozen=True)
class Drift:
    """How ``generated/`` differs from what the schemas produce (paths relative to it)."""

    changed: list[str]
    missing: list[str]
    extra: list[str]

    def __bool__(self) -> bool:
        return bool(self.changed or self.missing or self.extra)

    def lines(self) -> list[str]:
        return (
            [f"changed: {p}" for p in self.changed]
            + [f"missing: {p} (the schemas produce it, generated/ lacks it)" for p in self.missing]
            + [f"extra: {p} (in generated/, not produced by the schemas)" for p in self.extra]
        )


def default_target() -> Path:
    """``generated/`` beside ``schemas/`` in the source tree."""
    return SCHEMAS_DIR.parent / "generated"


def _render(workdir: Path) -> Path:
    """Run xsdata for every source into ``workdir``; return the generated package folder."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONHASHSEED"] = "0"
    config = SCHEMAS_DIR / "xsdata.xml"
    for source, subpackage in SOURCES.items():
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "xsdata",
                "generate",
                str(SCHEMAS_DIR / source),
                "--config",
                str(config),
                "--package",
                f"{GENERATED_PACKAGE}.{subpackage}",
            ],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            raise CodegenError(f"xsdata failed on schemas/{source}:\n{run.stdout}{run.stderr}")
    return workdir.joinpath(*GENERATED_PACKAGE.split("."))


def _files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def _compare(produced: Path, target: Path) -> Drift:
    mine, theirs = _files(produced), _files(target) if target.exists() else set()
    changed = sorted(
        p for p in mine & theirs if not filecmp.cmp(produced / p, target / p, shallow=False)
    )
    return Drift(changed=changed, missing=sorted(mine - theirs), extra=sorted(theirs - mine))


def check(target: Path | None = None) -> Drift:
    """What regeneration would change in ``target``; empty when up to date."""
    target = target or default_target()
    with tempfile.TemporaryDirectory(prefix="smsxml-codegen-") as scratch:
        return _compare(_render(Path(scratch)), target)


def generate(target: Path | None = None) -> Drift:
    """Regenerate ``target`` from the schemas; return what changed."""
    target = target or default_target()
    with tempfile.TemporaryDirectory(prefix="smsxml-codegen-") as scratch:
        produced = _render(Path(scratch))
        drift = _compare(produced, target)
        if drift:
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(produced, target, ignore=shutil.ignore_patterns("__pycache__"))
        return drift
