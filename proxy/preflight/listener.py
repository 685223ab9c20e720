"""Take the gateway's port before anything else starts, or say why it cannot be had.

``spu serve`` binds the listening socket itself and hands it to uvicorn (and
so to every worker): a port in use is then one clear line before the workers
start, instead of a log of starting and stopping workers, and the port that
was really bound (``--port 0`` picks a free one) is known to the banner and
the public URL.
"""

import errno
import socket

from proxy.preflight.problems import ConfigurationError, Problem

_CHOOSE_PORT = "choose another port: spu serve --port 8081 (or SPU_PORT=8081)"
_CHOOSE_HOST = (
    "use 127.0.0.1, 0.0.0.0 (every interface) or one of this machine's addresses"
    " (spu serve --host, or SPU_HOST)"
)


def bind_listener(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket on ``host:port``, inheritable by workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: a restarted gateway need not wait out its old connections' TIME_WAIT.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise ConfigurationError([_bind_problem(host, port, error)]) from error
    listener.set_inheritable(True)
    return listener


def _bind_problem(host: str, port: int, error: OSError) -> Problem:
    if error.errno == errno.EADDRINUSE:
        return Problem(
            f"port {port} on {host} is already in use (by another gateway, or another program)",
            f"stop that program, or {_CHOOSE_PORT}",
        )
    if error.errno == errno.EACCES:
        return Problem(
            f"not allowed to listen on port {port} (ports below 1024 need privileges)",
            _CHOOSE_PORT,
        )
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        return Problem(
            f"cannot listen on {host!r}: it is not an address of this machine", _CHOOSE_HOST
        )
    return Problem(f"cannot listen on {host}:{port}: {error.strerror or error}", _CHOOSE_HOST)
