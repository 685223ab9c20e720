"""The HTTP service.

- ``call``: the metered call, written once: hold → forward → settle or release;
- ``openai``, ``anthropic``: one package per wire protocol, each with its routes,
  its relay (an ``Exchange`` for ``call.relay``), its stream tap and (Anthropic)
  its translation;
- ``upstream``: the clients that reach providers, the demo model and litellm;
- ``billing``: Stripe, in Stripe mode only (``billing_stub`` otherwise);
- ``usage``: the org's balance, usage records and usage page; ``admin``: the operator's API;
- ``server``: middleware, health and metrics, warm-up and draining; ``cli``: ``spu``.
"""
