"""The Responses route's request body as ``/openapi.json`` describes it.

It documents what the route checks, from the same limits; the items of
``input`` and the tools are left open (the route reads and refuses them item
by item, naming the one at fault), as is anything passed to the upstream.
"""

from proxy.protocol_routes import MODEL_NAME, JsonSchema
from proxy.request_body import MAX_TOKENS_LIMIT

RESPONSE_REQUEST: JsonSchema = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": MODEL_NAME,
        "input": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "minItems": 1, "items": {"type": "object"}},
            ]
        },
        "instructions": {"type": "string"},
        "max_output_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_TOKENS_LIMIT},
        "stream": {"type": "boolean"},
        "store": {"type": "boolean"},
        "tools": {"type": "array", "items": {"type": "object"}},
        "previous_response_id": {"type": "string"},
    },
}
