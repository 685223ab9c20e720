"""Liveness and readiness: ready only while the ledger answers (fail closed)."""

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ledger import LedgerUnavailable
from proxy.gateway import gateway_of

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    try:
        await gateway_of(request).store.ping()
    except LedgerUnavailable as error:
        return JSONResponse({"status": "unavailable", "reason": str(error)}, status_code=503)
    return JSONResponse({"status": "ready"})
