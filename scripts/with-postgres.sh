#!/usr/bin/env bash
# Runs a command with TEST_POSTGRES_URL naming a throw-away PostgreSQL cluster, then drops
# the cluster, whatever the command's outcome:
#
#   scripts/with-postgres.sh .venv/bin/pytest tests/contract
#
# With TEST_POSTGRES_URL already set, it runs the command against that server instead.
# Installs Debian's postgresql when no server binaries are found. The cluster is created
# with initdb in a temporary folder, owned by the `postgres` user when run as root (the
# server refuses to run as root), listens on 127.0.0.1 on a free port, and keeps the
# server's durable defaults (fsync, synchronous_commit=on).
set -euo pipefail

if [ -n "${TEST_POSTGRES_URL:-}" ]; then
  exec "$@"
fi

find_bindir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ]; then
      echo "$dir"
    fi
  done | sort -V | tail -n 1
}

BINDIR="$(find_bindir)"
if [ -z "$BINDIR" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  BINDIR="$(find_bindir)"
fi

CLUSTER_DIR="$(mktemp -d "${TMPDIR:-/tmp}/spu-postgres.XXXXXX")"
if [ "$(id -u)" -eq 0 ]; then
  chown postgres: "$CLUSTER_DIR"
  as_owner() { runuser -u postgres -- "$@"; }
else
  as_owner() { "$@"; }
fi

stop_cluster() {
  if [ -f "$CLUSTER_DIR/data/postmaster.pid" ]; then
    as_owner "$BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$CLUSTER_DIR"
}
trap stop_cluster EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_owner "$BINDIR/initdb" -D "$CLUSTER_DIR/data" -U postgres --auth=trust -E UTF8 \
  --locale=C.UTF-8 >"$CLUSTER_DIR/initdb.log"
as_owner "$BINDIR/pg_ctl" -D "$CLUSTER_DIR/data" -l "$CLUSTER_DIR/server.log" -w -t 60 \
  -o "-c port=$PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$CLUSTER_DIR -c max_connections=200" \
  start >/dev/null

export TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
"$@"
