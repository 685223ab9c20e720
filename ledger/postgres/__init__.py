"""The PostgreSQL backend: the shared SQL ledger on a server many gateways share.

Concurrency, and what it relies on
----------------------------------
* **READ COMMITTED and a row lock per org.** Every write that can change an
  org's money or holds runs in a transaction that first locks the org's
  ``accounts`` row (``SELECT … FOR UPDATE``). While it holds the lock no other
  transaction, from this process or any other machine, can place, settle,
  release or expire that org's holds or change its buckets, so the reads a
  routine decides on stay true until it commits. READ COMMITTED takes a fresh
  snapshot for every statement, so the reads after the lock see everything
  committed before it (a REPEATABLE READ snapshot would be older than the lock
  and fail with serialization errors instead).
* **Batches, not one transaction per call** (``batches``). A process sends
  one transaction at a time, carrying every write queued meanwhile; the row
  lock of a hot org is taken once per batch rather than once per call, and one
  durable commit (``synchronous_commit`` as the server sets it: leave it
  ``on``) serves the whole batch. All of a batch's accounts are locked in one
  statement, in org-id order, so batches of different processes never deadlock.
* **Unique constraints carry idempotency**: request ids of holds and usage
  records, credit transaction ids, Stripe customer ids, key ids and token
  hashes, processed event ids. Two processes writing the same id at once meet
  at the index: the later one waits, sees the first commit, reruns its routine
  and replays or reports the conflict.
* **CHECK constraints** restate the invariants (``schema``).
* **Reads** (balance, usage, verify's figures) run in one REPEATABLE READ, READ
  ONLY snapshot each, on the pool, never waiting for a write.

Schema migrations are versioned (``ledger_schema_versions``) and run at open
under ``pg_advisory_xact_lock``, so replicas starting together apply each once.
"""

from ledger.postgres.store import PostgresLedger

__all__ = ["PostgresLedger"]
