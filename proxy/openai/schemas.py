"""The OpenAI routes' request bodies as ``/openapi.json`` describes them.

They document what ``checks`` enforces, from the same limits; fields the
gateway passes to the upstream untouched are left open (any other property
is allowed), as the upstream is their judge.
"""

from proxy.openai.checks import MAX_BEST_OF, MAX_EMBEDDING_INPUTS
from proxy.protocol_routes import MODEL_NAME, JsonSchema
from proxy.request_body import MAX_CHOICES, MAX_TOKENS_LIMIT

TOKEN_BOUND: JsonSchema = {"type": "integer", "minimum": 1, "maximum": MAX_TOKENS_LIMIT}
CHOICES: JsonSchema = {"type": "integer", "minimum": 1, "maximum": MAX_CHOICES}
STREAM: JsonSchema = {"type": "boolean"}
STREAM_OPTIONS: JsonSchema = {
    "type": "object",
    "properties": {"include_usage": {"type": "boolean"}},
}
TOKEN_ARRAY: JsonSchema = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "integer", "minimum": 0, "maximum": MAX_TOKENS_LIMIT},
}

CHAT_MESSAGE: JsonSchema = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["developer", "system", "user", "assistant", "tool"]},
        "content": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "object"}},
                {"type": "null"},
            ]
        },
        "name": {"type": "string"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_call_id": {"type": "string"},
    },
}

CHAT_COMPLETION: JsonSchema = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": {
        "model": MODEL_NAME,
        "messages": {"type": "array", "minItems": 1, "items": CHAT_MESSAGE},
        "max_completion_tokens": TOKEN_BOUND,
        "max_tokens": TOKEN_BOUND,
        "n": CHOICES,
        "stream": STREAM,
        "stream_options": STREAM_OPTIONS,
        "tools": {"type": "array", "items": {"type": "object"}},
        "functions": {"type": "array", "items": {"type": "object"}},
        "response_format": {"type": "object"},
    },
}

COMPLETION: JsonSchema = {
    "type": "object",
    "required": ["model", "prompt"],
    "properties": {
        "model": MODEL_NAME,
        "prompt": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "minItems": 1, "items": {"type": "string"}},
            ]
        },
        "max_tokens": TOKEN_BOUND,
        "n": CHOICES,
        "best_of": {"type": "integer", "minimum": 1, "maximum": MAX_BEST_OF},
        "stream": STREAM,
        "stream_options": STREAM_OPTIONS,
    },
}

EMBEDDING: JsonSchema = {
    "type": "object",
    "required": ["model", "input"],
    "properties": {
        "model": MODEL_NAME,
        "input": {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_EMBEDDING_INPUTS,
                    "items": {"type": "string"},
                },
                TOKEN_ARRAY,
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_EMBEDDING_INPUTS,
                    "items": TOKEN_ARRAY,
                },
            ]
        },
    },
}
