"""The metered call, written once for every wire protocol: hold → forward → settle or release.

- ``meter``: opens a call: the in-flight cap (``in_flight``), the worst-case hold,
  or a 402/429/503 refusal, at the pricing policy of ``policy``;
- ``metered_call``: ends it exactly once: settle what was used, or release;
- ``endings``: the endings that outlive their request, tracked until shutdown.
"""
