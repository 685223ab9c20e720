"""Idempotency keys on MongoDB: claimed by a compare-and-set beside the hold, kept replies
written in the settlement's transaction.

A hold here is one conditional update of its customer document, with no
transaction, so a key is claimed just before it: its document
(``payments_idempotent_replies``, ``_id`` = org and key) names the claiming
request and, until that request's hold exists, a lease of one hold's time to
live, so that a second request with the key sees it in flight meanwhile. A
hold that is refused gives its claim back at once; a worker that dies between
claim and hold leaves a lease that runs out as its hold would have. Whose the
key is, is ``ledger.reply_keys.key_use``, the rule the SQL backends ask too.

Claims race by compare-and-set: a new key is inserted (the unique ``_id``
lets one insert win), a key free again is taken over only from the request
that held it; the loser reads again and finds the winner in flight.
"""

from bson.binary import Binary
from bson.int64 import Int64
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from ledger.errors import LedgerUnavailable
from ledger.models import HoldState, KeyInUse, ReplyKey, StoredReply
from ledger.mongo.collections import Collections
from ledger.mongo.documents import Document, find_open_hold
from ledger.mongo.queries import mongo_limit, open_hold_filter
from ledger.reply_keys import KeptKey, key_use

CLAIM_ATTEMPTS = 4
"""Reads and compare-and-sets of one claim while other requests race for the key."""


def key_id(org_id: str, key: str) -> dict[str, str]:
    return {"org_id": org_id, "key": key}


async def _hold_of(collections: Collections, request_id: str) -> tuple[HoldState | None, int]:
    """The state and expiry of a request's hold: open in its customer, or ended, or none."""
    customer = await collections.customers.find_one(
        open_hold_filter(request_id), {"holds": {"$elemMatch": {"request_id": request_id}}}
    )
    if customer is not None:
        hold = find_open_hold(customer, request_id)
        assert hold is not None, "the filter matched this hold"
        return HoldState.OPEN, hold.expires_at_ms
    ended = await collections.holds.find_one({"_id": request_id}, {"state": 1})
    return (None, 0) if ended is None else (HoldState(ended["state"]), 0)


async def _kept(collections: Collections, doc: Document) -> KeptKey:
    state, expires_ms = await _hold_of(collections, doc["request_id"])
    if state is None:
        # Claimed, and its hold not placed (yet): in flight until the lease runs out.
        state, expires_ms = HoldState.OPEN, int(doc["lease_until_ms"])
    content_type = doc.get("content_type")
    return KeptKey(
        fingerprint=doc["fingerprint"],
        request_id=doc["request_id"],
        expires_at_ms=int(doc["expires_at_ms"]),
        hold_state=state,
        hold_expires_at_ms=expires_ms,
        reply=None if content_type is None else StoredReply(content_type, doc.get("body")),
    )


def _claim_doc(
    org_id: str, reply_key: ReplyKey, request_id: str, lease_ms: int, now_ms: int
) -> Document:
    return {
        "_id": key_id(org_id, reply_key.key),
        "fingerprint": reply_key.fingerprint,
        "request_id": request_id,
        "expires_at_ms": Int64(now_ms + int(reply_key.keep_s * 1000)),
        "lease_until_ms": Int64(now_ms + lease_ms),
        "content_type": None,
        "body": None,
    }


async def claim(
    collections: Collections,
    org_id: str,
    reply_key: ReplyKey,
    request_id: str,
    lease_ms: int,
    now_ms: int,
) -> KeyInUse | None:
    """Claim the key for ``request_id``; the reason it is taken when it cannot be."""
    claimed = _claim_doc(org_id, reply_key, request_id, lease_ms, now_ms)
    for _ in range(CLAIM_ATTEMPTS):
        doc = await collections.idempotent_replies.find_one({"_id": claimed["_id"]})
        if doc is None:
            try:
                await collections.idempotent_replies.insert_one(claimed)
                return None
            except DuplicateKeyError:
                continue
        taken = key_use(await _kept(collections, doc), reply_key, request_id, now_ms)
        if taken is not None:
            return taken
        if doc["request_id"] == request_id:
            return None
        swapped = await collections.idempotent_replies.replace_one(
            {"_id": claimed["_id"], "request_id": doc["request_id"]}, claimed
        )
        if swapped.matched_count:
            return None
    raise LedgerUnavailable(f"idempotency key {reply_key.key!r} kept changing hands")


async def give_back(collections: Collections, org_id: str, key: str, request_id: str) -> None:
    """A refused hold's claim: the key is free again (unless another request took it since)."""
    await collections.idempotent_replies.delete_one(
        {"_id": key_id(org_id, key), "request_id": request_id}
    )


async def keep_reply(
    collections: Collections, session: AsyncClientSession, request_id: str, reply: StoredReply
) -> None:
    """The settled call's reply, under its key, in the settlement's own transaction."""
    body = None if reply.body is None else Binary(reply.body)
    await collections.idempotent_replies.update_one(
        {"request_id": request_id},
        {"$set": {"content_type": reply.content_type, "body": body}},
        session=session,
    )


async def forget(collections: Collections, limit: int, now_ms: int) -> int:
    """Delete up to ``limit`` keys kept past their time; returns how many."""
    batch = mongo_limit(limit)
    if batch is None:
        return 0
    expired = {"expires_at_ms": {"$lte": Int64(now_ms)}}
    found = await collections.idempotent_replies.find(expired, {"_id": 1}).limit(batch).to_list()
    if not found:
        return 0
    ids = [doc["_id"] for doc in found]
    deleted = await collections.idempotent_replies.delete_many({"_id": {"$in": ids}, **expired})
    return deleted.deleted_count
