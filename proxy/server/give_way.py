"""Large request bodies give way to small calls, so that one big call never stalls the others.

A worker runs every call's CPU work on one event loop, a step at a time. A
512 KB agent prompt costs about 1.5 ms of it (its body read in 64 KiB
pieces, parsed, and sent upstream) where a small call costs about 0.5 ms.
Four large calls in a loop kept the core busy, and a small call beside them
waited behind their steps at each of its own: about six times its latency
alone.

So a POST whose body is over ``LARGE_BODY_BYTES`` (uvicorn's flow-control
window, the size of the pieces its body is read in), or whose size is not
declared, is large. Before each of its CPU-heavy steps (each piece of its
body, its parse once the body is whole, its send upstream, taking up its
answer) it waits for its turn: until no small call has worked for
``QUIET_S``, or ``MAX_WAIT_S`` at most, so that large calls still progress
under a steady stream of small ones; and one large call takes a step at a
time, so that a small call arriving meanwhile finds at most one step ahead
of it.

A small call is working from its arrival to its end, except once its
upstream has taken ``REST_AFTER_S`` to answer: a small call waiting seconds
on a model holds nobody back. A stream is not working again once its
upstream has answered (relaying its events is cheap); a plain call is, to
read, settle and send its answer.
GET, HEAD and OPTIONS requests take no part: they have no body to read.
"""

import asyncio
import contextlib
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy.server.body_limit import declared_body_bytes, sends_no_body

LARGE_BODY_BYTES = 64 * 1024
MAX_WAIT_S = 0.02
"""The longest a large call's step gives way; at most a few steps of a call do."""
QUIET_S = 0.001
"""How long no small call must have worked before a large step goes (the loop's timers
count in milliseconds). A client's next small call often follows its last answer within
that; a large step begun in the gap would make it wait."""
REST_AFTER_S = 0.005
"""How long a small call's upstream may take before the call stops counting as working.

A quick answer (a local model, a cached reply) is taken up at once, as work,
so that no large step has started meanwhile; a slower one frees the large
calls to go on while the small call waits.
"""


class GiveWay:
    """The small calls working in this worker, and the turns of the large ones."""

    def __init__(self, *, max_wait_s: float = MAX_WAIT_S) -> None:
        self._max_wait_s = max_wait_s
        self._working = 0
        self._none_working = asyncio.Event()
        self._none_working.set()
        self._rested_at = -QUIET_S
        """When the last small call stopped working (the loop's clock)."""
        self._one_step = asyncio.Lock()
        self._stepping: asyncio.Task[Any] | None = None
        """The large call whose step holds the turn, until the loop's next pass."""

    @property
    def working(self) -> int:
        return self._working

    def start_working(self) -> None:
        self._working += 1
        self._none_working.clear()

    def stop_working(self) -> None:
        self._working -= 1
        if not self._working:
            self._rested_at = asyncio.get_running_loop().time()
            self._none_working.set()

    async def turn(self) -> None:
        """A large call's next step may run: no small call has worked for ``QUIET_S``, or it
        waited ``max_wait_s``.

        The turn is held until the loop's next pass, when the step that took it
        has run to its next wait, so one large step runs at a time; the step that
        holds it needs no other while no small call works (a body piece that was
        already there, then the parse).
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if self._stepping is task and self._quiet_for(loop) >= QUIET_S:
            return
        await self._one_step.acquire()
        self._stepping = task
        try:
            if self._quiet_for(loop) < QUIET_S:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._max_wait_s):
                        await self._quiet(loop)
        finally:
            loop.call_soon(self._end_step)

    def _quiet_for(self, loop: asyncio.AbstractEventLoop) -> float:
        """Seconds since the last small call stopped working; 0 while one works."""
        return 0.0 if self._working else loop.time() - self._rested_at

    async def _quiet(self, loop: asyncio.AbstractEventLoop) -> None:
        while (quiet_s := self._quiet_for(loop)) < QUIET_S:
            if self._working:
                await self._none_working.wait()
            else:
                await asyncio.sleep(QUIET_S - quiet_s)

    def _end_step(self) -> None:
        self._stepping = None
        self._one_step.release()


class _SmallCall:
    __slots__ = ("give_way", "working")

    def __init__(self, give_way: GiveWay) -> None:
        self.give_way = give_way
        self.working = False

    def work(self) -> None:
        if not self.working:
            self.working = True
            self.give_way.start_working()

    def rest(self) -> None:
        if self.working:
            self.working = False
            self.give_way.stop_working()


_current: ContextVar[_SmallCall | GiveWay | None] = ContextVar("spu_give_way", default=None)
"""The current request's part: a small call's, or for a large one the turns it takes."""


class _UpstreamWait:
    """``upstream_wait``'s context; a class, not ``contextlib.asynccontextmanager``, whose
    generator and wrappers cost every metered call 4.8 µs here, against 1.2 µs for this."""

    __slots__ = ("call", "resting", "working_after")

    def __init__(self, working_after: bool) -> None:
        self.working_after = working_after
        self.call = _current.get()
        self.resting: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> None:
        call = self.call
        if isinstance(call, GiveWay):
            await call.turn()
        elif call is not None:
            self.resting = asyncio.get_running_loop().call_later(REST_AFTER_S, call.rest)

    async def __aexit__(self, *exc_info: object) -> None:
        call = self.call
        if isinstance(call, GiveWay):
            if exc_info[0] is None:
                await call.turn()
            return
        if call is None or self.resting is None:
            return
        self.resting.cancel()
        if self.working_after:
            call.work()
        else:
            call.rest()


def upstream_wait(*, working_after: bool) -> _UpstreamWait:
    """Around a request's call to its upstream: a large call takes a turn to send it and one
    to take up its answer; a small one rests while it waits long (and works again once
    answered if ``working_after``)."""
    return _UpstreamWait(working_after)


def is_large(scope: Scope) -> bool:
    declared = declared_body_bytes(scope)
    return declared is None or declared > LARGE_BODY_BYTES


class GiveWayMiddleware:
    """Tells each POST-like request's size, and has a large one's body read in its turns."""

    def __init__(self, app: ASGIApp, *, give_way: GiveWay) -> None:
        self.app = app
        self.give_way = give_way

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if sends_no_body(scope):
            await self.app(scope, receive, send)
            return
        if is_large(scope):
            token = _current.set(self.give_way)
            try:
                await self.app(scope, self._in_turns(receive), send)
            finally:
                _current.reset(token)
            return
        call = _SmallCall(self.give_way)
        token = _current.set(call)
        call.work()
        try:
            await self.app(scope, receive, send)
        finally:
            call.rest()
            _current.reset(token)

    def _in_turns(self, receive: Receive) -> Receive:
        """Each piece of the body in a turn, and one more for the parse once it is whole;
        after the body, receiving (a disconnect) is no step."""
        body_read = False

        async def receive_in_turn() -> Message:
            nonlocal body_read
            if body_read:
                return await receive()
            await self.give_way.turn()
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read = True
                if message["type"] == "http.request":
                    await self.give_way.turn()
            return message

        return receive_in_turn
