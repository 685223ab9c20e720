"""The HTTP service: OpenAI and Anthropic routes, metering, upstreams, billing, admin, CLI."""
