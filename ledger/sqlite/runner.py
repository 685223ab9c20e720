"""Runs a shared ledger routine (``ledger.sql.routine``) on a sync ``sqlite3`` connection,
whose SQL is SQLite's own spelling (``ledger.sql.dialect``)."""

import sqlite3
from typing import TypeVar

from ledger.sql.routine import NO_ROWS, Query, Routine, Writes

T = TypeVar("T")


def run(connection: sqlite3.Connection, routine: Routine[T]) -> T:
    """Every statement in turn, in the caller's transaction; returns the routine's result.

    Kept lean: it runs inside the group-commit writer, which every write of the
    process waits for.
    """
    execute, send = connection.execute, routine.send
    try:
        statement = next(routine)
        while True:
            if isinstance(statement, Writes):
                for command, values in statement:
                    execute(command, values)
                statement = send(NO_ROWS)
                continue
            sql, params = statement
            cursor = execute(sql, params)
            statement = send(cursor.fetchall() if type(sql) is Query else NO_ROWS)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
