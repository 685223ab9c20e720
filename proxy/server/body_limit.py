"""Refuse oversized request bodies with 413 before any route parses them.

A declared Content-Length over the limit is refused at once; a chunked body
is read only up to the limit. The body read here is handed on unchanged, so
routes (and the Stripe webhook signature check) see the exact bytes, and in
the pieces it came in: the route's read joins them, so a join here as well
copied a large body once more (one of the nine copies callgrind counted of a
512 KB call's body).
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy.errors import ApiError, error_response


def sends_no_body(scope: Scope) -> bool:
    """Not an HTTP request that carries a body: a lifespan event, or GET, HEAD or OPTIONS."""
    return scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS")


def declared_body_bytes(scope: Scope) -> int | None:
    """The request's declared Content-Length; None when it declares none a number can be
    read from (a chunked body)."""
    declared = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            declared = value  # the last, as a dict of the headers would keep
    return int(declared) if declared is not None and declared.isdigit() else None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if sends_no_body(scope):
            await self.app(scope, receive, send)
            return
        declared = declared_body_bytes(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = 0

        async def replay() -> Message:
            nonlocal replayed
            if replayed == len(chunks):
                return await receive()
            replayed += 1
            more_body = replayed < len(chunks)
            return {"type": "http.request", "body": chunks[replayed - 1], "more_body": more_body}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = ApiError(
            413,
            f"The request body is larger than this gateway's limit of {self.max_body_bytes} bytes.",
            code="request_too_large",
        )
        await error_response(error, scope["path"])(scope, receive, send)
