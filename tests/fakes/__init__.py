"""Fakes at the network edge, shared by the e2e suites and the benchmarks.

- ``upstream``: a fake LLM provider speaking OpenAI's and Anthropic's wire formats,
  steered by knobs (reply, reported usage, per-chunk delay, errors, hangs).
- ``server``: runs any ASGI app under a real uvicorn on a free loopback port in a
  background thread, so real SDK clients talk real HTTP to it.
"""
