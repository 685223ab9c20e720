"""The least a chat proxy on the gateway's own stack does per request: the floor under its figures.

``proxy_bench`` runs this beside the gateway to show how much of the
gateway's cost is the stack itself (uvicorn with uvloop and httptools, a
FastAPI app with a plain Starlette route, orjson, one aiohttp session),
with nothing of the gateway's own: no token check, no hold, no ledger, no
usage record, no request log. It does only what any proxy that routes by
model must: read and parse the body, swap the model name, forward it, and
relay the answer (whole, or a stream piece by piece, as it comes).

Run by ``proxy_bench`` as ``uvicorn benchmarks.stack_floor:create_app
--factory`` with ``FLOOR_UPSTREAM`` set to the fake upstream's base URL.
"""

import os
from collections.abc import AsyncIterator

import aiohttp
import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

UPSTREAM_MODEL = "gpt-4o-mini"


def create_app() -> FastAPI:
    upstream = os.environ["FLOOR_UPSTREAM"].rstrip("/") + "/v1/chat/completions"
    session: aiohttp.ClientSession | None = None

    def client() -> aiohttp.ClientSession:
        nonlocal session
        if session is None:
            connector = aiohttp.TCPConnector(limit=1000)
            session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar()
            )
        return session

    async def relay(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.content.iter_any():
                yield chunk
        finally:
            response.release()

    async def chat_completions(request: Request) -> Response:
        body = orjson.loads(await request.body())
        body["model"] = UPSTREAM_MODEL
        response = await client().post(
            upstream, data=orjson.dumps(body), headers={"content-type": "application/json"}
        )
        media_type = response.headers.get("content-type", "application/json")
        if body.get("stream"):
            return StreamingResponse(relay(response), media_type=media_type)
        content = await response.read()
        return Response(content, status_code=response.status, media_type=media_type)

    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
    app.router.add_route("/v1/chat/completions", chat_completions, methods=["POST"])
    return app
