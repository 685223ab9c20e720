"""Run an ASGI app under a real uvicorn on a free loopback port, in a background thread.

Tests then drive it with real clients over real HTTP (the official SDKs, with
their own connection handling and disconnects), while the app keeps its own
event loop in its own thread, exactly as in production.
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import uvicorn

STARTUP_TIMEOUT_S = 10.0
GRACEFUL_SHUTDOWN_S = 2


class ServerDidNotStart(RuntimeError):
    pass


@contextmanager
def serve_in_thread(app: Any, *, lifespan: Literal["auto", "on", "off"] = "on") -> Iterator[str]:
    """Serve ``app`` until the block ends; yields its base URL (``http://127.0.0.1:PORT``).

    The socket is bound before uvicorn starts, so the port is known and free
    without a retry loop. Startup failures (a lifespan error) raise here.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan=lifespan,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(STARTUP_TIMEOUT_S)
            sock.close()
            raise ServerDidNotStart(f"uvicorn did not start on port {port}")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT_S + GRACEFUL_SHUTDOWN_S)
        sock.close()
