"""Ledger operations as sans-I/O routines, so one routine runs on a sync and an async driver.

A routine is a generator: it yields the statements it needs one at a time and
is sent back each statement's rows; its return value is the operation's
result. It does no I/O of its own, so the same routine runs on SQLite's sync
``sqlite3`` in the group-commit writer thread (``ledger.sqlite.runner``) and on
PostgreSQL's async driver (``ledger.postgres.runner``), inside whatever
transaction the backend opened around it.

A ``Query`` is answered with its rows. A ``Command`` is a write whose result
the routine never looks at, so an async driver may send it without waiting
(PostgreSQL pipelines it in front of the next query); ``Writes`` are several
such commands on different rows. Two rules follow:

- a routine decides only on what its queries returned;
- a routine reads before it writes, so one that raises has written nothing
  (a backend still rolls back any routine that raises after a write).
"""

from collections.abc import Generator
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")

Row = tuple[Any, ...]


class Query(NamedTuple):
    sql: str
    params: tuple[Any, ...] = ()


class Command(NamedTuple):
    sql: str
    params: tuple[Any, ...] = ()


class Writes(NamedTuple):
    """Commands that change different rows, so that none depends on another's effect.

    SQLite runs them one by one; PostgreSQL sends them as one statement (all but
    the last as data-modifying ``WITH`` clauses, which share one snapshot: hence
    the rule), which saves a statement's overhead on both ends for each one.
    """

    commands: tuple[Command, ...]


Statement = Query | Command | Writes
Routine = Generator[Statement, list[Row] | None, T]


def fetch(sql: str, params: tuple[Any, ...] = ()) -> Routine[list[Row]]:
    """The rows of one query: ``rows = yield from fetch(sql, params)``."""
    rows = yield Query(sql, params)
    assert rows is not None, "a runner answers every Query with its rows"
    return rows
