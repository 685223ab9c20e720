"""Run the real gateway as ``spu serve`` in its own processes, and look at them from outside.

The deployment tests need what production has: several worker processes on
one store, real signals, real sockets on 127.0.0.1. Everything here is bounded
in time, and every process a test starts is killed (by its own id) when the
test ends, whatever happened.
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ledger import UNITS_PER_SPU
from ledger.factory import open_store
from proxy.auth import issue_token
from tests.stores import query

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.05
DEMO_MODEL = "spu-demo"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Gateway:
    """One ``spu serve`` supervisor (and its workers) on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, *, timeout_s: float, max_connections: int = 100) -> httpx.AsyncClient:
        """A client of this gateway; 100 connections (httpx's default) unless told more."""
        limits = httpx.Limits(max_connections=max_connections)
        return httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=timeout_s)

    def workers(self) -> list[int]:
        """The worker processes uvicorn's supervisor spawned (its other children are helpers)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()
        return [int(child) for child in children if "spawn_main" in _cmdline(int(child))]

    def wait_for_workers(self, count: int, *, excluding: set[int], timeout_s: float) -> list[int]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            alive = [pid for pid in self.workers() if pid not in excluding]
            if len(alive) >= count:
                return alive
            time.sleep(POLL_INTERVAL_S)
        raise AssertionError(f"{count} workers not running after {timeout_s} s:\n{self.log()}")

    def stop(
        self, sig: signal.Signals = signal.SIGTERM, *, timeout_s: float = STOP_TIMEOUT_S
    ) -> int:
        """Send ``sig`` to the supervisor and wait for the whole gateway to exit."""
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired as error:
            raise AssertionError(f"gateway did not exit {timeout_s} s after {sig!r}") from error
        return code


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def gateway_environment(ledger_url: str, **settings: object) -> dict[str, str]:
    """The environment ``spu serve`` runs with: this test's store, the demo model, no files."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SPU_", "STRIPE_"))
    }
    environment.update(
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        SPU_LEDGER_URL=ledger_url,
        SPU_LOG_LEVEL="warning",
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    environment.update({f"SPU_{name.upper()}": str(value) for name, value in settings.items()})
    return environment


@contextmanager
def running_gateway(
    ledger_url: str, log_dir: Path, *, workers: int, **settings: object
) -> Iterator[Gateway]:
    """``spu serve --workers N`` until the block ends; ready (``/readyz`` 200) on entry."""
    port = free_port()
    log_path = log_dir / f"gateway-{port}.log"
    command = [
        sys.executable,
        "-c",
        # `spu serve`, called without the CLI's other commands around it.
        "import typer; from proxy.cli.serve import serve; typer.run(serve)",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=gateway_environment(ledger_url, **settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    gateway = Gateway(process=process, port=port, log_path=log_path)
    try:
        _wait_ready(gateway, workers)
        yield gateway
    finally:
        _kill_leftovers(gateway)


def _wait_ready(gateway: Gateway, workers: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise AssertionError(f"gateway exited during start-up:\n{gateway.log()}")
        if workers > 1 and len(gateway.workers()) < workers:
            time.sleep(POLL_INTERVAL_S)
            continue
        try:
            if httpx.get(f"{gateway.base_url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(POLL_INTERVAL_S)
    raise AssertionError(f"gateway not ready after {START_TIMEOUT_S} s:\n{gateway.log()}")


def _kill_leftovers(gateway: Gateway) -> None:
    """SIGKILL the supervisor's process group, which holds only processes this test started."""
    try:
        os.killpg(gateway.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    gateway.process.wait(STOP_TIMEOUT_S)


@dataclass(frozen=True)
class Org:
    org_id: str
    token: str
    grant_units: int


async def seed_orgs(ledger_url: str, grants_spus: Mapping[str, float]) -> list[Org]:
    """Create orgs with the given free grants and one token each, before the gateway starts."""
    store = open_store(ledger_url)
    await store.open()
    try:
        orgs = []
        for org_id, spus in grants_spus.items():
            grant_units = int(spus * UNITS_PER_SPU)
            await store.create_account(org_id, free_grant_units=grant_units)
            token, _key = await issue_token(store, org_id, name="deploy-test")
            orgs.append(Org(org_id, token, grant_units))
        return orgs
    finally:
        await store.close()


def hold_states(ledger_url: str) -> dict[str, int]:
    """How many holds are in each state, read straight from the store."""
    rows = query(ledger_url, "SELECT state, COUNT(*) FROM holds GROUP BY state")
    return {str(state): int(count) for state, count in rows}


def chat_body(*, max_tokens: int, stream: bool, prompt_words: int = 5) -> dict[str, object]:
    words = " ".join(f"word{index}" for index in range(prompt_words))
    return {
        "model": DEMO_MODEL,
        "messages": [{"role": "user", "content": words}],
        "max_tokens": max_tokens,
        "stream": stream,
    }


@dataclass(frozen=True)
class StreamEnd:
    """How a streamed chat completion ended, as the client saw it."""

    request_id: str
    complete: bool
    """It arrived whole, through ``data: [DONE]``."""
    error: str | None
    """Why the connection ended under it, when it did."""


async def stream_chat(
    client: httpx.AsyncClient, org: Org, body: dict[str, object], started: asyncio.Event
) -> StreamEnd:
    """Read one streamed completion to its end; ``started`` is set once its headers arrive."""
    headers = {"authorization": f"Bearer {org.token}"}
    received = b""
    async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as reply:
        assert reply.status_code == 200
        request_id = reply.headers["x-request-id"]
        started.set()
        try:
            async for piece in reply.aiter_bytes():
                received += piece
        except (httpx.RemoteProtocolError, httpx.ReadError) as error:
            return StreamEnd(request_id, complete=False, error=str(error))
    return StreamEnd(request_id, complete=received.endswith(b"data: [DONE]\n\n"), error=None)


async def start_streams(
    client: httpx.AsyncClient, org: Org, bodies: Sequence[dict[str, object]]
) -> list["asyncio.Task[StreamEnd]"]:
    """One stream per body, returned once every one of them is under way."""
    started = [asyncio.Event() for _ in bodies]
    streams = [
        asyncio.create_task(stream_chat(client, org, body, event))
        for body, event in zip(bodies, started, strict=True)
    ]
    await asyncio.gather(*(event.wait() for event in started))
    return streams


def established_connections(pid: int, port: int) -> int:
    """Open client connections a process holds on ``port`` (from /proc: sockets it owns)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:]
        for line in lines:
            columns = line.split()
            local_port = int(columns[1].rsplit(":", 1)[1], 16)
            established = columns[3] == "01"
            if local_port == port and established and columns[9] in inodes:
                count += 1
    return count
