"""The Messages routes' request bodies as ``/openapi.json`` describes them.

They document what ``checks`` enforces, from the same limits; fields the
gateway passes on untouched are left open (any other property is allowed).
"""

from proxy.anthropic.checks import TOOL_CHOICE_TYPES
from proxy.protocol_routes import MODEL_NAME, JsonSchema
from proxy.request_body import MAX_TOKENS_LIMIT

CONTENT: JsonSchema = {
    "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]
}

MESSAGE: JsonSchema = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {"role": {"type": "string", "enum": ["user", "assistant"]}, "content": CONTENT},
}

PROMPT_PROPERTIES: JsonSchema = {
    "model": MODEL_NAME,
    "messages": {"type": "array", "minItems": 1, "items": MESSAGE},
    "system": CONTENT,
    "tools": {"type": "array", "items": {"type": "object"}},
}

MESSAGE_REQUEST: JsonSchema = {
    "type": "object",
    "required": ["model", "messages", "max_tokens"],
    "properties": {
        **PROMPT_PROPERTIES,
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": MAX_TOKENS_LIMIT},
        "stream": {"type": "boolean"},
        "tool_choice": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"type": "string", "enum": list(TOOL_CHOICE_TYPES)}},
        },
    },
}

COUNT_TOKENS_REQUEST: JsonSchema = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": PROMPT_PROPERTIES,
}
