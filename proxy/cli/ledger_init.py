"""``spu ledger init``: bring the store's schema (SQLite) or indexes (MongoDB) up to date.

Every gateway does the same when it starts, idempotently; running it once as
a job before the replicas start (compose's ``ledger-init``) makes a schema or
index problem one failed job with a clear message instead of replicas that
never become ready.
"""

import asyncio

import typer

from ledger import LedgerUnavailable
from proxy.cli.common import opened_store
from proxy.settings import Settings


async def _open_and_close(settings: Settings) -> None:
    async with opened_store(settings):
        pass  # opening is what brings the schema and indexes up to date


def ledger_init() -> None:
    """Create or migrate the ledger's tables or indexes (safe to run again), then exit."""
    settings = Settings()
    backend = settings.ledger_url.split(":", 1)[0]
    try:
        asyncio.run(_open_and_close(settings))
    except LedgerUnavailable as error:
        typer.echo(f"ledger init failed ({backend}): {error}", err=True)
        raise typer.Exit(code=1) from error
    typer.echo(f"ledger ready ({backend}): schema and indexes are up to date")
