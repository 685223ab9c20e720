"""Calls in flight per organization in this worker process, under a cap (429 beyond it).

The cap is per process, as documented (``SPU_MAX_IN_FLIGHT_PER_ORG``): a call
enters when its hold is about to be placed and leaves when it ends.

A refused call is told when a slot is expected to free: with ``limit`` calls
in flight that each last about ``mean_call_s``, started at spread-out times,
the next one ends about ``mean_call_s / limit`` from now. ``mean_call_s`` is a
moving average of the calls this worker has ended.
"""

INITIAL_MEAN_CALL_S = 1.0
"""The mean call duration assumed before any call has ended."""
MEAN_WEIGHT = 0.05
"""The weight of each ended call in the moving average (about the last 20 calls)."""


class InFlightCap:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}
        self.mean_call_s = INITIAL_MEAN_CALL_S

    def enter(self, org_id: str) -> bool:
        """Take a slot for the org; False when it already has ``limit`` calls in flight."""
        count = self._counts.get(org_id, 0)
        if count >= self.limit:
            return False
        self._counts[org_id] = count + 1
        return True

    def leave(self, org_id: str) -> None:
        remaining = self._counts.get(org_id, 0) - 1
        if remaining > 0:
            self._counts[org_id] = remaining
        else:
            self._counts.pop(org_id, None)

    def call_ended(self, duration_s: float) -> None:
        """A call that held a slot has ended after ``duration_s``."""
        self.mean_call_s += MEAN_WEIGHT * (duration_s - self.mean_call_s)

    def retry_after_s(self) -> float:
        """When a full org's next slot is expected to free."""
        return self.mean_call_s / self.limit

    @property
    def total(self) -> int:
        return sum(self._counts.values())
