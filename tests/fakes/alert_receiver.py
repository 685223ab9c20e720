"""A local alert receiver: records every delivery, and can be down for its first attempts."""

import asyncio
import threading
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response


@dataclass(frozen=True)
class Delivery:
    body: bytes
    signature: str


@dataclass
class AlertReceiver:
    """An ASGI app; ``down_for`` requests are answered 503 before it starts accepting."""

    down_for: int = 0
    attempts: int = 0
    received: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        request = Request(scope, receive)  # type: ignore[arg-type]
        body = await request.body()
        with self._lock:
            self.attempts += 1
            accepted = self.attempts > self.down_for
            if accepted:
                self.received.append(Delivery(body, request.headers.get("spu-signature", "")))
        await Response(status_code=204 if accepted else 503)(scope, receive, send)  # type: ignore[arg-type]

    async def wait_for(self, count: int, *, timeout_s: float) -> list[Delivery]:
        """The deliveries once there are ``count`` (or the wait ran out)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            if len(self.received) >= count or asyncio.get_running_loop().time() > deadline:
                return list(self.received)
            await asyncio.sleep(0.02)
