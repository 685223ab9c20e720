"""LitellmTransport: OpenAI's wire format answered by litellm's mock_response, no network."""

import os
from collections.abc import Callable
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import litellm
import orjson
import pytest

from proxy.upstream.litellm_transport import API_BASE_HEADER, LitellmTransport

MODEL = "gemini/gemini-2.5-flash"
REPLY = "Bonjour from a mocked provider"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


class Recorder:
    """Wraps a litellm call: records its keyword arguments and adds a mock answer."""

    def __init__(self, real: Callable[..., Any], mock_response: Any) -> None:
        self.real = real
        self.mock_response = mock_response
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return await self.real(**kwargs, mock_response=self.mock_response)


@pytest.fixture
def completion(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder(litellm.acompletion, REPLY)
    monkeypatch.setattr(litellm, "acompletion", recorder)
    return recorder


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=LitellmTransport(), base_url="http://upstream.local")


async def test_chat_completion_comes_back_as_openai_json_with_usage(completion: Recorder) -> None:
    async with client() as http:
        response = await http.post("/chat/completions", json=CHAT)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == REPLY
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0


async def test_key_and_base_come_from_the_route_and_client_fields_outside_openais_are_dropped(
    completion: Recorder,
) -> None:
    sneaky = {**CHAT, "api_base": "https://attacker.example", "api_key": "theirs", "seed": 7}
    async with client() as http:
        await http.post(
            "/chat/completions",
            json=sneaky,
            headers={"authorization": "Bearer route-key", API_BASE_HEADER: "http://ollama:11434"},
        )
    call = completion.calls[-1]
    assert (call["api_key"], call["api_base"], call["seed"]) == (
        "route-key",
        "http://ollama:11434",
        7,
    )
    assert call["model"] == MODEL and call["drop_params"] is True


async def test_stream_is_openai_events_ending_with_the_usage_chunk_and_done(
    completion: Recorder,
) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    async with client() as http, http.stream("POST", "/chat/completions", json=body) as response:
        raw = (await response.aread()).decode()
    assert response.headers["content-type"] == "text/event-stream"
    data = [line[6:] for line in raw.split("\n\n") if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [orjson.loads(item) for item in data[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == REPLY
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


async def test_embeddings_come_back_as_openai_json(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder(litellm.aembedding, [0.1, 0.2, 0.3])
    monkeypatch.setattr(litellm, "aembedding", recorder)
    async with client() as http:
        response = await http.post(
            "/embeddings", json={"model": "gemini/text-embedding-004", "input": ["a", "b"]}
        )
    body = response.json()
    assert body["object"] == "list" and body["data"][0]["embedding"] == [0.1, 0.2, 0.3]
    assert "usage" in body


async def test_a_provider_refusal_keeps_its_status_in_openais_error_shape(
    completion: Recorder,
) -> None:
    completion.mock_response = litellm.RateLimitError(
        "slow down", llm_provider="gemini", model="gemini-2.5-flash"
    )
    async with client() as http:
        response = await http.post("/chat/completions", json=CHAT)
    assert response.status_code == 429
    assert "slow down" in response.json()["error"]["message"]


async def test_a_provider_timeout_is_an_httpx_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def times_out(**_: Any) -> Any:
        raise litellm.Timeout("took too long", model="gemini-2.5-flash", llm_provider="gemini")

    monkeypatch.setattr(litellm, "acompletion", times_out)
    async with client() as http:
        with pytest.raises(httpx.TimeoutException):
            await http.post("/chat/completions", json=CHAT)


async def test_other_paths_are_404() -> None:
    async with client() as http:
        response = await http.post("/completions", json={"model": MODEL, "prompt": "x"})
    assert response.status_code == 404
