"""What every ``spu`` command shares: the settings, an opened ledger, tables and failures.

Commands talk to the ledger directly (the same store the gateway uses, named
by ``SPU_LEDGER_URL``), so they work whether or not a gateway is running.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import NoReturn, TypeVar

import typer
from rich.console import Console

from ledger import AccountNotFound, IdempotencyConflict, LedgerStore, LedgerUnavailable, open_store
from proxy.settings import Settings

T = TypeVar("T")

PIPE_WIDTH = 200
"""Output to a pipe or file is laid out this wide, so rows reach ``grep`` whole."""


def _console(*, stderr: bool) -> Console:
    """Markup is off: ids and reasons from the ledger are printed as they are."""
    made = Console(stderr=stderr, highlight=False, markup=False, soft_wrap=True)
    if not made.is_terminal:
        made.width = PIPE_WIDTH
    return made


console = _console(stderr=False)
errors = _console(stderr=True)


def fail(message: str) -> NoReturn:
    errors.print(f"error: {message}", style="red")
    raise typer.Exit(code=1)


@asynccontextmanager
async def opened_store(settings: Settings) -> AsyncIterator[LedgerStore]:
    store = open_store(settings.ledger_url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def run(settings: Settings, work: Callable[[LedgerStore], Awaitable[T]]) -> T:
    """Run one command's work against an opened ledger; ledger failures become exit code 1."""

    async def main() -> T:
        async with opened_store(settings) as store:
            return await work(store)

    try:
        return asyncio.run(main())
    except AccountNotFound as error:
        fail(f"no organization '{error.org_id}'")
    except IdempotencyConflict as error:
        fail(str(error))
    except LedgerUnavailable as error:
        fail(f"the ledger at {settings.ledger_url} is unavailable: {error}")


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")
