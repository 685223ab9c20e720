"""OpenAI's Responses API, the third wire protocol: what Codex CLI and the Agents SDK speak.

Pure translation over dicts and bytes, no I/O: the route and relay that use it
live with the metered call.

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
