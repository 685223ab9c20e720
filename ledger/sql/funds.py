"""What an account can spend, read in one statement inside a write (hold's and settle's read)."""

from typing import NamedTuple

from ledger.errors import AccountNotFound
from ledger.sql.dialect import SQLITE_SUM_OF_AMOUNTS
from ledger.sql.keys import KEY_STATE_COLUMNS
from ledger.sql.routine import Query, Routine

HELD_EXPRESSION = (
    f"a.open_hold_units - (SELECT {SQLITE_SUM_OF_AMOUNTS} FROM holds o"
    " WHERE o.org_id = a.org_id AND o.state = 'open' AND o.expires_at_ms <= ?2)"
)
"""Open holds of account ``a`` that have not expired at ``?2``: the running total minus
the expired ones no sweep has ended yet (a short range of a partial index)."""

_FUNDS = (
    "a.subscription_allowance_units - a.subscription_used_units,"
    " a.purchased_credits_units - a.purchased_used_units,"
    f" a.granted_credits_units - a.granted_used_units, a.debt_units, {HELD_EXPRESSION},"
    " a.renews_locally, a.period_end_ms"
)
"""The columns of ``Funds``, for account ``a`` at ``?2``."""

FUNDS_SQL = Query(f"SELECT {_FUNDS} FROM accounts a WHERE a.org_id = ?1")
FUNDS_AND_HOLD_SQL = Query(
    f"SELECT {_FUNDS}, h.org_id, h.amount_units, h.expires_at_ms, {KEY_STATE_COLUMNS}"
    " FROM accounts a LEFT JOIN holds h ON h.request_id = ?3"
    " LEFT JOIN access_keys k ON k.key_id = ?4 AND k.org_id = a.org_id WHERE a.org_id = ?1"
)
"""An account's funds, any hold already placed under the request id, and the calling key's
limits and use (``ledger.sql.keys``): hold's one read."""
HOLD_AND_FUNDS_SQL = Query(
    f"SELECT h.org_id, h.amount_units, h.state, h.expires_at_ms, {_FUNDS}, h.key_id, h.tokens,"
    " k.created_at_ms, k.budget_units, k.budget_period, a.watch_floor_units"
    " FROM holds h JOIN accounts a ON a.org_id = h.org_id"
    " LEFT JOIN access_keys k ON k.key_id = h.key_id WHERE h.request_id = ?1"
)
"""A hold, its account's funds, its key's budget and its account's highest armed watch
(``ledger.outbox``) in one read: settle's only SELECT on its common path."""


class Funds(NamedTuple):
    """An account's spendable figures, read inside the operation's write transaction."""

    subscription_left_units: int
    purchased_left_units: int
    granted_left_units: int
    debt_units: int
    held_units: int
    """Open holds whose expiry has not passed: an expired hold stops counting at once."""
    renews_locally: bool
    period_end_ms: int | None

    def renewal_due(self, now_ms: int) -> bool:
        """A locally renewed plan whose period has ended, waiting for a hold or settle."""
        return (
            bool(self.renews_locally)
            and self.period_end_ms is not None
            and now_ms >= self.period_end_ms
        )

    @property
    def net_balance_units(self) -> int:
        """What the buckets hold minus debt: the balance watches look at."""
        return (
            self.subscription_left_units
            + self.purchased_left_units
            + self.granted_left_units
            - self.debt_units
        )

    @property
    def available_units(self) -> int:
        """What a new hold may reserve; negative while debt exceeds the buckets."""
        return self.net_balance_units - self.held_units


def read_funds(org_id: str, now_ms: int) -> Routine[Funds]:
    rows = yield FUNDS_SQL, (org_id, now_ms)
    if not rows:
        raise AccountNotFound(org_id)
    return Funds(*rows[0])
