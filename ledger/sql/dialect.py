"""Where SQLite and PostgreSQL disagree: the shared SQL is spelled as SQLite takes it, and
PostgreSQL's text is derived from it once per statement.

Shared statements use numbered placeholders (``?1``, ``?2``: a number may
repeat), which SQLite takes as they are and PostgreSQL spells ``$1``, ``$2``.
Beyond those, a few spellings differ, and each is written in the shared SQL
exactly as below: the day of a millisecond timestamp, the insertion order
(SQLite's ``rowid``, PostgreSQL's ``seq`` column), the sums of hold amounts,
hold tokens and charges (PostgreSQL sums integers as numeric, so it casts back),
and the elements of a JSON array of strings given as one parameter (``SELECT value
FROM json_each(?1)``: a list of ids of any length in one fixed statement). SQLite
therefore runs the shared text untouched, with no lookup on its writer thread.
"""

import re

SQLITE_DAY = "strftime('%Y-%m-%d', created_at_ms / 1000, 'unixepoch')"
SQLITE_INSERTION_ORDER = "rowid"
SQLITE_SUM_OF_AMOUNTS = "COALESCE(SUM(o.amount_units), 0)"
SQLITE_SUM_OF_TOKENS = "COALESCE(SUM(r.tokens), 0)"
SQLITE_SUM_OF_CHARGES = "COALESCE(SUM(u.charged_units), 0)"
SQLITE_JSON_EACH = "json_each("

_POSTGRESQL_SPELLINGS = {
    SQLITE_DAY: "to_char(to_timestamp(created_at_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    **{
        total: f"CAST({total} AS BIGINT)"
        for total in (SQLITE_SUM_OF_AMOUNTS, SQLITE_SUM_OF_TOKENS, SQLITE_SUM_OF_CHARGES)
    },
    SQLITE_JSON_EACH: "json_array_elements_text(",
}
_INSERTION_ORDER = re.compile(rf"\b{SQLITE_INSERTION_ORDER}\b")
_NUMBERED = re.compile(r"\?(\d+)")
_postgresql: dict[str, str] = {}


def postgresql(sql: str) -> str:
    """The PostgreSQL text of a shared statement (made once, then looked up)."""
    try:
        return _postgresql[sql]
    except KeyError:
        text = _NUMBERED.sub(r"$\1", sql)
        for sqlite_spelling, postgresql_spelling in _POSTGRESQL_SPELLINGS.items():
            text = text.replace(sqlite_spelling, postgresql_spelling)
        text = _INSERTION_ORDER.sub("seq", text)
        _postgresql[sql] = text
        return text
