"""The metered call, written once for every wire protocol: hold → forward → settle or release.

- ``relay``: the one path of a call: hold, send upstream, answer, settle; a
  protocol supplies an ``Exchange`` (its request and how it reads answers);
- ``meter``: opens a call: the in-flight cap (``in_flight``), the worst-case
  hold, or a 402/429/503 refusal, at the pricing policy of ``policy``;
- ``metered_call``: ends it exactly once: settle what was used, or release;
- ``renewal``: keeps the holds of this worker's live calls from expiring;
- ``idempotency``: ``Idempotency-Key``: a retry answered with the first call's
  reply, never charged twice;
- ``endings``: the endings that outlive their request, tracked until shutdown;
- ``stream``: relays an event stream and ends its call however the stream ends
  (its total deadline too);
- ``tally``: what a call produced, and the one rule for what it is charged;
- ``sse``: the one server-sent-event parser.
"""
