#!/usr/bin/env bash
# The README's run command: installs the gateway into .venv (first run only),
# seeds a demo organization with a token, and serves on the embedded SQLite
# ledger with the built-in demo model. No provider or Stripe keys needed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${SPU_VENV:-.venv}"
if [ ! -x "$VENV/bin/spu" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e .
fi
export LITELLM_LOCAL_MODEL_COST_MAP=True
"$VENV/bin/spu" demo
exec "$VENV/bin/spu" serve "$@"
