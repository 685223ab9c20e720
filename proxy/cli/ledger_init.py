"""``spu ledger init``: bring the store's schema (SQL) or indexes (MongoDB) up to date.

Every gateway does the same when it starts, idempotently; running it once as
a job before the replicas start (compose's ``ledger-init``) makes a schema or
index problem one failed job with a clear message instead of replicas that
never become ready. It is also how a new, empty SQLite ledger is made without
starting a gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from proxy.cli.common import load_settings, run

if TYPE_CHECKING:
    from ledger import LedgerStore


async def _opened(store: LedgerStore) -> None:
    """Opening is what brings the schema and indexes up to date."""


def ledger_init() -> None:
    """Create or migrate the ledger's tables or indexes (safe to run again), then exit."""
    settings = load_settings()
    backend = settings.ledger_url.split(":", 1)[0]
    run(settings, _opened, may_create_ledger=True)
    typer.echo(f"ledger ready ({backend}): schema and indexes are up to date")
