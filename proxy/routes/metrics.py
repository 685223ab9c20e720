"""``/metrics`` in Prometheus text format, from this app's own registry.

Labels carry routes, models and outcomes, never org ids or tokens, so the
endpoint can be scraped from the operator's network without an admin token.
"""

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proxy.gateway import gateway_of

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    gateway = gateway_of(request)
    gateway.metrics.open_holds.set(gateway.meter.in_flight)
    return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)
