#!/usr/bin/env bash
# The README's test command: installs everything the suite needs, then lints,
# type-checks and runs every test. Safe to run again; a fresh machine needs
# nothing but Python 3.11+ with pip (and root or sudo for Debian's chromium,
# used by the browser test, and strace, which the power-cut test watches the
# ledger's writes and fsyncs with).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${SPU_VENV:-.venv}"
export UV_PROJECT_ENVIRONMENT="$VENV"
# Exactly what uv.lock holds for the test set (every extra included), nothing else.
scripts/uv sync --quiet --locked --extra test

if ! command -v chromium >/dev/null 2>&1 || ! command -v strace >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium strace >/dev/null
fi

# The coding-agent CLIs the end-to-end tests drive (Codex, Claude Code), at the
# exact versions of tests/agents/package-lock.json; each brings its native
# linux-x64 binary as an npm package, so nothing is fetched when they run.
npm ci --prefix tests/agents --no-audit --no-fund --no-update-notifier --loglevel=error

export LITELLM_LOCAL_MODEL_COST_MAP=True
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/mypy"
# pytest exits 5 when it collects nothing: that is a failure here, never a pass.
# It runs beside a throw-away PostgreSQL cluster (TEST_POSTGRES_URL), dropped afterwards.
# Tests run in one pytest-xdist worker per core: most of the suite's time is
# processes starting and waiting on each other, and every test makes its own
# files, ports and databases. Four at most, so that a machine of many cores does
# not start dozens of gateways and their connection pools against the one
# throw-away cluster (max_connections=200); `-n 0` among the arguments runs them
# in one process.
bash scripts/with-postgres.sh "$VENV/bin/pytest" -q -p no:cacheprovider \
  --numprocesses auto --maxprocesses 4 --dist worksteal "$@"
