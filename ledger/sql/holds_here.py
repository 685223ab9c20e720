"""The holds this process placed and has not ended: what a backend may tune by.

A hold's org, for a settle or release that names only the request id (so
PostgreSQL can lock and group it without asking the database), and how many
calls are underway here (SQLite commits a lone call's writes on the caller's
thread). Bounded by the process's calls in flight: an ending removes its hold,
and the sweep forgets holds that expired without one here.
"""

from ledger.models import HoldPlaced


class HoldsHere:
    def __init__(self) -> None:
        self._holds: dict[str, tuple[str, int]] = {}
        """Request id → (org id, expiry in epoch ms)."""

    def __len__(self) -> int:
        return len(self._holds)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._holds

    def placed(self, hold: HoldPlaced) -> None:
        self._holds[hold.request_id] = (hold.org_id, int(hold.expires_at.timestamp() * 1000))

    def org_of(self, request_id: str) -> str | None:
        known = self._holds.get(request_id)
        return None if known is None else known[0]

    def ended(self, request_id: str) -> None:
        self._holds.pop(request_id, None)

    def forget_expired(self, now_ms: int) -> None:
        """Holds past their expiry were abandoned here (their call never ended)."""
        for request_id, (_, expires_ms) in list(self._holds.items()):
            if expires_ms <= now_ms:
                del self._holds[request_id]
