"""One structured JSON log line per request, the per-route request counter, and the last
answer to an unexpected exception.

Routes and the meter ``note`` what they learn (org, model, SPUs charged) on
a per-request ``RequestFacts`` held in a context variable; the middleware
writes the line once the response is complete and any settlement that
outlives it (a stream's, see ``defer_until``) has finished. Only ids, names
and figures are logged: never a header, a token, a query or a body. The
lines go to stderr, written there directly (``_write_line`` says why), when
``SPU_LOG_LEVEL`` is ``info`` or more verbose.

Every response carries its request id as ``x-request-id`` (the metered call's
own id when there is one), and also as ``request-id`` on Anthropic's routes.

An exception no route turned into an answer is logged here with the request
id and answered with a 500 in the client's own error shape. It is not
re-raised: Starlette's ``ServerErrorMiddleware`` would answer a bare "Internal
Server Error" and raise again, and uvicorn closes the connection of an app
that raised, so the client's next request on that keep-alive connection was
reset. An exception after the response has started cannot be answered: it is
logged, and uvicorn ends that connection, as it must with a half-sent body.
"""

import asyncio
import logging
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger import format_spus
from proxy.errors import ApiError, error_response, wants_anthropic_shape
from proxy.ids import random_hex
from proxy.server.metrics import Metrics

errors_logger = logging.getLogger("spu.errors")

REQUEST_ID_HEADER = b"x-request-id"
ANTHROPIC_REQUEST_ID_HEADER = b"request-id"
"""The same id, on Anthropic's routes, under the name the anthropic SDK reads (``request_id``)."""
UNMATCHED_ROUTE = "unmatched"
"""Metric label for paths no route serves, so scanners cannot grow the label set."""
LEVELS_WITH_REQUEST_LINES = frozenset({"info", "debug", "trace"})
"""A request line is information: quieter levels leave it out."""


@dataclass(slots=True)
class RequestFacts:
    """What the gateway learned while serving one request."""

    started_s: float
    request_id: str | None = None
    """The metered call's id once there is one (the id its usage record keeps)."""
    org_id: str | None = None
    model: str | None = None
    charged_units: int | None = None
    pending: set["asyncio.Task[Any]"] = field(default_factory=set)


_current: ContextVar[RequestFacts | None] = ContextVar("spu_request_facts", default=None)


def new_request_id() -> str:
    """A request's id: a metered call's (which its usage record keeps), or any other answer's.

    Its first 12 hex digits are the millisecond it was made and the other 20 are random
    (80 bits), so ids made later sort later. The ledger keys holds and usage records on
    it: a new id lands at the right edge of those indexes, on the pages the last ones
    dirtied, so a batch of commits shares them and the hot pages stay in SQLite's cache.
    Fully random ids put each write on its own page of an index that outgrows the cache.
    """
    return f"req_{time.time_ns() // 1_000_000:012x}{random_hex(20)}"


def note(
    *,
    request_id: str | None = None,
    org_id: str | None = None,
    model: str | None = None,
    charged_units: int | None = None,
) -> None:
    """Record a fact about the current request (a no-op outside one, e.g. in a CLI)."""
    facts = _current.get()
    if facts is None:
        return
    if request_id is not None:
        facts.request_id = request_id
    if org_id is not None:
        facts.org_id = org_id
    if model is not None:
        facts.model = model
    if charged_units is not None:
        facts.charged_units = (facts.charged_units or 0) + charged_units


def defer_until(task: "asyncio.Task[Any]") -> None:
    """Hold the current request's log line until ``task`` (e.g. a stream's settlement) ends."""
    facts = _current.get()
    if facts is not None and not task.done():
        facts.pending.add(task)


def elapsed_s() -> float | None:
    """Time since the current request arrived (for measuring the gateway's own overhead)."""
    facts = _current.get()
    return None if facts is None else time.perf_counter() - facts.started_s


def _write_line(line: dict[str, Any]) -> None:
    """One JSON line to stderr (looked up each time, as a test may swap it), not through
    ``logging``: its record (the caller's frame, the thread's and process's names), handler
    lock and formatter cost a plain metered call 68,000 instructions under callgrind, 3.6 %
    of all it spends, for a line that is already formatted. stderr is line-buffered, so the
    line is out before the next, as a logging handler's flush would have it.

    A stderr that is closed or whose reader went away costs the line, never the request.
    """
    try:
        sys.stderr.write(orjson.dumps(line).decode() + "\n")
    except (OSError, ValueError):
        return


def _route_of(scope: Scope) -> str:
    """The matched route's template (bounded label values); FastAPI's own pages (``/docs``,
    ``/openapi.json``) set no route, but their paths are fixed."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    return str(scope["path"]) if "endpoint" in scope else UNMATCHED_ROUTE


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, log_level: str = "info") -> None:
        self.app = app
        self.metrics = metrics
        self.writes_lines = log_level in LEVELS_WITH_REQUEST_LINES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        facts = RequestFacts(started_s=time.perf_counter())
        status = 500
        request_id = ""
        anthropic = wants_anthropic_shape(scope["path"])

        async def send_with_id(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                found = [value for name, value in headers if name.lower() == REQUEST_ID_HEADER]
                if found:
                    request_id = found[0].decode("latin-1")
                else:
                    request_id = facts.request_id or new_request_id()
                    headers.append((REQUEST_ID_HEADER, request_id.encode()))
                if anthropic:
                    headers.append((ANTHROPIC_REQUEST_ID_HEADER, request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        token = _current.set(facts)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            if request_id:  # set when the answer started
                errors_logger.exception("unexpected error after %s started its answer", request_id)
            else:
                await self._answer_unexpected(scope, receive, send_with_id, facts)
        finally:
            _current.reset(token)
            route = _route_of(scope)
            self.metrics.requests_by.of(route, facts.model or "", str(status)).inc()
            if self.writes_lines:
                line = {
                    "event": "request",
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "latency_ms": int((time.perf_counter() - facts.started_s) * 1000),
                }
                self._emit_when_settled(line, facts)

    @staticmethod
    async def _answer_unexpected(
        scope: Scope, receive: Receive, send: Send, facts: RequestFacts
    ) -> None:
        request_id = facts.request_id or new_request_id()
        errors_logger.exception("unexpected error serving %s", request_id)
        error = ApiError(
            500,
            f"The gateway failed unexpectedly while serving this request ({request_id});"
            " it has been logged.",
            error_type="api_error",
            code="internal_error",
            headers={"x-request-id": request_id},
        )
        await error_response(error, scope["path"])(scope, receive, send)

    def _emit_when_settled(self, line: dict[str, Any], facts: RequestFacts) -> None:
        """Write now, or when the last settlement that outlived the response has finished."""
        waiting = {task for task in facts.pending if not task.done()}

        def emit() -> None:
            spus = None if facts.charged_units is None else format_spus(facts.charged_units)
            line.update(org_id=facts.org_id, model=facts.model, spus=spus)
            _write_line(line)

        if not waiting:
            emit()
            return

        def settled(task: "asyncio.Task[Any]") -> None:
            waiting.discard(task)
            if not waiting:
                emit()

        for task in waiting:
            task.add_done_callback(settled)
