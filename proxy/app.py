"""The ASGI application: routes, error shapes, limits and the gateway's lifecycle."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger import LedgerStore
from proxy import billing_stub
from proxy.admin import notices as admin_notices
from proxy.admin import routes as admin
from proxy.anthropic import routes as anthropic
from proxy.errors import ApiError, handle_api_error, handle_http_exception, handle_validation_error
from proxy.gateway import Gateway
from proxy.openai import routes as openai
from proxy.protocol_routes import documented, serve
from proxy.responses import routes as responses
from proxy.server import routes as server
from proxy.server.body_limit import BodyLimitMiddleware
from proxy.server.give_way import GiveWayMiddleware
from proxy.server.request_log import RequestLogMiddleware
from proxy.settings import Settings
from proxy.usage import page as usage_page
from proxy.usage import routes as usage
from proxy.version import gateway_version


def create_app(settings: Settings | None = None, *, store: LedgerStore | None = None) -> FastAPI:
    gateway = Gateway.build(settings or Settings(), store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    # FastAPI's native OpenTelemetry looks up three global providers on every request
    # (about 2 % of a metered call's CPU) even when none is configured; the gateway's
    # own metrics are at /metrics.
    app = FastAPI(
        title="SPU Gateway",
        version=gateway_version(),
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.gateway = gateway
    app.add_exception_handler(ApiError, handle_api_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=gateway.settings.max_body_bytes)
    app.add_middleware(GiveWayMiddleware, give_way=gateway.give_way)
    app.add_middleware(
        RequestLogMiddleware, metrics=gateway.metrics, log_level=gateway.settings.log_level
    )
    # The metered protocols' routes first: a request is matched against each route and
    # included router in turn, and the server router's pass before them cost a plain call
    # about 5 % of its instructions.
    protocols = (openai.router, responses.router, anthropic.router)
    serve(app, protocols)
    for module in (server, usage, usage_page, admin, admin_notices):
        app.include_router(module.router)
    app.include_router(billing_stub.router if gateway.billing is None else gateway.billing.router)
    served = [model.name for model in gateway.registry.all()]
    app.openapi = documented(app, protocols, served)  # type: ignore[method-assign]
    return app
