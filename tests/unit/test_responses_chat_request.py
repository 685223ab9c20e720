"""Responses requests → Chat Completions requests, and what cannot be translated refused."""

from typing import Any

import pytest

from proxy.errors import ApiError
from proxy.responses.chat_request import chat_request
from tests.responses_samples import (
    SHELL_TOOL,
    codex_request,
    function_call,
    function_output,
    user,
)


def translate(body: dict[str, Any]) -> dict[str, Any]:
    return chat_request(body, "provider-model").body


def refused(body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        chat_request(body, "provider-model")
    assert caught.value.status == 400
    return caught.value


def test_codex_default_request_becomes_a_streamed_chat_request() -> None:
    chat = translate(codex_request())
    assert chat["model"] == "provider-model"
    assert chat["messages"] == [
        {"role": "system", "content": [{"type": "text", "text": "You are a coding agent."}]},
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "<skills>none</skills>"},
                {"type": "text", "text": "<permissions>read-only</permissions>"},
            ],
        },
        {"role": "user", "content": [{"type": "text", "text": "<environment_context/>"}]},
        {"role": "user", "content": [{"type": "text", "text": "say hello"}]},
    ]
    assert [tool["function"]["name"] for tool in chat["tools"]] == [
        "exec_command",
        "multi_agent_v1__spawn_agent",
    ]
    assert chat["tools"][0] == {
        "type": "function",
        "function": {
            "name": "exec_command",
            "description": "Runs a shell command.",
            "parameters": SHELL_TOOL["parameters"],
            "strict": False,
        },
    }
    assert (chat["tool_choice"], chat["parallel_tool_calls"]) == ("auto", True)
    assert chat["prompt_cache_key"] == "0f1e2d3c-session"
    assert (chat["stream"], chat["stream_options"]) == (True, {"include_usage": True})
    for dropped in (
        "store",
        "include",
        "client_metadata",
        "reasoning",
        "reasoning_effort",
        "input",
    ):
        assert dropped not in chat


def test_a_tool_round_trip_becomes_one_assistant_message_and_tool_messages() -> None:
    body = codex_request(
        input_items=[
            user("list files"),
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Listing."}],
            },
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"},
            function_call("call_a", "exec_command", {"cmd": "ls"}),
            function_call("call_b", "spawn_agent", {"task": "t"}, namespace="multi_agent_v1"),
            function_output("call_a", "a.txt\nb.txt"),
            function_output("call_b", [{"type": "input_text", "text": "spawned"}]),
        ]
    )
    messages = translate(body)["messages"][3:]
    assert messages == [
        {"role": "user", "content": [{"type": "text", "text": "list files"}]},
        {
            "role": "assistant",
            "content": "Listing.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "exec_command", "arguments": '{"cmd":"ls"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {
                        "name": "multi_agent_v1__spawn_agent",
                        "arguments": '{"task":"t"}',
                    },
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "a.txt\nb.txt"},
        {"role": "tool", "tool_call_id": "call_b", "content": "spawned"},
    ]


def test_a_call_without_text_gets_its_own_assistant_message_and_images_follow_the_results() -> None:
    image = {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}
    body = {
        "model": "m",
        "instructions": "Be brief.",
        "input": [
            user("look"),
            function_call("call_a", "view_image", {"path": "x.png"}),
            function_output("call_a", [{"type": "input_text", "text": "the image:"}, image]),
        ],
    }
    assert translate(body)["messages"] == [
        {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "look"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "view_image", "arguments": '{"path":"x.png"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "the image:"},
        {
            "role": "user",
            "content": [
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                }
            ],
        },
    ]


def test_string_input_and_settings_map_to_their_chat_names() -> None:
    chat = translate(
        {
            "model": "m",
            "input": "Hello",
            "max_output_tokens": 300,
            "reasoning": {"effort": "low", "summary": "auto"},
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "answer",
                    "schema": {"type": "object"},
                    "strict": True,
                },
                "verbosity": "low",
            },
            "temperature": 0.2,
            "top_logprobs": 3,
            "user": "u-1",
            "metadata": {"a": "b"},
            "store": True,
        }
    )
    assert chat == {
        "model": "provider-model",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
        "max_completion_tokens": 300,
        "reasoning_effort": "low",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
        },
        "verbosity": "low",
        "temperature": 0.2,
        "logprobs": True,
        "top_logprobs": 3,
        "user": "u-1",
    }


def test_a_custom_tool_becomes_a_function_of_one_text_input() -> None:
    body = {
        "model": "m",
        "input": [
            user("patch it"),
            {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** x"},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
        ],
        "tools": [
            {
                "type": "custom",
                "name": "apply_patch",
                "description": "Edits files.",
                "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
            }
        ],
        "tool_choice": {"type": "custom", "name": "apply_patch"},
    }
    chat = translate(body)
    [tool] = chat["tools"]
    assert tool["function"]["name"] == "apply_patch"
    assert tool["function"]["parameters"]["required"] == ["input"]
    assert tool["function"]["description"] == "Edits files.\n\nInput grammar (lark):\nstart: /.+/"
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "apply_patch"}}
    assert chat["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"input":"*** x"}'


def test_allowed_tools_narrow_the_offer() -> None:
    body = codex_request()
    body["tool_choice"] = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "function", "name": "exec_command"}],
    }
    chat = translate(body)
    assert [tool["function"]["name"] for tool in chat["tools"]] == ["exec_command"]
    assert chat["tool_choice"] == "required"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"background": True}, "background"),
        ({"truncation": "auto"}, "truncation"),
        ({"instructions": 5}, "instructions"),
        ({"input": []}, "input"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_url": "u"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
        ),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs"]}]}, "tools[0]"),
        ({"tools": [{"type": "code_interpreter"}]}, "tools[0]"),
        ({"tools": [{"type": "function", "parameters": {}}]}, "tools[0].name"),
        ({"tools": [SHELL_TOOL, SHELL_TOOL]}, "tools"),
        ({"tools": "all"}, "tools"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
        ({"tool_choice": {"type": "function", "name": "nope"}}, "tool_choice"),
        ({"tool_choice": "always"}, "tool_choice"),
        ({"tools": [{"type": "web_search"}], "tool_choice": "required"}, "tool_choice"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format"),
        ({"reasoning": "high"}, "reasoning"),
    ],
)
def test_what_cannot_be_translated_is_a_400_naming_the_parameter(
    change: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {"model": "m", "input": "hi", **change}
    assert refused(body).param == param
