"""The operator's endpoints: liveness, readiness (ready only while the ledger answers: fail
closed) and ``/metrics`` in Prometheus text format, from this app's own registry; and the
root, which agents probe before their first call.

Metric labels carry routes, models and outcomes, never org ids or tokens, so
``/metrics`` can be scraped from the operator's network without an admin token.
"""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ledger import LedgerUnavailable
from proxy import outages
from proxy.errors import retry_after_headers
from proxy.gateway import gateway_of

router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
@router.api_route("/api/hello", methods=["GET", "HEAD"], include_in_schema=False)
async def hello() -> dict[str, Any]:
    """What agents probe before their first call (Claude Code: ``HEAD /`` or ``/api/hello``)."""
    return {"service": "spu-gateway", "status": "ok"}


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    try:
        await gateway_of(request).store.ping()
    except LedgerUnavailable as error:
        return JSONResponse(
            {"status": "unavailable", "reason": str(error)},
            status_code=503,
            headers=retry_after_headers(outages.LEDGER.retry_after_s()),
        )
    return JSONResponse({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    gateway = gateway_of(request)
    gateway.metrics.open_holds.set(gateway.meter.in_flight)
    return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
