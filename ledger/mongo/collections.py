"""The ledger's collections: the original design's three, plus holds, access keys, events,
the owners of stored responses and idempotent replies, all read from the primary and
written with a bounded majority."""

from dataclasses import dataclass
from typing import Any

from pymongo import ReadPreference, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

Collection = AsyncCollection[dict[str, Any]]

CUSTOMERS = "payments_customers"
CREDIT_TRANSACTIONS = "payments_credit_transactions"
USAGE_RECORDS = "payments_usage_records"
HOLDS = "payments_holds"
ACCESS_KEYS = "payments_access_keys"
PROCESSED_EVENTS = "payments_processed_events"
RESPONSE_OWNERS = "payments_response_owners"
IDEMPOTENT_REPLIES = "payments_idempotent_replies"
OUTBOX = "payments_outbox"
RECHARGES = "payments_recharges"

WRITE_TIMEOUT_MS = 5_000
"""How long a write waits for a majority to acknowledge it (``wtimeout``). Without a bound, a
replica set that lost its majority would hang every hold and settlement; with one, the
write fails (``WTimeoutError``) and the ledger reports itself unavailable: the call is
refused with 503 (fail closed), and the retried write is safe, as every write is
idempotent by its id."""

MAJORITY = WriteConcern("majority", wtimeout=WRITE_TIMEOUT_MS)
"""Every write outside a transaction waits for a majority, whatever the URL or the server
default says (transactions commit with majority too): an acknowledged hold, event or key
survives a failover, as a committed SQLite write survives a power loss."""

PRIMARY = ReadPreference.PRIMARY
"""Every read goes to the primary, whatever read preference the URL names: a secondary may
lag, and a lagging read could miss an ended hold or a stored reply and act on it twice."""


@dataclass(frozen=True, slots=True)
class Collections:
    customers: Collection
    """One document per org (``_id`` = org id): buckets, plan, and its open holds embedded."""
    credit_transactions: Collection
    usage_records: Collection
    holds: Collection
    """Holds that ended (settled, released, expired), ``_id`` = request id; open ones are
    embedded in their customer document."""
    access_keys: Collection
    processed_events: Collection
    response_owners: Collection
    """Which org owns which stored response, ``_id`` = response id."""
    idempotent_replies: Collection
    """Idempotency keys of metered calls (``_id`` = org id and key) and the replies kept."""
    outbox: Collection
    """Alerts to deliver and recharges to start (``_id`` = event id)."""
    recharges: Collection

    @classmethod
    def of(cls, database: AsyncDatabase[dict[str, Any]]) -> "Collections":
        def collection(name: str) -> Collection:
            return database.get_collection(name, write_concern=MAJORITY, read_preference=PRIMARY)

        return cls(
            customers=collection(CUSTOMERS),
            credit_transactions=collection(CREDIT_TRANSACTIONS),
            usage_records=collection(USAGE_RECORDS),
            holds=collection(HOLDS),
            access_keys=collection(ACCESS_KEYS),
            processed_events=collection(PROCESSED_EVENTS),
            response_owners=collection(RESPONSE_OWNERS),
            idempotent_replies=collection(IDEMPOTENT_REPLIES),
            outbox=collection(OUTBOX),
            recharges=collection(RECHARGES),
        )
