"""OpenAI's wire protocol: ``routes`` check and estimate requests, ``relay`` says how a call
goes to an OpenAI-format upstream, ``stream`` taps its event streams, ``counts`` reads what
the upstream reports."""
