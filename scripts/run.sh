#!/usr/bin/env bash
# The README's run command: installs the gateway into .venv from uv.lock (the
# first run downloads it; later runs only check it, in well under a second),
# then `spu serve --demo`: checks the configuration, seeds a demo organization
# with a token, prints a call to paste (with the port it really serves on),
# and serves on the embedded SQLite ledger with the built-in demo model. No
# provider or Stripe keys needed. SPU_EXTRAS=litellm,mongodb adds those
# extras; arguments go to `spu serve` (e.g. --port 9000 --config spu.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${SPU_VENV:-.venv}"
export UV_PROJECT_ENVIRONMENT="$VENV"
extras=()
names="${SPU_EXTRAS:-}"
for extra in ${names//,/ }; do extras+=(--extra "$extra"); done
# --inexact: packages the test set added to the same .venv stay.
scripts/uv sync --quiet --locked --inexact "${extras[@]}"
export LITELLM_LOCAL_MODEL_COST_MAP=True
exec "$VENV/bin/spu" serve --demo "$@"
