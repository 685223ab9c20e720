"""OpenAI's Responses API, the third wire protocol: what Codex CLI and the Agents SDK speak.

- ``routes``: ``POST /v1/responses``, checked, estimated and bounded before
  anything is held.
- ``relay``: its three exchanges on the one metered-call path
  (``proxy.call.relay``): relayed to an upstream that serves the Responses API
  itself, or translated to Chat Completions or to Anthropic Messages.

The rest is pure translation over dicts and bytes, no I/O:

- ``items``: a Responses request's ``instructions`` and ``input`` read into a
  conversation (messages, function calls and outputs, reasoning), checked once.
- ``tools``: its ``tools`` and ``tool_choice``, with namespaced and custom tools
  given flat names an upstream accepts, and mapped back on the way out.
- ``chat_request`` / ``anthropic_request``: that conversation as a Chat
  Completions or an Anthropic Messages request.
- ``writer``: one builder of a Response object and its event stream, fed what a
  model produced; ``from_chat`` and ``from_anthropic`` feed it from the other
  protocols' answers and streams (both streams on ``translated_stream``), so
  every translated answer has one shape.
- ``stream_tap``: reads a native Responses stream as it is relayed unchanged.
- ``usage``: Responses usage ⇄ the gateway's token counts.
- ``prompt``: the prompt-token estimate of a Responses request, for the hold.
"""
