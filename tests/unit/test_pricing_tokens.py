"""Offline tiktoken counts, and prompt counts that never fall below the real text."""

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing import tokens
from pricing.errors import TokenizerUnavailable
from pricing.prompts import (
    ANTHROPIC_TOOLS_SYSTEM_PROMPT_TOKENS,
    GPT_4O_MINI_IMAGE_TOKENS_BOUND,
    IMAGE_TOKENS_BOUND,
    UNSIZED_DOCUMENT_TOKENS,
    count_anthropic_prompt_tokens,
    count_chat_prompt_tokens,
)
from pricing.tokens import (
    BUNDLED_ENCODINGS_DIR,
    CACHE_DIR_ENV,
    count_text_tokens,
    encoding_file,
    encoding_for_model,
    encoding_name_for_model,
    get_encoding,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

OFFLINE_PROBE = """
import json, socket, sys

# As if litellm were not installed (no [litellm] extra): importing it, or
# finding it with importlib, now fails.
sys.modules["litellm"] = None

def refuse(*args, **kwargs):
    raise OSError("network disabled by the test")

socket.socket = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import tiktoken.load
tiktoken.load.read_file = refuse

import os
from pricing import count_text_tokens, resolve_rates
from pricing.tokens import get_encoding

resolve_rates("gpt-4o-mini")
cl100k_hello = count_text_tokens("hello world", "claude-sonnet-4-5")
o200k_hello = count_text_tokens("hello world", "gpt-4o")
print(json.dumps({
    "cache_dir": os.environ.get("TIKTOKEN_CACHE_DIR"),
    "cl100k_hello": cl100k_hello,
    "o200k_hello": o200k_hello,
    "names": [get_encoding(n).name for n in ("cl100k_base", "o200k_base")],
    "litellm_imported": sys.modules.get("litellm") is not None,
}))
"""


def test_prices_and_both_bundled_encodings_load_with_the_network_cut_and_no_litellm() -> None:
    env = {k: v for k, v in os.environ.items() if k not in (CACHE_DIR_ENV, "DATA_GYM_CACHE_DIR")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run(
        [sys.executable, "-c", OFFLINE_PROBE],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    probe = json.loads(result.stdout)
    assert probe["cache_dir"] == str(BUNDLED_ENCODINGS_DIR)
    assert probe["cl100k_hello"] == 2
    assert probe["o200k_hello"] == 2
    assert probe["names"] == ["cl100k_base", "o200k_base"]
    assert probe["litellm_imported"] is False


@pytest.fixture
def fresh_encodings() -> Iterator[None]:
    tokens.drop_idle_encodings(0)
    yield
    tokens.drop_idle_encodings(0)


def test_an_operator_chosen_cache_dir_is_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    assert tokens.tiktoken_cache_dir() == tmp_path
    assert os.environ[CACHE_DIR_ENV] == str(tmp_path)


@pytest.mark.usefixtures("fresh_encodings")
def test_a_missing_encoding_file_is_an_error_not_a_download(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    with pytest.raises(TokenizerUnavailable) as caught:
        get_encoding("cl100k_base")
    assert caught.value.encoding == "cl100k_base"


@pytest.mark.usefixtures("fresh_encodings")
def test_o200k_falls_back_to_cl100k_when_only_cl100k_is_bundled(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cl100k_file = encoding_file("cl100k_base")
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    shutil.copyfile(cl100k_file, tmp_path / cl100k_file.name)
    assert get_encoding("o200k_base").name == "cl100k_base"


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "openai/gpt-4o-2024-08-06",
        "chatgpt-4o-latest",
        "gpt-4.1-mini",
        "gpt-4.5-preview",
        "gpt-5",
        "gpt-5.1",
        "gpt-5-nano",
        "o1",
        "o3-mini",
        "o4-mini",
        "azure/o1-preview",
    ],
)
def test_recent_openai_families_use_o200k(model: str) -> None:
    assert encoding_name_for_model(model) == "o200k_base"


@pytest.mark.parametrize(
    "model",
    ["gpt-4", "gpt-4-turbo", "gpt-3.5-turbo", "claude-sonnet-4-5", "anthropic/claude-opus-4-5"],
)
def test_other_models_including_claude_use_cl100k(model: str) -> None:
    assert encoding_name_for_model(model) == "cl100k_base"


def test_known_strings_have_their_known_cl100k_counts() -> None:
    assert count_text_tokens("hello world", "gpt-3.5-turbo") == 2
    assert count_text_tokens("tiktoken is great!", "gpt-4") == 6
    assert count_text_tokens("", "gpt-4") == 0


def test_special_token_markers_and_lone_surrogates_are_counted_not_refused() -> None:
    assert count_text_tokens("<|endoftext|>", "gpt-4o") > 1
    assert count_text_tokens("\ud800 broken", "gpt-4o") >= 1


def compact_json(value: object) -> str:
    """JSON as clients send it and the counts read it: no spaces."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def cookbook_count(messages: list[dict[str, str]], model: str) -> int:
    """OpenAI cookbook's num_tokens_from_messages for string-only messages."""
    encoding = encoding_for_model(model)
    total = 3
    for message in messages:
        total += 3
        for key, value in message.items():
            total += len(encoding.encode(value))
            if key == "name":
                total += 1
    return total


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4"])
def test_plain_chat_messages_count_exactly_as_the_cookbook(model: str) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "name": "ada", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "4"},
    ]
    assert count_chat_prompt_tokens(messages, model) == cookbook_count(messages, model)


@given(st.text(max_size=400), st.sampled_from(["gpt-4o", "gpt-4", "claude-haiku-4-5"]))
def test_chat_count_is_never_below_the_tokens_of_its_text(text: str, model: str) -> None:
    as_string = [{"role": "user", "content": text}]
    as_parts = [{"role": "user", "content": [{"type": "text", "text": text}]}]
    floor = count_text_tokens(text, model)
    assert count_chat_prompt_tokens(as_string, model) >= floor
    assert count_chat_prompt_tokens(as_parts, model) == count_chat_prompt_tokens(as_string, model)


@given(st.lists(st.text(max_size=200), min_size=1, max_size=4), st.text(max_size=200))
def test_anthropic_count_is_never_below_the_tokens_of_its_texts(
    texts: list[str], system: str
) -> None:
    model = "claude-sonnet-4-5"
    messages = [{"role": "user", "content": [{"type": "text", "text": t} for t in texts]}]
    floor = sum(count_text_tokens(t, model) for t in [*texts, system])
    assert count_anthropic_prompt_tokens(system, messages, None, model) >= floor


def test_images_cost_the_fixed_bound_whatever_their_size() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 50_000}}
    text_only = [{"role": "user", "content": [{"type": "text", "text": "describe"}]}]
    with_image = [{"role": "user", "content": [{"type": "text", "text": "describe"}, image]}]
    for model, bound in (
        ("gpt-4o", IMAGE_TOKENS_BOUND),
        ("gpt-4o-mini", GPT_4O_MINI_IMAGE_TOKENS_BOUND),
    ):
        extra = count_chat_prompt_tokens(with_image, model) - count_chat_prompt_tokens(
            text_only, model
        )
        assert extra == bound


def test_tool_calls_and_tool_definitions_count_at_least_their_json_text() -> None:
    model = "gpt-4o"
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    bare = [{"role": "assistant", "content": None}]
    calling = [{"role": "assistant", "content": None, "tool_calls": [tool_call]}]
    call_extra = count_chat_prompt_tokens(calling, model) - count_chat_prompt_tokens(bare, model)
    assert call_extra >= count_text_tokens(compact_json([tool_call]), model)
    tools_extra = count_chat_prompt_tokens(bare, model, tools=[tool]) - count_chat_prompt_tokens(
        bare, model
    )
    assert tools_extra >= count_text_tokens(compact_json([tool]), model)


def test_opaque_audio_and_file_parts_count_at_least_their_bytes() -> None:
    audio = {"type": "input_audio", "input_audio": {"data": "QUJD" * 1000, "format": "wav"}}
    pdf = {"type": "file", "file": {"filename": "a.pdf", "file_data": "JVBE" * 1000}}
    by_id = {"type": "file", "file": {"file_id": "file-123"}}
    for part, least in ((audio, 4000), (pdf, 4000), (by_id, UNSIZED_DOCUMENT_TOKENS)):
        assert count_chat_prompt_tokens([{"role": "user", "content": [part]}], "gpt-4o") >= least


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": 42}],
        ["not a message"],
        [{"role": "user", "content": [{"no": "type"}, "bare string", None]}],
        [{"role": "user", "content": {"type": "text", "text": "a dict, not a list"}}],
        [{"role": "user", "content": "\ud800"}],
    ],
)
def test_malformed_chat_bodies_are_counted_without_raising(messages: list[object]) -> None:
    assert count_chat_prompt_tokens(messages, "gpt-4o") > 0


def test_anthropic_system_as_string_or_blocks_counts_the_same() -> None:
    model = "claude-sonnet-4-5"
    messages = [{"role": "user", "content": "Hi"}]
    as_string = count_anthropic_prompt_tokens("Be brief.", messages, None, model)
    as_blocks = count_anthropic_prompt_tokens(
        [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages,
        None,
        model,
    )
    assert as_string == as_blocks


def test_anthropic_tools_add_the_tool_use_system_prompt_and_their_json() -> None:
    model = "claude-sonnet-4-5"
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    tool = {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    extra = count_anthropic_prompt_tokens(None, messages, [tool], model) - (
        count_anthropic_prompt_tokens(None, messages, None, model)
    )
    assert extra == ANTHROPIC_TOOLS_SYSTEM_PROMPT_TOKENS + count_text_tokens(
        compact_json([tool]), model
    )


def test_anthropic_blocks_of_every_kind_are_counted() -> None:
    model = "claude-sonnet-4-5"
    tool_input = {"city": "Paris", "units": "metric"}
    messages = [
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "The user wants weather.", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": tool_input},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [
                        {"type": "text", "text": "18 degrees and sunny"},
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    ],
                },
                {
                    "type": "document",
                    "title": "Report",
                    "source": {"type": "text", "media_type": "text/plain", "data": "All good."},
                },
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": "J" * 3000,
                    },
                },
                {"type": "document", "source": {"type": "url", "url": "https://x/report.pdf"}},
            ],
        },
    ]
    texts = [
        "The user wants weather.",
        compact_json(tool_input),
        "18 degrees and sunny",
        "All good.",
    ]
    floor = sum(count_text_tokens(text, model) for text in texts)
    floor += IMAGE_TOKENS_BOUND + 3000 + UNSIZED_DOCUMENT_TOKENS
    assert count_anthropic_prompt_tokens(None, messages, None, model) >= floor


def test_deeply_nested_tool_results_are_counted_without_recursing_forever() -> None:
    content: object = "innermost"
    for _ in range(500):
        content = [{"type": "tool_result", "tool_use_id": "t", "content": content}]
    messages = [{"role": "user", "content": content}]
    assert count_anthropic_prompt_tokens(None, messages, None, "claude-sonnet-4-5") > 500
