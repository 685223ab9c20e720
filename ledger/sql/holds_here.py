"""The calls underway in this process, from their hold to its ending: what a backend may
tune by.

A hold's org, for a settle or release that names only the request id (so
PostgreSQL can lock and group it without asking the database), and how many
calls are underway here (SQLite commits a lone call's writes on the caller's
thread). A call counts from the moment its hold is sent, so calls that start
together see each other. Bounded by the process's calls in flight: a refusal
or an ending removes its entry, and the sweep forgets holds that expired
without one here.
"""

from collections.abc import Iterable
from datetime import datetime

from ledger.clock import from_ms
from ledger.models import HoldPlaced


class HoldsHere(dict[str, tuple[str, datetime | None]]):
    """Request id → (org id, expiry; None while the hold is being placed).

    A dict itself, so that counting and looking up, done on every write, cost no
    Python call."""

    def placing(self, request_id: str, org_id: str) -> None:
        self[request_id] = (org_id, None)

    def placed(self, hold: HoldPlaced) -> None:
        self[hold.request_id] = (hold.org_id, hold.expires_at)

    def renewed(self, request_ids: Iterable[str], expires_ms: int) -> None:
        """The holds here among ``request_ids`` expire later now (unknown ones stay unknown)."""
        expires_at = from_ms(expires_ms)
        for request_id in request_ids:
            known = self.get(request_id)
            if known is not None and known[1] is not None:
                self[request_id] = (known[0], expires_at)

    def org_of(self, request_id: str) -> str | None:
        known = self.get(request_id)
        return None if known is None else known[0]

    def ended(self, request_id: str) -> None:
        self.pop(request_id, None)

    def forget_expired(self, now_ms: int) -> None:
        """Holds past their expiry were abandoned here (their call never ended)."""
        now = from_ms(now_ms)
        for request_id, (_, expires_at) in list(self.items()):
            if expires_at is not None and expires_at <= now:
                del self[request_id]
