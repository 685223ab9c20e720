"""The MongoDB ledger backend (PyMongo's async API), for several gateway hosts.

Design
------
* ``payments_customers`` holds one document per org (``_id`` = org id) with
  the three buckets, debt, plan, and its **open holds embedded** as an array.
  Placing a hold — the hot path — is ONE conditional ``update_one``: its
  filter computes, with ``$expr`` on the server, buckets left − debt − the sum
  of embedded holds whose ``expires_at_ms`` is still ahead, and its ``$push``
  adds the hold only if the amount fits. An expired hold stops counting the
  moment its expiry passes, whether or not the sweep has run. Single-document
  atomicity makes concurrent holds on one org serialise without retries.
* Ending a hold (settle, release, the expiry sweep) is a **transaction**:
  ``$pull`` the hold from its customer (the first write, so the transaction
  owns that document from its first statement), ``$inc`` the waterfall split
  computed by ``ledger.waterfall``, insert the usage record, and insert the
  hold's permanent record into ``payments_holds`` (``_id`` = request id).
  Exactly one of settle, release and expiry can pull a given hold, and the
  unique ``request_id`` of usage records backs "settles at most once".
* Credits, refunds, plan changes, period renewals and account creation are
  transactions too: read the customer, decide with the rules both backends
  share (``ledger.waterfall``, ``ledger.periods``, ``ledger.replays``), write it and its
  ``payments_credit_transactions`` lines. Snapshot isolation turns any
  concurrent change to the customer into a write conflict and a rerun
  (bounded, see ``transactions``), never a lost update.
* Unique indexes carry idempotency: credit ``transaction_id``, usage
  ``request_id``, open-hold ``holds.request_id`` across orgs, Stripe customer
  id, access-key id and token hash, processed-event ``_id``.
* A hold call retried after its hold ended is answered from ``payments_holds``,
  as SQLite answers it from its holds table (see ``holds._confirm``).
* Amounts are BSON int64; times are int64 epoch milliseconds (``*_ms``).

Tradeoff: the hot path needs no transaction, but ending a hold touches three
collections and needs one. A transaction-free design would need a pending
state on the customer and a recovery sweep for every crash window; this one
instead requires a replica set, and settlements of one org serialise.

Requirements and limits
-----------------------
* **A replica set** (one member is enough; Atlas and the compose file's are):
  settlements are multi-document transactions, and ``open`` refuses a
  standalone server with ``LedgerUnavailable``. MongoDB 5.0 or newer. Behind
  ``mongos`` the collections must stay unsharded: the unique indexes on
  ``holds.request_id`` and ``stripe_customer_id`` cannot span shards.
* Every write, in a transaction or not, is acknowledged by a majority.
* The embedded array is bounded by the org's concurrent calls plus the
  expired holds the sweep (``expire_holds``) has not yet recorded; at about
  150 bytes a hold, the 16 MiB document limit allows ~100k of them, so the
  sweep must run (the gateway's background sweep does).
* Settlements on one org serialise through the transaction retry loop; a
  very busy org can exhaust the bound, which surfaces as ``LedgerUnavailable``
  and is safe to retry with the same request id.
* ``ledger_figures`` reads in one snapshot transaction, so it is bounded by
  ``transactionLifetimeLimitSeconds`` (60 s by default).
"""

from ledger.mongo.store import MongoLedger

__all__ = ["MongoLedger"]
