"""Every hostile body, the same bytes sent to every inference route: a 400 in the route's own
error shape naming the parameter where the route reads it, an answer where it does not, never
a 5xx, and the next request on the same keep-alive connection is served.

The cases are those an adversarial run found answered with 500 or 502 (issue 11), and their
neighbours. The body is a valid request for every route (``messages``, ``prompt``, ``input``
and ``max_tokens`` are all set) with one field made hostile; only ``/v1/responses`` is sent it
without ``prompt``, which it reads as a prompt template (an object): a string there is
refused, as at OpenAI.
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
RESPONSES = "/v1/responses"
MESSAGES = "/v1/messages"
COUNT_TOKENS = "/v1/messages/count_tokens"
ROUTES = (CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES, MESSAGES, COUNT_TOKENS)
NOT_SENT = {RESPONSES: {"prompt"}}


def refused(param: str, *routes: str) -> dict[str, str]:
    """The routes that must answer 400, each with the parameter it names."""
    return dict.fromkeys(routes, param)


GENERATING = (CHAT, COMPLETIONS, RESPONSES, MESSAGES)
"""The routes that read ``stream``."""
OPENAI_STREAMING = (CHAT, COMPLETIONS)
"""The routes that read ``stream_options`` and ``n``."""
TOKEN_BOUND = (CHAT, COMPLETIONS, MESSAGES)
"""The routes that read ``max_tokens``."""
PROMPTED = (CHAT, MESSAGES, COUNT_TOKENS)
"""The routes that read ``messages``."""
EMBEDDING_INPUT = {EMBEDDINGS: "input", RESPONSES: "input[0]"}
"""``input`` as embeddings read it (tokens), and as Responses read it (items)."""

# (case id, the hostile fields, the routes that must refuse them and the parameter each names)
CASES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("stream_options a string", {"stream": True, "stream_options": "yes"},
     refused("stream_options", *OPENAI_STREAMING)),
    ("stream_options a number", {"stream": True, "stream_options": 1},
     refused("stream_options", *OPENAI_STREAMING)),
    ("stream_options a list", {"stream": True, "stream_options": [1]},
     refused("stream_options", *OPENAI_STREAMING)),
    ("include_usage not a boolean", {"stream": True, "stream_options": {"include_usage": "y"}},
     refused("stream_options.include_usage", *OPENAI_STREAMING)),
    ("stream the string true", {"stream": "true"}, refused("stream", *GENERATING)),
    ("stream a number", {"stream": 10}, refused("stream", *GENERATING)),
    ("stream a list", {"stream": [1]}, refused("stream", *GENERATING)),
    ("n of 10^9", {"n": 10**9}, refused("n", *OPENAI_STREAMING)),
    ("n of 2^63", {"n": 2**63}, refused("n", *OPENAI_STREAMING)),
    ("n of zero", {"n": 0}, refused("n", *OPENAI_STREAMING)),
    ("max_tokens of 2^63", {"max_tokens": 2**63}, refused("max_tokens", *TOKEN_BOUND)),
    ("max_tokens negative", {"max_tokens": -1}, refused("max_tokens", *TOKEN_BOUND)),
    ("max_tokens a string", {"max_tokens": "16"}, refused("max_tokens", *TOKEN_BOUND)),
    ("max_tokens a float", {"max_tokens": 16.5}, refused("max_tokens", *TOKEN_BOUND)),
    ("max_completion_tokens of 2^63", {"max_completion_tokens": 2**63},
     refused("max_completion_tokens", CHAT)),
    ("max_output_tokens of 2^63", {"max_output_tokens": 2**63},
     refused("max_output_tokens", RESPONSES)),
    ("best_of of 2^63", {"best_of": 2**63}, refused("best_of", COMPLETIONS)),
    ("messages a string", {"messages": "Hello"}, refused("messages", *PROMPTED)),
    ("messages empty", {"messages": []}, refused("messages", *PROMPTED)),
    ("tools an object", {"tools": {"name": "x"}},
     refused("tools", CHAT, RESPONSES, MESSAGES, COUNT_TOKENS)),
    ("functions a string", {"functions": "f"}, refused("functions", CHAT)),
    ("response_format a list", {"response_format": [1]}, refused("response_format", CHAT)),
    ("system a number", {"system": 5}, refused("system", MESSAGES, COUNT_TOKENS)),
    ("tool_choice a list", {"tool_choice": {"type": [1]}},
     refused("tool_choice", RESPONSES, MESSAGES)),
    ("instructions a number", {"instructions": 5}, refused("instructions", RESPONSES)),
    ("store a string", {"store": "yes"}, refused("store", RESPONSES)),
    ("prompt a number", {"prompt": 5}, refused("prompt", COMPLETIONS, RESPONSES)),
    ("input a negative token", {"input": [1, -2]}, EMBEDDING_INPUT),
    ("input a token array holding a string", {"input": [[1, "a"]]}, EMBEDDING_INPUT),
    ("input token arrays", {"input": [1, 2]}, refused("input[0]", RESPONSES)),
    ("input arrays of token arrays", {"input": [[1, 2], [3]]}, refused("input[0]", RESPONSES)),
]  # fmt: skip


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
    ("hostile", "refusing"),
    [pytest.param(fields, refusing, id=case) for case, fields, refusing in CASES],
)
async def test_every_route_answers_a_hostile_body_with_a_400_naming_it_or_serves_it(
    demo_gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
    hostile: dict[str, Any],
    refusing: dict[str, str],
) -> None:
    headers = {"authorization": f"Bearer {org.token}", "x-api-key": org.token}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(
        base_url=demo_gateway.url, headers=headers, limits=limits, timeout=10.0
    ) as http:
        for path in ROUTES:
            base = {k: v for k, v in VALID.items() if k not in NOT_SENT.get(path, ())}
            answer = await http.post(path, json={**base, **hostile})
            if path in refusing:
                assert answer.status_code == 400, (path, answer.text)
                assert named_parameter(path, answer) == refusing[path]
            else:
                assert answer.status_code == 200, (path, answer.text)
            following = await http.get("/v1/models")
            assert following.status_code == 200
            assert client_port(following) == client_port(answer), "the connection was closed"
    assert await wait_for_no_holds(store, org.org_id) == 0
