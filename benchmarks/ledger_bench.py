"""Hold+settle pairs per second and pair latency on the SQLite ledger, durable commits.

Every commit is ``synchronous=FULL`` (the store's only mode) on a fresh file in
``--dir`` (default: the system's temporary folder; put it on the disk you mean
to measure, a tmpfs makes fsync free). One *pair* is what a metered call costs
the ledger: ``hold`` then ``settle`` of the same request, each awaited. Each
process keeps exactly ``in-flight`` pairs running at all times, all on one org.

Rows printed, each with pairs/s and the p50/p99 latency of one pair (from the
hold call to the settle result) at that concurrency:

- 1 process x ``--concurrency`` in flight, and ``--processes`` processes (spawned,
  sharing the file) x ``--concurrency`` each: throughput;
- 1 process x each of ``--latency-inflight``: latency at modest concurrency;
- ``--processes`` processes x ``--shared-latency-inflight`` each: the same, with
  the processes taking turns at the file's write lock.

Run from the repository root: ``python benchmarks/ledger_bench.py`` (``--profile``
prints a cProfile of the event-loop thread of a one-process run instead).
"""

import argparse
import asyncio
import cProfile
import multiprocessing
import multiprocessing.queues
import multiprocessing.synchronize
import pstats
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ledger.models import HoldPlaced, UsageDetails
from ledger.sqlite import SqliteLedger
from ledger.units import UNITS_PER_SPU

ORG_ID = "bench-org"
HOLD_UNITS = 2_000
SETTLE_UNITS = 1_500
DETAILS = UsageDetails(model="gpt-4o-mini", provider="openai", prompt_tokens=12, total_tokens=20)


@dataclass(frozen=True, slots=True)
class RunFigures:
    pairs: int
    started_s: float
    finished_s: float
    latencies_s: list[float]


async def _one_pair(store: SqliteLedger, request_id: str) -> float:
    started = time.perf_counter()
    placed = await store.hold(ORG_ID, HOLD_UNITS, request_id, ttl_s=600)
    if not isinstance(placed, HoldPlaced):
        raise RuntimeError(f"benchmark balance ran out: {placed}")
    await store.settle(request_id, SETTLE_UNITS, DETAILS)
    return time.perf_counter() - started


async def _run_pairs(path: Path, pairs: int, inflight: int) -> RunFigures:
    """``inflight`` workers share a counter of pairs left, so exactly ``pairs`` run."""
    store = SqliteLedger(path)
    await store.open()
    prefix = uuid.uuid4().hex[:8]
    left = pairs
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            latencies.append(await _one_pair(store, f"{prefix}-{left}"))

    try:
        started = time.time()
        await asyncio.gather(*(worker() for _ in range(inflight)))
        finished = time.time()
    finally:
        await store.close()
    return RunFigures(pairs, started, finished, latencies)


def _process_entry(
    path: Path,
    pairs: int,
    inflight: int,
    start_together: multiprocessing.synchronize.Barrier,
    results: "multiprocessing.queues.Queue[RunFigures]",
) -> None:
    start_together.wait()
    results.put(asyncio.run(_run_pairs(path, pairs, inflight)))


async def _prepare(path: Path, total_pairs: int) -> None:
    store = SqliteLedger(path)
    await store.open()
    try:
        await store.create_account(ORG_ID, free_grant_units=0)
        budget = total_pairs * HOLD_UNITS + 1_000 * UNITS_PER_SPU
        await store.grant(ORG_ID, budget, "benchmark budget", f"bench-{uuid.uuid4().hex}")
    finally:
        await store.close()


def _percentile_ms(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index] * 1e3


def measure(folder: Path, processes: int, pairs_per_process: int, inflight: int) -> str:
    """Run the pairs in ``processes`` spawned processes at once; one printable row."""
    path = folder / f"bench-{uuid.uuid4().hex[:8]}.db"
    asyncio.run(_prepare(path, processes * pairs_per_process))
    context = multiprocessing.get_context("spawn")
    start_together = context.Barrier(processes)
    results: multiprocessing.queues.Queue[RunFigures] = context.Queue()
    workers = [
        context.Process(
            target=_process_entry,
            args=(path, pairs_per_process, inflight, start_together, results),
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
    return (
        f"{processes} process(es) x {inflight:>4} in flight: {pairs / elapsed_s:>9,.0f} pairs/s,"
        f" pair latency p50 {_percentile_ms(latencies, 0.50):6.3f} ms,"
        f" p99 {_percentile_ms(latencies, 0.99):6.3f} ms"
    )


def profile_one_process(folder: Path, pairs: int, inflight: int) -> None:
    path = folder / "profile.db"
    asyncio.run(_prepare(path, pairs))
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(_run_pairs(path, pairs, inflight))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40_000, help="pairs per throughput run")
    parser.add_argument("--concurrency", type=int, default=256, help="pairs in flight/process")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--latency-pairs", type=int, default=10_000)
    parser.add_argument("--latency-inflight", type=int, nargs="*", default=[1, 16])
    parser.add_argument(
        "--shared-latency-inflight",
        type=int,
        default=4,
        help="pairs in flight per process for the multi-process latency row (0: skip it)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where the ledger files go")
    parser.add_argument("--profile", action="store_true")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ledger-bench-", dir=arguments.dir) as tmp:
        folder = Path(tmp)
        if arguments.profile:
            profile_one_process(folder, arguments.pairs, arguments.concurrency)
            return
        print("SQLite ledger, WAL, synchronous=FULL; one pair = hold + settle, both awaited")
        for processes in sorted({1, arguments.processes}):
            per_process = arguments.pairs // processes
            print(measure(folder, processes, per_process, arguments.concurrency), flush=True)
        for inflight in arguments.latency_inflight:
            print(measure(folder, 1, arguments.latency_pairs, inflight), flush=True)
        if arguments.processes > 1 and arguments.shared_latency_inflight:
            per_process = arguments.latency_pairs // arguments.processes
            row = measure(
                folder, arguments.processes, per_process, arguments.shared_latency_inflight
            )
            print(row, flush=True)


if __name__ == "__main__":
    main()
