"""Runs a shared ledger routine (``ledger.sql.routine``) on psycopg's async cursor.

In pipeline mode ``execute`` only queues a statement, and only ``fetchall``
waits for the server: a routine's commands travel with its next query, so a
hold or a settle costs one round trip, however many statements it writes.
``Step`` runs a routine up to its next query, so that a batch can send the
queries of several routines (of different orgs) before waiting for any.
"""

import functools
import re
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from psycopg import AsyncRawCursor

from ledger.sql.dialect import postgresql
from ledger.sql.routine import NO_ROWS, Params, Query, Routine, Row, Statement, Writes

T = TypeVar("T")

Cursor = AsyncRawCursor[Row]


_PLACEHOLDER = re.compile(r"\$(\d+)")


@functools.cache
def _one_statement(commands: tuple[tuple[str, int], ...]) -> str:
    """``Writes`` as one statement: ``WITH w0 AS (…), w1 AS (…) <last>``, placeholders
    renumbered to follow one another (from each command's template and its parameter count)."""
    parts, offset = [], 0
    for template, count in commands:
        parts.append(_shifted(postgresql(template), offset))
        offset += count
    clauses = ", ".join(f"w{index} AS ({part})" for index, part in enumerate(parts[:-1]))
    return f"WITH {clauses} {parts[-1]}" if clauses else parts[-1]


def _shifted(sql: str, offset: int) -> str:
    return _PLACEHOLDER.sub(lambda match: f"${int(match.group(1)) + offset}", sql)


def _sql_and_params(statement: Statement | Writes) -> tuple[str, Params]:
    if isinstance(statement, Writes):
        commands = statement
        shape = tuple((sql, len(params)) for sql, params in commands)
        return _one_statement(shape), tuple(value for _, params in commands for value in params)
    sql, params = statement
    return postgresql(sql), params


class Step(Generic[T]):
    """One routine on one cursor, advanced a query at a time."""

    __slots__ = ("_answer", "_cursor", "_routine", "_started", "result", "wrote")

    def __init__(self, cursor: Cursor, routine: Routine[T]) -> None:
        self._cursor = cursor
        self._routine = routine
        self._started = False
        self._answer: Sequence[Row] = NO_ROWS
        self.result: Any = None
        self.wrote = False
        """It has sent a write: if it raises now, only a rollback undoes it."""

    async def advance(self) -> bool:
        """Send statements up to the next query; False once the routine has returned.

        Raises what the routine raises.
        """
        answer, self._answer = self._answer, NO_ROWS
        while True:
            try:
                if self._started:
                    statement = self._routine.send(answer)
                else:
                    self._started = True
                    statement = next(self._routine)
            except StopIteration as done:
                self.result = done.value
                return False
            sql, params = _sql_and_params(statement)
            if not sql.startswith("SELECT"):
                self.wrote = True
            await self._cursor.execute(sql, params)
            if not isinstance(statement, Writes) and type(statement[0]) is Query:
                return True
            answer = NO_ROWS

    async def receive(self) -> None:
        """Wait for the rows of the query ``advance`` sent."""
        self._answer = await self._cursor.fetchall()


async def run(cursor: Cursor, routine: Routine[T]) -> T:
    """Every statement in turn, in the cursor's transaction; returns the routine's result."""
    step = Step(cursor, routine)
    while await step.advance():
        await step.receive()
    result: T = step.result
    return result
