"""The worker's one periodic renewal of its live holds, and the bound on kept replies."""

from collections.abc import Sequence

from ledger import LedgerUnavailable, StoredReply
from proxy.call.idempotency import Idempotency, ReplyCapture
from proxy.call.renewal import MAX_RENEWAL_BATCH, RENEWALS_PER_TTL, HoldRenewal


class RenewingStore:
    """Records each ``renew_holds`` call; the batches listed in ``failing`` fail."""

    def __init__(self, failing: frozenset[int] = frozenset()) -> None:
        self.batches: list[tuple[list[str], float]] = []
        self.failing = failing

    async def renew_holds(self, request_ids: Sequence[str], ttl_s: float) -> None:
        self.batches.append((list(request_ids), ttl_s))
        if len(self.batches) - 1 in self.failing:
            raise LedgerUnavailable("down for this batch")


async def test_every_live_hold_is_renewed_in_bounded_batches_for_a_whole_ttl() -> None:
    store = RenewingStore()
    renewal = HoldRenewal(store, hold_ttl_s=900)  # type: ignore[arg-type]
    ids = [f"req-{n}" for n in range(2 * MAX_RENEWAL_BATCH + 7)]
    for request_id in ids:
        renewal.add(request_id)

    await renewal.renew()

    assert [len(batch) for batch, _ in store.batches] == [MAX_RENEWAL_BATCH] * 2 + [7]
    assert sorted(i for batch, _ in store.batches for i in batch) == sorted(ids)
    assert {ttl for _, ttl in store.batches} == {900}
    assert renewal.interval_s == 900 / RENEWALS_PER_TTL


async def test_an_ended_call_is_no_longer_renewed_and_a_failed_batch_spares_the_rest() -> None:
    store = RenewingStore(failing=frozenset({0}))
    renewal = HoldRenewal(store, hold_ttl_s=2)  # type: ignore[arg-type]
    for n in range(MAX_RENEWAL_BATCH + 3):
        renewal.add(f"req-{n}")
    renewal.discard("req-0")
    renewal.discard("never-added")

    await renewal.renew()

    assert renewal.live == MAX_RENEWAL_BATCH + 2
    assert [len(batch) for batch, _ in store.batches] == [MAX_RENEWAL_BATCH, 2]
    assert "req-0" not in {i for batch, _ in store.batches for i in batch}


def test_a_reply_is_kept_up_to_the_bound_and_beyond_it_only_as_sent() -> None:
    idempotency = Idempotency(keep_s=60, max_reply_bytes=10)
    assert idempotency.kept("application/json", b"0123456789") == StoredReply(
        "application/json", b"0123456789"
    )
    assert idempotency.kept("application/json", b"0123456789!") == StoredReply(
        "application/json", None
    )


def test_a_captured_stream_is_kept_whole_or_not_at_all() -> None:
    within = ReplyCapture(max_bytes=8)
    for piece in (b"data", b": x\n\n"[:4]):
        within.add(piece)
    assert within.reply("text/event-stream") == StoredReply("text/event-stream", b"data: x\n")

    beyond = ReplyCapture(max_bytes=8)
    for piece in (b"data", b": xy\n\n", b"more"):
        beyond.add(piece)
    assert beyond.reply("text/event-stream") == StoredReply("text/event-stream", None)
