"""Hold+settle pairs per second and pair latency on the ledger backends, durable commits.

SQLite commits with ``synchronous=FULL`` (the store's only mode) on a fresh file
in ``--dir`` (default: the system's temporary folder; put it on the disk you
mean to measure, a tmpfs makes fsync free). With ``--url postgresql://…`` the
same rows run on PostgreSQL too, each in a fresh database created on that
server (and dropped afterwards), whose commits are as durable as the server is
set (``synchronous_commit=on``, the default; the benchmark prints it).

One *pair* is what a metered call costs the ledger: ``hold`` then ``settle`` of
the same request, each awaited, under an id the gateway's own way
(``proxy.server.request_log.new_request_id``): the order of the ids decides
which index pages each commit dirties. Each process runs on uvloop, the event
loop the gateway serves on, and keeps exactly ``in flight`` pairs running at all
times, spread over ``orgs`` organizations (1: one hot org).

Rows printed per backend, each with pairs/s, the p50/p99 latency of one pair
(from the hold call to the settle result) and the CPU time per pair of the
benchmark's own processes (all their threads: SQLite's writer is one; a
PostgreSQL server's time is not in it):

- 1 process at each of ``--inflight`` (default 1, 16, 64) pairs in flight, on
  one hot org and on ``--orgs`` (64) orgs;
- 1 and ``--processes`` processes (spawned, sharing the store) x
  ``--concurrency`` in flight each, on one org: throughput;
- ``--processes`` processes x ``--shared-latency-inflight`` each: latency with
  the processes taking turns at the store.

Run from the repository root: ``python benchmarks/ledger_bench.py [--url …]``.
"""

import argparse
import asyncio
import multiprocessing
import multiprocessing.queues
import multiprocessing.synchronize
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import uvloop

from ledger.factory import open_store
from ledger.models import HoldPlaced, UsageDetails
from ledger.store import LedgerStore
from ledger.units import UNITS_PER_SPU
from proxy.server.request_log import new_request_id

HOLD_UNITS = 2_000
SETTLE_UNITS = 1_500
DETAILS = UsageDetails(model="gpt-4o-mini", provider="openai", prompt_tokens=12, total_tokens=20)


@dataclass(frozen=True, slots=True)
class RunFigures:
    pairs: int
    started_s: float
    finished_s: float
    latencies_s: list[float]
    cpu_s: float
    """The process's CPU time over the run, all its threads (the ledger's writer too)."""


@dataclass(frozen=True, slots=True)
class PairFigures:
    """One row's figures, over all its processes."""

    pairs_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_pair: float


def org_ids(orgs: int) -> list[str]:
    return [f"bench-org-{n}" for n in range(orgs)]


async def _one_pair(store: LedgerStore, org_id: str, request_id: str) -> float:
    started = time.perf_counter()
    placed = await store.hold(org_id, HOLD_UNITS, request_id, ttl_s=600)
    if not isinstance(placed, HoldPlaced):
        raise RuntimeError(f"benchmark balance ran out: {placed}")
    await store.settle(request_id, SETTLE_UNITS, DETAILS)
    return time.perf_counter() - started


async def _run_pairs(url: str, pairs: int, inflight: int, orgs: int) -> RunFigures:
    """``inflight`` workers share a counter of pairs left, so exactly ``pairs`` run."""
    store = open_store(url)
    await store.open()
    targets = org_ids(orgs)
    left = pairs
    latencies: list[float] = []

    async def worker(index: int) -> None:
        nonlocal left
        org_id = targets[index % orgs]
        while left > 0:
            left -= 1
            latencies.append(await _one_pair(store, org_id, new_request_id()))

    try:
        started, cpu_started = time.time(), time.process_time()
        await asyncio.gather(*(worker(index) for index in range(inflight)))
        finished, cpu_s = time.time(), time.process_time() - cpu_started
    finally:
        await store.close()
    return RunFigures(pairs, started, finished, latencies, cpu_s)


def _process_entry(
    url: str,
    pairs: int,
    inflight: int,
    orgs: int,
    core: int | None,
    start_together: multiprocessing.synchronize.Barrier,
    results: "multiprocessing.queues.Queue[RunFigures]",
) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})
    start_together.wait()
    results.put(uvloop.run(_run_pairs(url, pairs, inflight, orgs)))


async def _prepare(url: str, total_pairs: int, orgs: int) -> None:
    store = open_store(url)
    await store.open()
    try:
        for org_id in org_ids(orgs):
            await store.create_account(org_id, free_grant_units=0)
            budget = total_pairs * HOLD_UNITS + 1_000 * UNITS_PER_SPU
            await store.grant(org_id, budget, "benchmark budget", f"bench-{uuid.uuid4().hex}")
    finally:
        await store.close()


def _percentile_ms(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index] * 1e3


class Backend:
    """Where one benchmark row's store lives: a fresh SQLite file or PostgreSQL database."""

    def __init__(self, folder: Path, server_url: str | None) -> None:
        self.folder = folder
        self.server_url = server_url
        self.name = "PostgreSQL" if server_url else "SQLite"

    @contextmanager
    def fresh_store(self) -> Iterator[str]:
        if self.server_url is None:
            yield f"sqlite:///{self.folder / f'bench-{uuid.uuid4().hex[:8]}.db'}"
            return
        import psycopg

        name = f"spu_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(self.server_url)._replace(path=f"/{name}"))
        finally:
            with psycopg.connect(self.server_url, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')

    def describe(self) -> str:
        if self.server_url is None:
            return "SQLite ledger, WAL, synchronous=FULL"
        import psycopg

        with psycopg.connect(self.server_url, autocommit=True) as connection:
            version = connection.execute("SHOW server_version").fetchone()
            durability = connection.execute("SHOW synchronous_commit").fetchone()
            fsync = connection.execute("SHOW fsync").fetchone()
        assert version and durability and fsync
        return (
            f"PostgreSQL {version[0]} ledger, synchronous_commit={durability[0]}, fsync={fsync[0]}"
        )


def pair_figures(
    backend: Backend,
    processes: int,
    pairs_per_process: int,
    inflight: int,
    orgs: int,
    core: int | None = None,
) -> PairFigures:
    """Run the pairs in ``processes`` spawned processes at once, each pinned to ``core`` if
    given (``proxy_bench`` measures the ledger on the core the gateway runs on)."""
    with backend.fresh_store() as url:
        asyncio.run(_prepare(url, processes * pairs_per_process, orgs))
        context = multiprocessing.get_context("spawn")
        start_together = context.Barrier(processes)
        results: multiprocessing.queues.Queue[RunFigures] = context.Queue()
        workers = [
            context.Process(
                target=_process_entry,
                args=(url, pairs_per_process, inflight, orgs, core, start_together, results),
            )
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        runs = [results.get(timeout=900) for _ in workers]
        for worker in workers:
            worker.join()
    pairs = sum(run.pairs for run in runs)
    elapsed_s = max(run.finished_s for run in runs) - min(run.started_s for run in runs)
    latencies = sorted(latency for run in runs for latency in run.latencies_s)
    return PairFigures(
        pairs_per_s=pairs / elapsed_s,
        p50_ms=_percentile_ms(latencies, 0.50),
        p99_ms=_percentile_ms(latencies, 0.99),
        cpu_us_per_pair=sum(run.cpu_s for run in runs) / pairs * 1e6,
    )


def measure(
    backend: Backend, processes: int, pairs_per_process: int, inflight: int, orgs: int
) -> str:
    """``pair_figures`` as one printable row."""
    figures = pair_figures(backend, processes, pairs_per_process, inflight, orgs)
    where = "1 hot org" if orgs == 1 else f"{orgs} orgs"
    return (
        f"{backend.name:>10}: {processes} process(es) x {inflight:>4} in flight, {where:>9}:"
        f" {figures.pairs_per_s:>9,.0f} pairs/s, pair latency p50 {figures.p50_ms:6.3f} ms,"
        f" p99 {figures.p99_ms:6.3f} ms, CPU {figures.cpu_us_per_pair:5.0f} us/pair"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default=None, help="a PostgreSQL server URL: also bench it")
    parser.add_argument("--pairs", type=int, default=20_000, help="pairs per throughput run")
    parser.add_argument("--concurrency", type=int, default=256, help="pairs in flight/process")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--inflight", type=int, nargs="*", default=[1, 16, 64])
    parser.add_argument("--orgs", type=int, default=64, help="orgs of the many-org rows")
    parser.add_argument("--latency-pairs", type=int, default=5_000)
    parser.add_argument(
        "--shared-latency-inflight",
        type=int,
        default=4,
        help="pairs in flight per process for the multi-process latency row (0: skip it)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite files go")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ledger-bench-", dir=arguments.dir) as tmp:
        backends = [Backend(Path(tmp), None)]
        if arguments.url:
            backends.append(Backend(Path(tmp), arguments.url))
        for backend in backends:
            print(f"{backend.describe()}; one pair = hold + settle, both awaited", flush=True)
        for inflight in arguments.inflight:
            pairs = arguments.latency_pairs if inflight == 1 else arguments.pairs // 2
            for orgs in (1, arguments.orgs):
                for backend in backends:
                    print(measure(backend, 1, pairs, inflight, orgs), flush=True)
        for processes in sorted({1, arguments.processes}):
            for backend in backends:
                per_process = arguments.pairs // processes
                print(measure(backend, processes, per_process, arguments.concurrency, 1))
        if arguments.processes > 1 and arguments.shared_latency_inflight:
            per_process = arguments.latency_pairs // arguments.processes
            for backend in backends:
                row = measure(
                    backend, arguments.processes, per_process, arguments.shared_latency_inflight, 1
                )
                print(row, flush=True)


if __name__ == "__main__":
    main()
