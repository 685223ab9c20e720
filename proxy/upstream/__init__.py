"""Upstreams: every model is reached through an httpx client that speaks its wire format.

Real providers are plain HTTP; the demo model and litellm-routed providers are
httpx transports that answer in OpenAI's wire format, so one relay path serves all.
"""
