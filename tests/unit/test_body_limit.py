"""The body limit: a body within it reaches the route byte for byte, in the pieces it came in;
one over it is a 413 in the client's error shape, and the route never runs."""

import json

from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from proxy.server.body_limit import BodyLimitMiddleware

LIMIT = 1000


def http_scope(content_length: int | None) -> Scope:
    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    return {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": headers}


def receiving(pieces: list[bytes], then: Message | None = None) -> Receive:
    """The server's messages: each piece, the last with ``more_body`` false unless ``then``
    follows it (a disconnect)."""
    messages: list[Message] = [
        {"type": "http.request", "body": piece, "more_body": True} for piece in pieces
    ]
    if then is None:
        messages[-1]["more_body"] = False
    else:
        messages.append(then)

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


class Route:
    """Reads the body as routes do (Starlette's ``Request.body``), and keeps the messages."""

    def __init__(self) -> None:
        self.body: bytes | None = None
        self.messages: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def recording() -> Message:
            message = await receive()
            self.messages.append(message)
            return message

        self.body = await Request(scope, recording).body()


class Sent:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def error(self) -> dict[str, object]:
        body = b"".join(message.get("body", b"") for message in self.messages[1:])
        error: dict[str, object] = json.loads(body)["error"]
        return error


async def test_a_body_in_pieces_reaches_the_route_whole_and_in_the_same_pieces() -> None:
    pieces = [b'{"model": "m", ', b'"messages": [', b"]}"]
    route, sent = Route(), Sent()
    total = sum(map(len, pieces))
    await BodyLimitMiddleware(route, max_body_bytes=LIMIT)(
        http_scope(total), receiving(pieces), sent
    )
    assert route.body == b"".join(pieces)
    assert [message["body"] for message in route.messages] == pieces
    assert [message["more_body"] for message in route.messages] == [True, True, False]
    assert sent.messages == []


async def test_a_body_of_exactly_the_limit_passes() -> None:
    route = Route()
    pieces = [b"a" * (LIMIT - 1), b"b"]
    await BodyLimitMiddleware(route, max_body_bytes=LIMIT)(
        http_scope(None), receiving(pieces), Sent()
    )
    assert route.body == b"a" * (LIMIT - 1) + b"b"


async def test_a_declared_length_over_the_limit_is_refused_before_any_piece_is_read() -> None:
    route, sent = Route(), Sent()
    read: list[Message] = []

    async def receive() -> Message:
        message: Message = {"type": "http.request", "body": b"x", "more_body": False}
        read.append(message)
        return message

    await BodyLimitMiddleware(route, max_body_bytes=LIMIT)(http_scope(LIMIT + 1), receive, sent)
    assert route.body is None and read == []
    assert sent.status == 413
    assert sent.error["code"] == "request_too_large"


async def test_an_undeclared_body_over_the_limit_is_refused_once_it_passes_it() -> None:
    route, sent = Route(), Sent()
    pieces = [b"x" * 600, b"x" * 600, b"x" * 600]
    await BodyLimitMiddleware(route, max_body_bytes=LIMIT)(
        http_scope(None), receiving(pieces), sent
    )
    assert route.body is None
    assert sent.status == 413
    assert str(LIMIT) in str(sent.error["message"])


async def test_a_client_gone_mid_body_never_reaches_the_route() -> None:
    route, sent = Route(), Sent()
    await BodyLimitMiddleware(route, max_body_bytes=LIMIT)(
        http_scope(500), receiving([b"x" * 100], then={"type": "http.disconnect"}), sent
    )
    assert route.body is None and route.messages == []
    assert sent.messages == []
