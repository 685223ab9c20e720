#!/usr/bin/env bash
# Refreshes the lock: run it after changing a version in pyproject.toml (extra
# arguments go to `uv lock`, e.g. --upgrade-package certifi: pyproject.toml pins
# the direct dependencies, so only the others move). In order:
#   1. scripts/uv-requirements.txt, the hashes of the uv that pyproject.toml's
#      [tool.uv] required-version names (scripts/uv bootstraps it from there);
#   2. uv.lock, every package of the runtime, its extras and the test set, with
#      hashes, for every platform;
#   3. .venv synced from the new lock with the test set, as scripts/test.sh
#      would, and pricing/data refreshed from its litellm (the cost map and the
#      tiktoken encodings the gateway ships; see pricing/litellm_copies.py).
set -euo pipefail
cd "$(dirname "$0")/.."

uv_version="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["uv"]["required-version"].removeprefix("=="))')"
requirements="$(mktemp)"
trap 'rm -f "$requirements"' EXIT
{
  echo "# uv itself, bootstrapped by scripts/uv; scripts/lock.sh rewrites this file."
  scripts/uv pip compile --no-config --quiet --universal --generate-hashes --no-header - <<<"uv==$uv_version"
} >"$requirements"
chmod 644 "$requirements"
mv "$requirements" scripts/uv-requirements.txt

scripts/uv lock "$@"

export UV_PROJECT_ENVIRONMENT="${SPU_VENV:-.venv}"
scripts/uv run --quiet --locked --extra test python scripts/copy_litellm_files.py
