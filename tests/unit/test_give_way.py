"""Large request bodies give way to small calls' work, never for long, and never to a small
call that is only waiting on its upstream."""

import asyncio
import time
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from proxy.server.give_way import (
    LARGE_BODY_BYTES,
    REST_AFTER_S,
    GiveWay,
    GiveWayMiddleware,
    upstream_wait,
)

LONG_S = 5.0
"""A bound no test reaches: waiting this long means the large call was never let go."""


async def elapsed(work: Any) -> float:
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


async def test_a_large_step_goes_at_once_when_no_small_call_works() -> None:
    assert await elapsed(GiveWay(max_wait_s=LONG_S).turn()) < 0.5


async def test_a_large_step_waits_for_the_working_small_call_and_goes_when_it_stops() -> None:
    way = GiveWay(max_wait_s=LONG_S)
    way.start_working()
    large = asyncio.ensure_future(way.turn())
    await asyncio.sleep(0.05)
    assert not large.done()
    way.stop_working()
    await asyncio.wait_for(large, 0.5)


async def test_a_large_step_waits_for_a_quiet_moment_after_the_last_small_call() -> None:
    """A client's next small call, sent at once, still finds no large step started."""
    way = GiveWay(max_wait_s=LONG_S)
    way.start_working()
    large = asyncio.ensure_future(way.turn())
    await asyncio.sleep(0.01)
    way.stop_working()
    way.start_working()
    await asyncio.sleep(0.05)
    assert not large.done()
    way.stop_working()
    await asyncio.sleep(0)
    assert not large.done()
    await asyncio.wait_for(large, 0.5)


async def test_a_large_step_gives_way_for_at_most_its_bound() -> None:
    way = GiveWay(max_wait_s=0.05)
    way.start_working()
    waited = await elapsed(way.turn())
    assert 0.04 < waited < 0.5
    assert way.working == 1


async def test_one_large_step_takes_its_turn_at_a_time() -> None:
    """The second large call's turn comes only once the first one's step has yielded."""
    way = GiveWay(max_wait_s=LONG_S)
    order: list[str] = []

    async def large(name: str) -> None:
        await way.turn()
        order.append(f"{name} steps")
        await asyncio.sleep(0)
        order.append(f"{name} yielded")

    await asyncio.gather(large("first"), large("second"))
    assert order.index("first yielded") < order.index("second steps")


def http_scope(body_bytes: int | None, method: str = "POST") -> Scope:
    headers = [] if body_bytes is None else [(b"content-length", str(body_bytes).encode())]
    return {"type": "http", "method": method, "path": "/v1/chat/completions", "headers": headers}


def body_in_pieces(total: int, piece: int) -> Receive:
    messages = [
        {"type": "http.request", "body": b"x" * min(piece, total - start), "more_body": True}
        for start in range(0, total, piece)
    ]
    messages[-1]["more_body"] = False

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


async def no_send(message: Message) -> None:
    return None


async def read_body_app(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass


async def test_a_small_request_works_until_its_end_and_a_get_takes_no_part() -> None:
    way = GiveWay(max_wait_s=LONG_S)
    seen: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(way.working)

    middleware = GiveWayMiddleware(app, give_way=way)
    await middleware(http_scope(100), body_in_pieces(100, 100), no_send)
    await middleware(http_scope(None, method="GET"), body_in_pieces(1, 1), no_send)
    assert seen == [1, 0]
    assert way.working == 0


async def test_a_large_body_is_read_in_turns_behind_a_working_small_call() -> None:
    way = GiveWay(max_wait_s=0.05)
    middleware = GiveWayMiddleware(read_body_app, give_way=way)
    size = 4 * LARGE_BODY_BYTES
    way.start_working()
    waited = await elapsed(middleware(http_scope(size), body_in_pieces(size, size // 4), no_send))
    # A turn before each of the four pieces and one for the parse, each given way in full.
    assert 5 * 0.05 <= waited < 5 * 0.05 + 1.0
    way.stop_working()
    assert await elapsed(middleware(http_scope(size), body_in_pieces(size, size), no_send)) < 0.5


async def test_a_body_of_undeclared_size_is_large() -> None:
    way = GiveWay(max_wait_s=0.05)
    way.start_working()
    middleware = GiveWayMiddleware(read_body_app, give_way=way)
    assert await elapsed(middleware(http_scope(None), body_in_pieces(10, 10), no_send)) >= 0.1


async def test_a_small_call_waiting_on_its_upstream_rests_then_works_again() -> None:
    way = GiveWay(max_wait_s=LONG_S)
    during: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async with upstream_wait(working_after=True):
            await asyncio.sleep(REST_AFTER_S + 0.05)
            during.append(way.working)
            assert await elapsed(way.turn()) < 0.5
        during.append(way.working)

    await GiveWayMiddleware(app, give_way=way)(http_scope(10), body_in_pieces(10, 10), no_send)
    assert during == [0, 1]
    assert way.working == 0


async def test_a_quick_upstream_answer_keeps_the_small_call_working() -> None:
    way = GiveWay(max_wait_s=LONG_S)
    during: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async with upstream_wait(working_after=True):
            during.append(way.working)
        await asyncio.sleep(REST_AFTER_S + 0.05)
        during.append(way.working)

    await GiveWayMiddleware(app, give_way=way)(http_scope(10), body_in_pieces(10, 10), no_send)
    assert during == [1, 1]


async def test_a_stream_is_not_working_once_its_upstream_answered() -> None:
    way = GiveWay(max_wait_s=LONG_S)
    after: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async with upstream_wait(working_after=False):
            pass
        after.append(way.working)

    await GiveWayMiddleware(app, give_way=way)(http_scope(10), body_in_pieces(10, 10), no_send)
    assert after == [0]
    assert way.working == 0


async def test_a_large_call_takes_its_turn_to_send_upstream() -> None:
    way = GiveWay(max_wait_s=0.05)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body_app(scope, receive, send)
        way.start_working()
        started = time.perf_counter()
        async with upstream_wait(working_after=True):
            assert time.perf_counter() - started >= 0.04
        way.stop_working()

    size = 2 * LARGE_BODY_BYTES
    middleware = GiveWayMiddleware(app, give_way=way)
    await middleware(http_scope(size), body_in_pieces(size, size), no_send)


async def test_outside_a_request_the_upstream_wait_is_nothing() -> None:
    way = GiveWay(max_wait_s=LONG_S)
    way.start_working()
    started = time.perf_counter()
    async with upstream_wait(working_after=True):
        assert time.perf_counter() - started < 0.5
    assert way.working == 1


async def test_the_step_that_holds_the_turn_needs_no_other_while_no_small_call_works() -> None:
    """A body piece that was already there, then the parse: no loop pass between them."""
    way = GiveWay(max_wait_s=LONG_S)
    order: list[str] = []
    await way.turn()
    asyncio.get_running_loop().call_soon(order.append, "the next pass")
    await way.turn()
    order.append("the second turn")
    await asyncio.sleep(0)
    assert order == ["the second turn", "the next pass"]
