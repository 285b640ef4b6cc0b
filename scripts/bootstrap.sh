#!/usr/bin/env bash
# Everything modelyard needs on a fresh Debian machine: Python 3.11+ with venv, redis-server and
# postgresql-15 (from apt when missing), then a virtualenv with the package and its pinned dependencies.
# redis-server is for running a worker outside Compose and for the tests, which start their own;
# PostgreSQL is for the tests, which initdb a private cluster on a free port (tests/pg.py). Installing
# the package may start Debian's own cluster on port 5432 where an init system runs: harmless, unused.
# Chromium is the real browser the console's tests drive (through Playwright's Python package, never
# its own browser download).
# Re-running is cheap: the install is skipped while pyproject.toml and constraints.txt are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

python_ok() {
    command -v python3 >/dev/null &&
        python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

missing=()
python_ok || missing+=(python3 python3-venv python3-pip)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]} from apt" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

stamp="$VENV/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing modelyard into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
    rm -f "$VENV"/.installed-*
    touch "$stamp"
fi
