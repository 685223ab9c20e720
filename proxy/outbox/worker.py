"""A background loop per gateway process that claims outbox events and hands them on.

Events are claimed through the ledger with a lease, so several workers (and
processes) share the outbox without sending an event twice while it is in
hand; one that dies mid-way leaves its events to be claimed again when their
lease ends. Delivery is therefore at least once. A failed attempt is retried
after a growing pause; after ``max_attempts`` the event is a dead letter,
kept in the ledger for operators (``/admin/organizations/{org}/alerts/events``).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ledger import LedgerError, LedgerStore
from ledger.outbox import OutboxEvent, OutboxState, OutboxTopic
from proxy.settings import Settings

logger = logging.getLogger("spu.outbox")

CLAIM_BATCH = 20
LEASE_S = 60.0
"""Longer than one attempt may take (each is bounded by its own timeout)."""


class AttemptFailed(Exception):
    """An attempt that should be tried again later (a receiver down, Stripe unreachable)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    first_delay_s: float
    max_delay_s: float

    def delay_s(self, attempts: int) -> float | None:
        """The pause before the next attempt after ``attempts`` failed ones; None: give up."""
        if attempts >= self.max_attempts:
            return None
        return min(self.first_delay_s * 2 ** (attempts - 1), self.max_delay_s)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        settings.outbox_max_attempts, settings.outbox_retry_first_s, settings.outbox_retry_max_s
    )


Handler = Callable[[OutboxEvent], Awaitable[None]]
Outcome = Callable[[OutboxEvent, OutboxState], Awaitable[None]]
"""Told each attempt's result: delivered, pending (to retry) or dead."""


class OutboxWorker:
    def __init__(
        self,
        store: LedgerStore,
        topic: OutboxTopic,
        handle: Handler,
        *,
        retries: RetryPolicy,
        poll_s: float,
        on_outcome: Outcome,
    ) -> None:
        self._store = store
        self._topic = topic
        self._handle = handle
        self._retries = retries
        self._poll_s = poll_s
        self._on_outcome = on_outcome
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"outbox-{self._topic.value}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                handled = await self.drain_once()
            except LedgerError as error:
                logger.warning("outbox %s: ledger unavailable: %s", self._topic.value, error)
                handled = 0
            if handled == 0:
                await asyncio.sleep(self._poll_s)

    async def drain_once(self) -> int:
        """Claim the due events and attempt each once; returns how many were claimed."""
        events = await self._store.claim_outbox(self._topic, limit=CLAIM_BATCH, lease_s=LEASE_S)
        for event in events:
            await self._attempt(event)
        return len(events)

    async def _attempt(self, event: OutboxEvent) -> None:
        try:
            await self._handle(event)
        except AttemptFailed as error:
            attempts = event.attempts + 1
            delay_s = self._retries.delay_s(attempts)
            retry_at = None if delay_s is None else datetime.now(UTC) + timedelta(seconds=delay_s)
            state = await self._store.outbox_failed(event.event_id, str(error), retry_at)
            if state is OutboxState.DEAD:
                logger.error(
                    "outbox event %s is a dead letter after %d attempts: %s",
                    event.event_id,
                    attempts,
                    error,
                )
            if state is not None:
                await self._on_outcome(event, state)
            return
        if await self._store.outbox_delivered(event.event_id):
            await self._on_outcome(event, OutboxState.DELIVERED)
