"""Runs a shared ledger routine (``ledger.sql.routine``) on a sync ``sqlite3`` connection."""

import sqlite3
from typing import TypeVar

from ledger.sql.dialect import SQLITE
from ledger.sql.routine import Query, Routine, Row, Writes

T = TypeVar("T")


def run(connection: sqlite3.Connection, routine: Routine[T]) -> T:
    """Every statement in turn, in the caller's transaction; returns the routine's result."""
    answer: list[Row] | None = None
    try:
        while True:
            statement = routine.send(answer)
            answer = None
            if isinstance(statement, Writes):
                for command in statement.commands:
                    connection.execute(SQLITE.render(command.sql), command.params)
                continue
            cursor = connection.execute(SQLITE.render(statement.sql), statement.params)
            if type(statement) is Query:
                answer = cursor.fetchall()
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
