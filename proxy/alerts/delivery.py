"""Delivering one alert: POST its signed JSON to the org's alert URL, now.

A 2xx answer delivers it; anything else (an error status, no answer in time,
a refused connection) is an attempt to retry (``proxy.outbox.worker``). The
URL and secret are read at delivery, so a changed URL receives what is still
pending; an org that turned alerts off has nothing delivered.
"""

import asyncio
import time

import httpx

from ledger import LedgerStore
from ledger.outbox import OutboxEvent
from proxy.alerts.body import alert_body
from proxy.alerts.signature import SIGNATURE_HEADER, signature
from proxy.outbox.worker import AttemptFailed

USER_AGENT = "spu-gateway-alerts/1"


class AlertDelivery:
    def __init__(self, store: LedgerStore, *, timeout_s: float) -> None:
        self._store = store
        self._timeout_s = timeout_s
        self._http: httpx.AsyncClient | None = None
        """Made at the first delivery, off the event loop: an HTTP client with TLS imports
        httpcore and loads the CA bundle, about 0.1 s here, which every start paid for alerts
        most gateways never send. Deliveries run one at a time (the alert topic's one outbox
        worker), so no two make it."""

    async def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = await asyncio.to_thread(
                httpx.AsyncClient, timeout=self._timeout_s, follow_redirects=False
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def deliver(self, event: OutboxEvent) -> None:
        settings = await self._store.alert_settings(event.org_id)
        if settings is None:
            return
        body = alert_body(event)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            SIGNATURE_HEADER: signature(settings.secret, body, int(time.time())),
        }
        client = await self._client()
        try:
            answer = await client.post(settings.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise AttemptFailed(f"{type(error).__name__}: {error}") from error
        if not answer.is_success:
            raise AttemptFailed(f"the receiver answered {answer.status_code}")
