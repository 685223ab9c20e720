"""Ledger operations as sans-I/O routines, so one routine runs on a sync and an async driver.

A routine is a generator: it yields the statements it needs one at a time and
is sent back each statement's rows; its return value is the operation's
result. It does no I/O of its own, so the same routine runs on SQLite's sync
``sqlite3`` in the group-commit writer thread (``ledger.sqlite.runner``) and on
PostgreSQL's async driver (``ledger.postgres.runner``), inside whatever
transaction the backend opened around it.

A statement is a pair ``(sql, params)`` (a plain tuple: a metered call makes
several). Its SQL says what it is: a ``Query`` is answered with its rows; a
``Command`` is a write whose result the routine never looks at (it is sent
back no rows), so an async driver may send it without waiting (PostgreSQL
pipelines it in front of the next query); ``Writes`` are several commands on
different rows. Two rules follow:

- a routine decides only on what its queries returned;
- a routine reads before it writes, so one that raises has written nothing
  (a backend still rolls back any routine that raises after a write).
"""

from collections.abc import Generator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

Row = tuple[Any, ...]


class Query(str):
    """SQL whose rows the routine reads (it may write too: ``INSERT … RETURNING``)."""

    __slots__ = ()


class Command(str):
    """SQL that writes, and whose result the routine never reads."""

    __slots__ = ()


Params = tuple[Any, ...]
Statement = tuple[Query | Command, Params]


class Writes(tuple[tuple[Command, Params], ...]):
    """Commands that change different rows, so that none depends on another's effect.

    SQLite runs them one by one; PostgreSQL sends them as one statement (all but
    the last as data-modifying ``WITH`` clauses, which share one snapshot: hence
    the rule), which saves a statement's overhead on both ends for each one.
    """

    __slots__ = ()


Routine = Generator[Statement | Writes, Sequence[Row], T]

NO_ROWS: Sequence[Row] = ()
"""What a command is answered with."""
