"""Where SQLite and PostgreSQL disagree: placeholders and a few fragments, rendered once.

Shared statements are written with numbered placeholders (``?1``, ``?2``: a
number may repeat) and ``{fragment}`` names for the few expressions the two
dialects spell differently. Each dialect renders a statement once and keeps
the text, so rendering costs a dictionary lookup per statement.
"""

import re
from dataclasses import dataclass, field

_NUMBERED = re.compile(r"\?(\d+)")


@dataclass(frozen=True, eq=False)
class Dialect:
    name: str
    placeholder_prefix: str
    """``?`` for SQLite (``?1``), ``$`` for PostgreSQL (``$1``)."""
    fragments: dict[str, str]
    rendered: dict[str, str] = field(default_factory=dict, repr=False)
    """Every template rendered so far, by template: a runner may look here first."""

    def render(self, template: str) -> str:
        try:
            return self.rendered[template]
        except KeyError:
            text = _NUMBERED.sub(self.placeholder_prefix + r"\1", template)
            if "{" in text:
                text = text.format_map(self.fragments)
            self.rendered[template] = text
            return text


SQLITE = Dialect(
    "sqlite",
    "?",
    {
        "day": "strftime('%Y-%m-%d', created_at_ms / 1000, 'unixepoch')",
        "insertion_order": "rowid",
        "sum_of_amounts": "COALESCE(SUM(o.amount_units), 0)",
    },
)

POSTGRESQL = Dialect(
    "postgresql",
    "$",
    {
        "day": "to_char(to_timestamp(created_at_ms / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        "insertion_order": "seq",
        "sum_of_amounts": "CAST(COALESCE(SUM(o.amount_units), 0) AS BIGINT)",
    },
)
