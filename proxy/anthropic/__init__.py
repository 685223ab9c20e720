"""Anthropic's Messages protocol: ``routes`` check and estimate requests, ``relay`` says how a
call goes upstream (natively, or translated for an OpenAI-format upstream by
``translation``), ``stream`` taps native event streams, ``counts`` reads what the upstream
reports."""
