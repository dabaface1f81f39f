#!/usr/bin/env bash
# Lint and type-check smsxml: `ruff check` and `ruff format --check` on the checkout, then
# mypy on the package *as installed*. Run from a fresh clone after scripts/setup.sh (the
# stubs mypy needs are in the `dev` extra, so in requirements.lock). Extra arguments go to
# mypy (pyproject.toml makes it --strict), e.g. `scripts/lint.sh --warn-unreachable`.
#
# Why mypy needs more than `mypy -p smsxml`: pyproject.toml maps server/, generated/ and
# schemas/ under the smsxml namespace (`package-dir`), so there is no smsxml/server/ folder
# in the checkout, and the editable install reaches those folders through an import hook
# (__editable___smsxml_*_finder) that mypy, which looks for files, cannot follow: mypy
# answers "Can't find package" or checks `server` as a top-level package of its own.
#
# What this script does about it: it lays the package out as setuptools installs it, in
# build/lint-tree/, out of symlinks to the real files (one folder per entry of package-dir,
# read from pyproject.toml, so a new mapping needs no change here), runs mypy there, and
# rewrites the paths mypy prints (smsxml/server/app.py) back to the checkout's
# (server/app.py), so that errors point at the files to edit.
#
# Why symlinks and not the alternatives: a src/ layout would move folders the design card
# draws at the top; `pip install --target` copies files, which is slower, goes stale between
# runs, and leaves errors pointing at the copies; mypy_path and stub tricks cannot rename a
# folder. Symlinks cost nothing, are always current, keep mypy's cache (.mypy_cache) valid
# from run to run, and need nothing installed beyond requirements.lock.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
py=$repo/.venv/bin/python

status=0
echo "== ruff check" >&2
"$repo/.venv/bin/ruff" check . || status=1
echo "== ruff format --check" >&2
"$repo/.venv/bin/ruff" format --check . || status=1

echo "== mypy -p smsxml $*" >&2
tree=$repo/build/lint-tree
rm -rf "$tree"
mkdir -p "$tree"
# Prints the mapping as "installed-prefix<TAB>checkout-prefix" lines, longest first.
mapping=$("$py" - "$repo" "$tree" <<'EOF'
import sys, tomllib
from pathlib import Path

repo, tree = Path(sys.argv[1]), Path(sys.argv[2])
package_dir = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"][
    "package-dir"
]
for package, source in package_dir.items():
    folder = tree.joinpath(*package.split("."))
    folder.mkdir(parents=True, exist_ok=True)
    for entry in (repo / source).iterdir():
        # a nested mapping (smsxml.server inside smsxml) gets its own folder: skip clashes
        if entry.name != "__pycache__" and not (folder / entry.name).exists():
            (folder / entry.name).symlink_to(entry)
for package, source in sorted(package_dir.items(), key=lambda kv: -len(kv[0])):
    print(f"{package.replace('.', '/')}/\t{Path(source).as_posix().rstrip('/')}/")
EOF
)

set +e
(cd "$tree" && "$repo/.venv/bin/mypy" --config-file "$repo/pyproject.toml" \
  --cache-dir "$repo/.mypy_cache" --no-error-summary -p smsxml "$@") >"$tree.out" 2>&1
mypy_status=$?
set -e

# Map paths back to the checkout and decide.
"$py" - "$tree.out" "$mypy_status" "$mapping" <<'EOF' || status=1
import re, sys

out, mypy_status, mapping = sys.argv[1], int(sys.argv[2]), sys.argv[3]
prefixes = [line.split("\t") for line in mapping.splitlines()]
message = re.compile(r"^(?P<path>[^:\s]+\.pyi?):(?P<rest>\d+:.*)$")


def checkout_path(path: str) -> str:
    for installed, source in prefixes:
        if path.startswith(installed):
            return source + path[len(installed) :]
    return path



errors = 0
for line in open(out, encoding="utf-8"):
    match = message.match(line)
    if not match:
        print(line, end="")  # a crash or a config problem: show it as it is
        errors += "error:" in line
        continue
    path = checkout_path(match["path"])
    errors += ": error:" in line
    print(f"{path}:{match['rest']}")
print(f"mypy: {errors} error(s)", file=sys.stderr)
# mypy exits 1 for errors, 2 for a crash or bad usage: a crash fails whatever it printed
sys.exit(1 if errors or mypy_status not in (0, 1) else 0)
EOF
exit $status
