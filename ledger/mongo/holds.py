"""Holds: placed by one conditional update, ended (settled, released, expired) in transactions.

An open hold lives inside its customer document, so placing one is a single
``update_one`` whose filter computes what is available (``queries.hold_filter``)
and whose ``$push`` adds the hold: no transaction, and concurrent holds on one
org serialise on that document without conflicts or retries. Ending a hold
pulls it out of the document and writes its permanent record
(``payments_holds``, plus the usage record when settled) in one transaction,
so settle, release and the sweep cannot both end the same hold.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from bson.int64 import Int64
from pymongo import AsyncMongoClient, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from ledger.clock import from_ms
from ledger.errors import HoldNotFound, HoldNotOpen, IdempotencyConflict, LedgerUnavailable
from ledger.models import (
    Balance,
    HoldOutcome,
    HoldPlaced,
    HoldRefused,
    HoldState,
    SettleResult,
    StoredReply,
    UsageDetails,
)
from ledger.mongo import keys, outbox, reply_keys
from ledger.mongo.collections import Collections
from ledger.mongo.documents import (
    Document,
    OpenHold,
    account_from_doc,
    ended_hold,
    find_open_hold,
    held_units,
    open_holds,
    usage_doc,
    usage_from_doc,
)
from ledger.mongo.operations import load_customer, roll_period, roll_period_if_due
from ledger.mongo.queries import (
    expired_holds_filter,
    hold_filter,
    mongo_limit,
    open_hold_filter,
    pull_expired_holds,
    pull_hold,
    spend_update,
)
from ledger.mongo.rules import roll_is_due
from ledger.mongo.transactions import run_transaction
from ledger.replays import check_settlement_replay, hold_replay
from ledger.waterfall import settlement_split

HOLD_ATTEMPTS = 4
"""Tries of the conditional update when the balance changes between it and the diagnosis."""


@dataclass(frozen=True, slots=True)
class KnownHold:
    """What a request id's earlier hold, open or ended, committed to."""

    org_id: str
    amount_units: int
    expires_at_ms: int


def available_units(customer: Document, now_ms: int) -> int:
    return Balance(account_from_doc(customer), held_units(customer, now_ms)).available_units


async def _known_hold(
    collections: Collections, request_id: str, session: AsyncClientSession | None = None
) -> KnownHold | None:
    customer = await collections.customers.find_one(
        open_hold_filter(request_id),
        {"holds": {"$elemMatch": {"request_id": request_id}}},
        session=session,
    )
    if customer is not None:
        hold = OpenHold.from_doc(customer["holds"][0])
        return KnownHold(customer["_id"], hold.amount_units, hold.expires_at_ms)
    ended = await collections.holds.find_one({"_id": request_id}, session=session)
    if ended is not None:
        return KnownHold(ended["org_id"], int(ended["amount_units"]), int(ended["expires_at_ms"]))
    return None


def _replay(known: KnownHold, request_id: str, org_id: str, amount_units: int) -> HoldPlaced:
    return hold_replay(
        request_id,
        org_id,
        amount_units,
        held_org_id=known.org_id,
        held_amount_units=known.amount_units,
        expires_at_ms=known.expires_at_ms,
    )


async def _confirm(collections: Collections, org_id: str, hold: OpenHold) -> HoldPlaced:
    """Answer a pushed hold, unless its request id had already ended.

    The hold filter only sees the org's open holds: a retried hold whose first
    attempt already ended pushes a second copy. Ending a hold pulls it and
    records it in one transaction, so once the push has passed the filter the
    record is visible here; the copy is taken back and the first answer given.
    """
    ended = await collections.holds.find_one({"_id": hold.request_id})
    if ended is None:
        return HoldPlaced(hold.request_id, org_id, hold.amount_units, from_ms(hold.expires_at_ms))
    await collections.customers.update_one(
        {"_id": org_id},
        {
            "$pull": {
                "holds": {
                    "request_id": hold.request_id,
                    "created_at_ms": Int64(hold.created_at_ms),
                    "expires_at_ms": Int64(hold.expires_at_ms),
                }
            }
        },
    )
    known = KnownHold(ended["org_id"], int(ended["amount_units"]), int(ended["expires_at_ms"]))
    return _replay(known, hold.request_id, org_id, hold.amount_units)


async def place_hold(
    client: AsyncMongoClient[dict[str, Any]],
    collections: Collections,
    org_id: str,
    amount_units: int,
    request_id: str,
    ttl_s: float,
    key_id: str | None,
    now_ms: int,
) -> HoldPlaced | HoldRefused:
    hold = OpenHold(request_id, amount_units, key_id, now_ms, now_ms + int(ttl_s * 1000))
    for _ in range(HOLD_ATTEMPTS):
        try:
            pushed = await collections.customers.update_one(
                hold_filter(org_id, request_id, amount_units, now_ms),
                {"$push": {"holds": hold.to_doc()}},
            )
        except DuplicateKeyError as error:
            raise IdempotencyConflict("hold", request_id, "open for another org") from error
        if pushed.modified_count:
            return await _confirm(collections, org_id, hold)
        # Not placed: say why, in the order the SQLite backend decides.
        known = await _known_hold(collections, request_id)
        if known is not None:
            return _replay(known, request_id, org_id, amount_units)
        customer = await load_customer(collections, org_id, None)
        if roll_is_due(customer, now_ms):
            await run_transaction(
                client, lambda session: roll_period(collections, session, org_id, now_ms)
            )
            continue
        account = account_from_doc(customer)
        available = account.net_balance_units - held_units(customer, now_ms)
        if amount_units > available:
            return HoldRefused(request_id, org_id, max(available, 0), amount_units)
    raise LedgerUnavailable(
        f"hold {request_id!r} kept racing concurrent balance changes ({HOLD_ATTEMPTS} tries)"
    )


async def place_limited_hold(
    collections: Collections,
    session: AsyncClientSession,
    key: Document,
    org_id: str,
    amount_units: int,
    request_id: str,
    ttl_s: float,
    tokens: int,
    now_ms: int,
) -> HoldOutcome:
    """A hold of a key with limits: the org's funds and the key's limits in one transaction
    (``ledger.mongo.keys``), decided in the SQL backends' order."""
    hold = OpenHold(request_id, amount_units, key["key_id"], now_ms, now_ms + int(ttl_s * 1000))
    known = await _known_hold(collections, request_id, session)
    if known is not None:
        return _replay(known, request_id, org_id, amount_units)
    customer = await roll_period_if_due(
        collections, session, await load_customer(collections, org_id, session), now_ms
    )
    available = available_units(customer, now_ms)
    if amount_units > available:
        return HoldRefused(request_id, org_id, available, amount_units)
    refused = await keys.admit(collections, session, key, customer, hold, tokens, now_ms)
    if refused is not None:
        return refused
    await collections.customers.update_one(
        {"_id": org_id}, {"$push": {"holds": hold.to_doc()}}, session=session
    )
    return HoldPlaced(request_id, org_id, amount_units, from_ms(hold.expires_at_ms))


async def _take_hold(
    collections: Collections, session: AsyncClientSession, request_id: str
) -> tuple[Document | None, Document | None]:
    """Pull the open hold out of its customer; returns (customer before, ended record).

    An ended record next to an open copy means the copy was a retry's leftover
    (see ``_confirm``): pulling it is right, and the hold counts as ended.
    """
    before = await collections.customers.find_one_and_update(
        open_hold_filter(request_id),
        pull_hold(request_id),
        return_document=ReturnDocument.BEFORE,
        session=session,
    )
    ended = await collections.holds.find_one({"_id": request_id}, session=session)
    return before, ended


async def _settled_before(
    collections: Collections,
    session: AsyncClientSession,
    ended: Document,
    actual_units: int,
    now_ms: int,
) -> SettleResult:
    request_id = ended["_id"]
    if ended["state"] != HoldState.SETTLED:
        raise HoldNotOpen(request_id, ended["state"])
    found = await collections.usage_records.find_one({"request_id": request_id}, session=session)
    assert found is not None, "a settled hold always has its usage record"
    record = usage_from_doc(found)
    check_settlement_replay(request_id, record.charged_units, actual_units)
    customer = await load_customer(collections, record.org_id, session)
    return SettleResult(record, available_units(customer, now_ms), replayed=True)


async def settle(
    collections: Collections,
    session: AsyncClientSession,
    request_id: str,
    actual_units: int,
    details: UsageDetails,
    reply: StoredReply | None,
    now_ms: int,
) -> SettleResult:
    """Turn the hold into the debit: the pull is the first write, so this transaction owns
    the customer document from its first statement and concurrent holds wait for it.

    A hold the sweep already ended as expired is settled all the same (from its
    record, reserving nothing): the call used what it used."""
    before, ended = await _take_hold(collections, session, request_id)
    if ended is not None and ended["state"] != HoldState.EXPIRED:
        return await _settled_before(collections, session, ended, actual_units, now_ms)
    if ended is not None:
        org_id = ended["org_id"]
        customer = await load_customer(collections, org_id, session)
        hold = OpenHold(request_id, int(ended["amount_units"]), ended["key_id"], 0, 0)
    elif before is not None:
        org_id, customer = before["_id"], before
        found = find_open_hold(before, request_id)
        assert found is not None, "the filter matched this hold"
        hold = found
    else:
        raise HoldNotFound(request_id)
    held = held_units(customer, now_ms)
    account = account_from_doc(await roll_period_if_due(collections, session, customer, now_ms))
    reserved = 0 if ended is not None or hold.expires_at_ms <= now_ms else hold.amount_units
    split = settlement_split(actual_units, reserved, held, account)
    after = await collections.customers.find_one_and_update(
        {"_id": org_id},
        spend_update(
            split.subscription_units,
            split.purchased_units,
            split.granted_units,
            split.debt_units,
            now_ms,
        ),
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    assert after is not None, "the customer was written in this same transaction"
    record = usage_doc(request_id, org_id, actual_units, split, details, now_ms)
    await collections.usage_records.insert_one(record, session=session)
    if ended is None:
        await collections.holds.insert_one(
            ended_hold(hold, org_id, HoldState.SETTLED, now_ms), session=session
        )
    else:
        await collections.holds.update_one(
            {"_id": request_id},
            {"$set": {"state": HoldState.SETTLED.value, "ended_at_ms": Int64(now_ms)}},
            session=session,
        )
    if reply is not None:
        await reply_keys.keep_reply(collections, session, request_id, reply)
    balance_after = account_from_doc(after).net_balance_units
    if outbox.crossing_due(after, balance_after):
        await outbox.crossings(collections, session, after, request_id, balance_after, now_ms)
    if hold.key_id is not None:
        await keys.settled(
            collections,
            session,
            hold.key_id,
            request_id,
            actual_units,
            details.total_tokens,
            now_ms,
        )
    return SettleResult(usage_from_doc(record), available_units(after, now_ms))


async def renew_holds(
    collections: Collections, request_ids: Sequence[str], expires_ms: int, now_ms: int
) -> None:
    """Move the expiry of the open, unexpired holds among ``request_ids`` to ``expires_ms``."""
    live = {"request_id": {"$in": list(request_ids)}, "expires_at_ms": {"$gt": Int64(now_ms)}}
    await collections.customers.update_many(
        {"holds": {"$elemMatch": live}},
        {"$set": {"holds.$[renewed].expires_at_ms": Int64(expires_ms)}},
        array_filters=[{f"renewed.{name}": condition for name, condition in live.items()}],
    )


async def release(
    collections: Collections, session: AsyncClientSession, request_id: str, now_ms: int
) -> bool:
    before, ended = await _take_hold(collections, session, request_id)
    if ended is not None:
        return False
    if before is None:
        raise HoldNotFound(request_id)
    hold = find_open_hold(before, request_id)
    assert hold is not None, "the filter matched this hold"
    await collections.holds.insert_one(
        ended_hold(hold, before["_id"], HoldState.RELEASED, now_ms), session=session
    )
    if hold.key_id is not None:
        await keys.released(collections, session, hold.key_id, request_id, now_ms)
    return True


async def _expire_org_holds(
    collections: Collections,
    session: AsyncClientSession,
    org_id: str,
    request_ids: list[str],
    now_ms: int,
) -> int:
    before = await collections.customers.find_one_and_update(
        {"_id": org_id},
        pull_expired_holds(request_ids, now_ms),
        return_document=ReturnDocument.BEFORE,
        session=session,
    )
    if before is None:
        return 0
    chosen = set(request_ids)
    pulled = [
        hold
        for hold in open_holds(before)
        if hold.request_id in chosen and hold.expires_at_ms <= now_ms
    ]
    if not pulled:
        return 0
    records = []
    for hold in pulled:
        record = ended_hold(hold, org_id, HoldState.EXPIRED, now_ms)
        del record["_id"]
        # An existing record belongs to a retry's leftover copy: it ended already.
        records.append(UpdateOne({"_id": hold.request_id}, {"$setOnInsert": record}, upsert=True))
    result = await collections.holds.bulk_write(records, session=session)
    return result.upserted_count


async def expire_holds(
    client: AsyncMongoClient[dict[str, Any]], collections: Collections, limit: int, now_ms: int
) -> int:
    """Record holds past their expiry as expired, one transaction per org."""
    batch = mongo_limit(limit)
    if batch is None:
        return 0
    customers = (
        await collections.customers.find(expired_holds_filter(now_ms), {"holds": 1})
        .limit(batch)
        .to_list()
    )
    expired = 0
    for customer in customers:
        due = [hold.request_id for hold in open_holds(customer) if hold.expires_at_ms <= now_ms]
        if limit > 0:
            due = due[: limit - expired]
        if not due:
            break
        expired += await run_transaction(
            client,
            partial(
                _expire_org_holds,
                collections,
                org_id=customer["_id"],
                request_ids=due,
                now_ms=now_ms,
            ),
        )
    return expired
