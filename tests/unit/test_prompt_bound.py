"""The cheap prompt bound never falls below the exact count: a fixed corpus, then random bodies.

The bound is what a call is held for; if it could fall below the exact count,
an org could be held for less than its prompt. Every case is checked with
both bundled encodings (o200k_base for gpt-4o, cl100k_base for the rest,
Claude included).
"""

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing import (
    anthropic_prompt_tokens,
    chat_prompt_tokens,
    count_anthropic_prompt_tokens,
    count_chat_prompt_tokens,
    texts_prompt_tokens,
)
from pricing.prompts import utf8_length
from pricing.tokens import encoding_for_model

MODELS = ["gpt-4o", "gpt-4", "claude-sonnet-4-5"]

TEXTS = {
    "english": "The quick brown fox jumps over the lazy dog. " * 20,
    "german": "Größenverhältnisse über Straßenbahnhaltestellen: äöüß ÄÖÜ. " * 10,
    "russian": "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 10,
    "greek": "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. " * 10,
    "arabic": "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق. " * 8,
    "hebrew": "דג סקרן שט בים מאוכזב ולפתע מצא חברה. " * 10,
    "hindi": "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले। " * 8,
    "thai": "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน " * 8,
    "chinese": "我能吞下玻璃而不伤身体。天地玄黄，宇宙洪荒。日月盈昃，辰宿列张。" * 10,
    "japanese": "いろはにほへと ちりぬるを わかよたれそ つねならむ カタカナ漢字。" * 10,
    "korean": "다람쥐 헌 쳇바퀴에 타고파. 키스의 고유조건은 입술끼리 만나야 하고. " * 10,
    "emoji": "👩‍👩‍👧‍👦🏳️‍🌈🇫🇷👍🏽🤖🔥✨🧑🏿‍💻❤️‍🔥🫠 " * 20,
    "combining": "e\u0301a\u0308o\u0302 Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇ " * 20,
    "code": "def f(x: int) -> dict[str, list[int]]:\n    return {'a': [x, x**2]}  # ok\n" * 20,
    "minified": "function a(b){return b.map(c=>c*2).filter(d=>d>3)}var e={f:1,g:[2,3]};" * 10,
    "digits": "3141592653589793238462643383279502884197169399375105820974944" * 5,
    "whitespace": " \t\n\r  \n\n\t\t    \u00a0\u2003\u3000" * 30,
    "punctuation": "!!!???...,,,;;;:::---___===+++***&&&%%%$$$###@@@~~~```'''\"\"\"" * 8,
    "repeated": "a" * 2000 + "ab" * 500 + "\u4e00" * 300,
    "controls": "".join(chr(code) for code in range(32)) * 5 + "\x7f\x80\x9f",
    "surrogates": "half \ud800 of \udfff a pair \ud83d\ude00 and more",
    "special markers": "<|endoftext|><|im_start|>user<|im_end|><|fim_prefix|>" * 5,
    "url": "https://example.com/a/b?c=d&e=%20f#g " * 20,
    "base64": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk" * 10,
}

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city, in °C — e.g. «Zürich» or «東京».",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "maxLength": 80},
                "days": {"type": "integer", "minimum": 1, "maximum": 14},
                "detail": {"enum": ["hourly", "daily", None], "default": "daily"},
                "ratio": {"type": "number", "multipleOf": 0.25},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
ANTHROPIC_TOOL = {
    "name": "Bash",
    "description": TEXTS["english"],
    "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
    "cache_control": {"type": "ephemeral"},
}


def chat_bodies() -> list[tuple[str, list[Any], list[Any] | None, list[Any]]]:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 9000}}
    audio = {"type": "input_audio", "input_audio": {"data": TEXTS["base64"], "format": "wav"}}
    pdf = {"type": "file", "file": {"filename": "a.pdf", "file_data": TEXTS["base64"]}}
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Zürich", "days": 3}'},
        }
    ]
    schema = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
    bodies = [(name, [{"role": "user", "content": text}], None, []) for name, text in TEXTS.items()]
    bodies += [
        (
            "parts and images",
            [
                {"role": "system", "content": TEXTS["english"]},
                {
                    "role": "user",
                    "name": "ada",
                    "content": [{"type": "text", "text": "Look"}, image],
                },
                {"role": "user", "content": [audio, pdf, {"type": "refusal", "refusal": "no"}]},
            ],
            None,
            [],
        ),
        (
            "tools and tool calls",
            [
                {"role": "user", "content": TEXTS["chinese"]},
                {"role": "assistant", "content": None, "tool_calls": calls},
                {"role": "tool", "tool_call_id": "call_1", "content": TEXTS["code"]},
            ],
            [WEATHER_TOOL] * 3,
            [schema, [{"name": "legacy", "parameters": {"type": "object"}}]],
        ),
        (
            "malformed",
            [42, "bare", None, {"role": "user", "content": {"type": "text", "text": "dict"}}],
            None,
            [],
        ),
    ]
    return bodies


def anthropic_bodies() -> list[tuple[str, object, list[Any], list[Any] | None]]:
    system = [{"type": "text", "text": TEXTS["english"], "cache_control": {"type": "ephemeral"}}]
    history = [
        {"role": "user", "content": TEXTS["korean"]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": TEXTS["hindi"], "signature": "sig" * 50},
                {"type": "redacted_thinking", "data": TEXTS["base64"]},
                {"type": "text", "text": TEXTS["emoji"]},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"c": "ls -la"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [
                        {"type": "text", "text": TEXTS["code"]},
                        {"type": "image", "source": {"type": "base64", "data": "A" * 9000}},
                    ],
                },
                {"type": "document", "title": "T", "source": {"type": "text", "data": "x" * 99}},
                {"type": "document", "source": {"type": "base64", "data": TEXTS["base64"]}},
                {"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}},
                {
                    "type": "document",
                    "source": {"type": "content", "content": [{"type": "text", "text": "c"}]},
                },
            ],
        },
    ]
    nested: object = TEXTS["thai"]
    for _ in range(20):
        nested = [{"type": "tool_result", "tool_use_id": "t", "content": nested}]
    return [
        *((name, None, [{"role": "user", "content": text}], None) for name, text in TEXTS.items()),
        ("claude code turn", system, history, [ANTHROPIC_TOOL] * 24),
        ("system as a string", TEXTS["arabic"], history[:1], None),
        ("deep tool results", None, [{"role": "user", "content": nested}], None),
    ]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("text", TEXTS.values(), ids=TEXTS.keys())
def test_no_text_has_more_tokens_than_utf8_bytes(text: str, model: str) -> None:
    assert utf8_length(text) >= len(encoding_for_model(model).encode_ordinary(text))


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("body", chat_bodies(), ids=lambda body: body[0])
def test_chat_bound_is_never_below_the_exact_count(
    body: tuple[str, list[Any], list[Any] | None, list[Any]], model: str
) -> None:
    _, messages, tools, extras = body
    exact = count_chat_prompt_tokens(messages, model, tools, extras)
    assert chat_prompt_tokens(messages, model, tools, extras).bound >= exact > 0


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("body", anthropic_bodies(), ids=lambda body: body[0])
def test_anthropic_bound_is_never_below_the_exact_count(
    body: tuple[str, object, list[Any], list[Any] | None], model: str
) -> None:
    _, system, messages, tools = body
    exact = count_anthropic_prompt_tokens(system, messages, tools, model)
    assert anthropic_prompt_tokens(system, messages, tools, model).bound >= exact > 0


@pytest.mark.parametrize("model", MODELS)
def test_completion_and_embedding_bounds_are_never_below_the_exact_count(model: str) -> None:
    texts: list[str | list[int]] = [*TEXTS.values(), [1, 2, 3, 4]]
    prompt = texts_prompt_tokens(texts, model)
    assert prompt.bound >= prompt.exact() > 0


def test_the_exact_count_is_made_once_and_only_when_asked() -> None:
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        return 7

    prompt = chat_prompt_tokens([{"role": "user", "content": "hi"}], "gpt-4o")
    assert prompt.exact() == count_chat_prompt_tokens([{"role": "user", "content": "hi"}], "gpt-4o")
    lazy = type(prompt)(9, count)
    assert calls == []
    assert (lazy.exact(), lazy.exact()) == (7, 7)
    assert calls == [1]


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)
CHAT_PART = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, ANY_TEXT),
    st.just({"type": "image_url", "image_url": {"url": "https://x/y.png"}}),
    st.builds(lambda d: {"type": "input_audio", "input_audio": {"data": d}}, ANY_TEXT),
    JSON_VALUES,
)
CHAT_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant", "tool"])},
    optional={
        "content": ANY_TEXT | st.lists(CHAT_PART, max_size=4) | JSON_VALUES,
        "name": ANY_TEXT,
        "tool_calls": JSON_VALUES,
    },
)
ANTHROPIC_BLOCK = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, ANY_TEXT),
    st.builds(lambda t: {"type": "thinking", "thinking": t}, ANY_TEXT),
    st.builds(lambda i: {"type": "tool_use", "id": "t", "name": "f", "input": i}, JSON_VALUES),
    st.builds(lambda c: {"type": "tool_result", "tool_use_id": "t", "content": c}, ANY_TEXT),
    st.just({"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}),
    JSON_VALUES,
)
ANTHROPIC_MESSAGE = st.fixed_dictionaries(
    {
        "role": st.sampled_from(["user", "assistant"]),
        "content": ANY_TEXT | st.lists(ANTHROPIC_BLOCK, max_size=4),
    }
)
TOOLS = st.none() | st.lists(JSON_VALUES, max_size=3)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CHAT_MESSAGE, min_size=1, max_size=5), TOOLS, st.sampled_from(MODELS))
def test_random_chat_bodies_are_never_bound_below_their_count(
    messages: list[Any], tools: list[Any] | None, model: str
) -> None:
    exact = count_chat_prompt_tokens(messages, model, tools)
    assert chat_prompt_tokens(messages, model, tools).bound >= exact


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    ANY_TEXT | st.lists(ANTHROPIC_BLOCK, max_size=3),
    st.lists(ANTHROPIC_MESSAGE, min_size=1, max_size=5),
    TOOLS,
    st.sampled_from(MODELS),
)
def test_random_anthropic_bodies_are_never_bound_below_their_count(
    system: object, messages: list[Any], tools: list[Any] | None, model: str
) -> None:
    exact = count_anthropic_prompt_tokens(system, messages, tools, model)
    assert anthropic_prompt_tokens(system, messages, tools, model).bound >= exact
