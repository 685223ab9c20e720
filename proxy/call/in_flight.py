"""Calls in flight per organization in this worker process, under a cap (429 beyond it).

The cap is per process, as documented (``SPU_MAX_IN_FLIGHT_PER_ORG``): a call
enters when its hold is about to be placed and leaves when it ends.
"""


class InFlightCap:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

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

    @property
    def total(self) -> int:
        return sum(self._counts.values())
