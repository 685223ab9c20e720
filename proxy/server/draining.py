"""Graceful shutdown for ``spu serve``: stop accepting at once, drain, settle every hold, exit.

On SIGTERM each uvicorn worker closes its listening socket, lets in-flight
responses run for up to ``timeout_graceful_shutdown`` (``SPU_SHUTDOWN_GRACE_S``),
then cancels what is left; a stream cut there still settles what it streamed
(``MeteredStreamResponse`` ends its call when cancelled). The lifespan
shutdown then runs ``Gateway.stop()``, which waits for every settlement and
release before the store closes. A hold whose settlement could not be written
(ledger down) expires after ``SPU_HOLD_TTL_S`` and stops counting at once.

With several workers, uvicorn's supervisor keeps its own copy of the
listening socket (to respawn crashed workers), so after SIGTERM the kernel
still accepts connections that no worker will ever serve: they hang until the
supervisor exits and are then reset. ``DrainingMultiprocess`` closes that copy
as soon as shutdown starts, so new connections are refused at once and a load
balancer sends them to another replica.
"""

import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess


class DrainingMultiprocess(Multiprocess):
    """uvicorn's worker supervisor, which also stops listening when told to stop."""

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()

    def _stop_listening(self) -> None:
        for sock in self.sockets:
            sock.close()


def run_server(config: uvicorn.Config, listener: socket.socket) -> None:
    """``uvicorn.run`` on a bound socket, with the draining supervisor for several workers."""
    if config.workers > 1:
        DrainingMultiprocess(config, sockets=[listener]).run()
        return
    server = uvicorn.Server(config)
    server.run(sockets=[listener])
    if not server.started:
        sys.exit(STARTUP_FAILURE)
