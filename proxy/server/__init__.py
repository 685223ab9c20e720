"""Serving the gateway: the middleware (``body_limit``, ``request_log``), the operator's
endpoints (``routes``: health, readiness, metrics) and ``metrics`` themselves, start-up
``warmup``, and SIGTERM ``draining``."""
