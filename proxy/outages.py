"""When to try again after a dependency (the ledger, Stripe) could not be reached: as long as
it has been down.

Nobody can know when a lost dependency comes back, so the advice is the
backoff a careful client would choose, shared by every client of this worker:
a fresh outage advises ``MIN_RETRY_AFTER_S``, and the advice grows with the
outage's age (an outage that has lasted 8 s is not expected back in 1 s), up
to ``MAX_RETRY_AFTER_S``. An outage is over once no failure has been seen for
``MAX_RETRY_AFTER_S``: every client told to wait has come back by then.
"""

import time
from collections.abc import Callable

MIN_RETRY_AFTER_S = 1.0
MAX_RETRY_AFTER_S = 30.0


class Outage:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started_s: float | None = None
        self._last_failure_s = 0.0

    def retry_after_s(self) -> float:
        """Note one more failure to reach the dependency; how long its client should wait."""
        now = self._clock()
        if self._started_s is None or now - self._last_failure_s > MAX_RETRY_AFTER_S:
            self._started_s = now
        self._last_failure_s = now
        return min(max(now - self._started_s, MIN_RETRY_AFTER_S), MAX_RETRY_AFTER_S)


LEDGER = Outage()
"""The ledger's outages, in this worker process (one ledger per process)."""
