"""Every hostile body, the same bytes sent to every inference route: a 400 in the route's own
error shape naming the parameter where the route reads it, an answer where it does not, never
a 5xx, and the next request on the same keep-alive connection is served.

The cases are those an adversarial run found answered with 500 or 502 (issue 11), and their
neighbours. Each body is a valid request for every route (``messages``, ``prompt``, ``input``
and ``max_tokens`` are all set) with one field made hostile.
"""

from typing import Any

import httpx
import pytest

from ledger import LedgerStore
from tests.e2e.support import Org, RunningGateway, StartGateway, wait_for_no_holds

DEMO = "spu-demo"
VALID: dict[str, Any] = {
    "model": DEMO,
    "messages": [{"role": "user", "content": "Hello"}],
    "prompt": "Hello",
    "input": "Hello",
    "max_tokens": 16,
}
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
ROUTES = (CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES, COUNT_TOKENS)
GENERATING = (CHAT, COMPLETIONS, MESSAGES)
"""The routes that read ``stream`` and a token bound."""
OPENAI_STREAMING = (CHAT, COMPLETIONS)
"""The routes that read ``stream_options`` and ``n``."""

# (case id, the hostile fields, the parameter named, the routes that must refuse it)
CASES: list[tuple[str, dict[str, Any], str, tuple[str, ...]]] = [
    (
        "stream_options a string",
        {"stream": True, "stream_options": "yes"},
        "stream_options",
        OPENAI_STREAMING,
    ),
    (
        "stream_options a number",
        {"stream": True, "stream_options": 1},
        "stream_options",
        OPENAI_STREAMING,
    ),
    (
        "stream_options a list",
        {"stream": True, "stream_options": [1]},
        "stream_options",
        OPENAI_STREAMING,
    ),
    (
        "include_usage not a boolean",
        {"stream": True, "stream_options": {"include_usage": "y"}},
        "stream_options.include_usage",
        OPENAI_STREAMING,
    ),
    ("stream the string true", {"stream": "true"}, "stream", GENERATING),
    ("stream a number", {"stream": 10}, "stream", GENERATING),
    ("stream a list", {"stream": [1]}, "stream", GENERATING),
    ("n of 10^9", {"n": 10**9}, "n", OPENAI_STREAMING),
    ("n of 2^63", {"n": 2**63}, "n", OPENAI_STREAMING),
    ("n of zero", {"n": 0}, "n", OPENAI_STREAMING),
    ("max_tokens of 2^63", {"max_tokens": 2**63}, "max_tokens", GENERATING),
    ("max_tokens negative", {"max_tokens": -1}, "max_tokens", GENERATING),
    ("max_tokens a string", {"max_tokens": "16"}, "max_tokens", GENERATING),
    ("max_tokens a float", {"max_tokens": 16.5}, "max_tokens", GENERATING),
    (
        "max_completion_tokens of 2^63",
        {"max_completion_tokens": 2**63},
        "max_completion_tokens",
        (CHAT,),
    ),
    ("best_of of 2^63", {"best_of": 2**63}, "best_of", (COMPLETIONS,)),
    ("messages a string", {"messages": "Hello"}, "messages", (CHAT, MESSAGES, COUNT_TOKENS)),
    ("messages empty", {"messages": []}, "messages", (CHAT, MESSAGES, COUNT_TOKENS)),
    ("tools an object", {"tools": {"name": "x"}}, "tools", (CHAT, MESSAGES, COUNT_TOKENS)),
    ("functions a string", {"functions": "f"}, "functions", (CHAT,)),
    ("response_format a list", {"response_format": [1]}, "response_format", (CHAT,)),
    ("system a number", {"system": 5}, "system", (MESSAGES, COUNT_TOKENS)),
    ("tool_choice a list", {"tool_choice": {"type": [1]}}, "tool_choice", (MESSAGES,)),
    ("prompt a number", {"prompt": 5}, "prompt", (COMPLETIONS,)),
    ("input a negative token", {"input": [1, -2]}, "input", (EMBEDDINGS,)),
    ("input a token array holding a string", {"input": [[1, "a"]]}, "input", (EMBEDDINGS,)),
    ("input token arrays", {"input": [1, 2]}, "input", ()),
    ("input arrays of token arrays", {"input": [[1, 2], [3]]}, "input", ()),
]


@pytest.fixture
def demo_gateway(start_gateway: StartGateway) -> RunningGateway:
    return start_gateway(demo_model=True)


def client_port(response: httpx.Response) -> int:
    """The client side's port of the connection that carried ``response``."""
    port: int = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    return port


def named_parameter(path: str, response: httpx.Response) -> str | None:
    """The parameter a 400 names, read the way the route's own clients read it."""
    body = response.json()
    if path.startswith(MESSAGES):
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        message: str = body["error"]["message"]
        return message.split("'")[1] if message.startswith("'") else None
    assert set(body["error"]) >= {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"
    param: str | None = body["error"]["param"]
    assert param is not None and param in body["error"]["message"]
    return param


@pytest.mark.parametrize(
    ("hostile", "param", "refusing"),
    [pytest.param(fields, param, refusing, id=case) for case, fields, param, refusing in CASES],
)
async def test_every_route_answers_a_hostile_body_with_a_400_naming_it_or_serves_it(
    demo_gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
    hostile: dict[str, Any],
    param: str,
    refusing: tuple[str, ...],
) -> None:
    body = {**VALID, **hostile}
    headers = {"authorization": f"Bearer {org.token}", "x-api-key": org.token}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(
        base_url=demo_gateway.url, headers=headers, limits=limits, timeout=10.0
    ) as http:
        for path in ROUTES:
            answer = await http.post(path, json=body)
            if path in refusing:
                assert answer.status_code == 400, (path, answer.text)
                assert named_parameter(path, answer) == param
            else:
                assert answer.status_code == 200, (path, answer.text)
            following = await http.get("/v1/models")
            assert following.status_code == 200
            assert client_port(following) == client_port(answer), "the connection was closed"
    assert await wait_for_no_holds(store, org.org_id) == 0
