"""Open the ledger a URL names, or say why not: a bad URL, a missing extra, no file, no server.

A command that reads a ledger must not create one: with the default,
directory-relative URL, running ``spu`` from another directory would create
a second, empty ledger there and answer from it. So only the commands that
start a ledger (``spu serve``, ``spu demo``, ``spu orgs create``,
``spu ledger init``) may create the SQLite file, and they say that they did.
"""

import os
from dataclasses import dataclass

from ledger import LedgerStore, LedgerUnavailable, open_store
from ledger.errors import LedgerSchemaTooNew
from ledger.location import SQLITE_PREFIX, LedgerLocation, locate
from proxy.preflight.problems import ConfigurationError, Problem

LEDGER_VARIABLE = "SPU_LEDGER_URL"
ABSOLUTE_SQLITE_EXAMPLE = "sqlite:////absolute/path/spu-ledger.db"


@dataclass(frozen=True, slots=True)
class OpenedLedger:
    store: LedgerStore
    location: LedgerLocation
    created: bool
    """The SQLite file did not exist: this is a new, empty ledger."""


def missing_file_problem(url: str, location: LedgerLocation) -> Problem:
    if url.startswith(SQLITE_PREFIX + "/"):
        fix = f"check {LEDGER_VARIABLE}; `spu ledger init` creates a new, empty ledger there"
    else:
        fix = (
            f"{LEDGER_VARIABLE}={url} is relative to the current directory ({os.getcwd()}): run"
            f" spu where the gateway runs, or set {LEDGER_VARIABLE}={ABSOLUTE_SQLITE_EXAMPLE};"
            " `spu ledger init` creates a new, empty ledger"
        )
    return Problem(f"there is no ledger at {location.shown}", fix)


def creation_problem(location: LedgerLocation) -> Problem | None:
    """Why the SQLite file could not be created, judged without creating it."""
    assert location.file is not None
    directory = location.file.parent
    while not directory.exists():
        directory = directory.parent
    if directory.is_dir() and os.access(directory, os.W_OK | os.X_OK):
        return None
    return Problem(
        f"the ledger file {location.shown} cannot be created: {directory} is not a writable"
        " directory",
        f"point {LEDGER_VARIABLE} at a file in a directory this user may write",
    )


def unavailable_problem(location: LedgerLocation, error: LedgerUnavailable) -> Problem:
    if isinstance(error, LedgerSchemaTooNew):
        fix = (
            "run the SPU Gateway version that wrote it (or a newer one), or point"
            f" {LEDGER_VARIABLE} at another ledger"
        )
    elif location.file is not None:
        fix = f"check that {LEDGER_VARIABLE} names a file this user can create and write"
    else:
        fix = (
            f"check that the server is running and that {LEDGER_VARIABLE}'s host, port and"
            " credentials are right"
        )
    return Problem(f"the ledger ({location}) cannot be opened: {error}", fix)


async def open_ledger(url: str, *, may_create: bool) -> OpenedLedger:
    """The opened store, or ``ConfigurationError`` saying what stands in the way."""
    location = locate(url)
    try:
        store = open_store(url)  # an unknown scheme or a missing extra: ValueError
    except ValueError as error:
        raise ConfigurationError([Problem(f"{LEDGER_VARIABLE}: {error}")]) from error
    if not location.exists and not may_create:
        raise ConfigurationError([missing_file_problem(url, location)])
    created = not location.exists
    try:
        await store.open()
    except LedgerUnavailable as error:
        raise ConfigurationError([unavailable_problem(location, error)]) from error
    return OpenedLedger(store=store, location=location, created=created)


async def ping_ledger(url: str, *, may_create: bool) -> OpenedLedger:
    """Open, ping and close the ledger: what start-up and ``spu config check`` ask of it."""
    opened = await open_ledger(url, may_create=may_create)
    try:
        await opened.store.ping()
    except LedgerUnavailable as error:
        raise ConfigurationError([unavailable_problem(opened.location, error)]) from error
    finally:
        await opened.store.close()
    return opened
