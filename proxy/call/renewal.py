"""Live calls keep their holds: the worker renews every hold it owns, in one periodic batch.

A hold expires only so that a crashed worker's reservations stop counting, so
the worker that runs a call renews its hold for as long as the call runs,
however long that is (``SPU_CALL_DEADLINE_S`` bounds it). One task per
process renews them all, every third of the hold's time to live, in batches
of at most ``MAX_RENEWAL_BATCH``: two renewals can fail in a row (the ledger
unreachable) before a live hold expires. A call's hold is renewed from its
placing until its ending is written; a hold that expires anyway is still
settled (``LedgerStore.settle``), so the call is charged all the same.
"""

import asyncio
import logging
from itertools import islice

from ledger import LedgerStore, LedgerUnavailable

logger = logging.getLogger("spu.metering")

RENEWALS_PER_TTL = 3
MAX_RENEWAL_BATCH = 500


class HoldRenewal:
    def __init__(self, store: LedgerStore, *, hold_ttl_s: float) -> None:
        self._store = store
        self._hold_ttl_s = hold_ttl_s
        self.interval_s = hold_ttl_s / RENEWALS_PER_TTL
        self._live: set[str] = set()

    def add(self, request_id: str) -> None:
        """A hold placed for a call this worker runs."""
        self._live.add(request_id)

    def discard(self, request_id: str) -> None:
        """Its call's ending is written: nothing to keep alive any more."""
        self._live.discard(request_id)

    @property
    def live(self) -> int:
        return len(self._live)

    async def renew(self) -> None:
        """Renew every live hold once (the ones that end meanwhile are skipped by the ledger)."""
        pending = iter(list(self._live))
        while batch := list(islice(pending, MAX_RENEWAL_BATCH)):
            try:
                await self._store.renew_holds(batch, self._hold_ttl_s)
            except LedgerUnavailable:
                logger.warning("renewal of %d live holds failed; retrying next round", len(batch))
            except Exception:
                logger.exception("renewal of %d live holds failed; retrying next round", len(batch))

    async def renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.renew()
