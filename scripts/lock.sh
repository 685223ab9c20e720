#!/usr/bin/env bash
# Refreshes the lock: run it after changing a version in pyproject.toml (extra
# arguments go to `uv lock`, e.g. --upgrade-package litellm). In order:
#   1. scripts/uv-requirements.txt, the hashes of the uv that pyproject.toml's
#      [tool.uv] required-version names (scripts/uv bootstraps it from there);
#   2. uv.lock, every package of the runtime, its extras and the test set, with
#      hashes, for every platform.
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

