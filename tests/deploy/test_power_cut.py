"""A power cut on the SQLite ledger keeps every settled debit; a hold's commit need not survive.

A process SIGKILLed keeps everything it committed (the kernel still has the
pages). A power cut keeps only what was fsynced. This test makes a real
ledger process place a hold and settle it, place a second hold, then kills
it, all under ``strace``, which logs every write and fsync of the WAL. The
disk image a power cut would have left is then rebuilt: the WAL as far as
its last fsync. Opened, that image has the settled call's debit and usage
record, and not the second hold, whose commit waited for no disk; the
SIGKILLed files themselves have the second hold too.

The ledger's WAL checkpoints are turned off in the child, so that every
fsync of the WAL comes from a commit and the WAL is only ever appended to.
"""

import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from ledger.sqlite import SqliteLedger
from ledger.verify import verify

REPO_ROOT = Path(__file__).resolve().parents[2]
GRANT_UNITS = 1_000_000
SETTLED_UNITS = 700

CHILD = """
import asyncio, os, signal, sys
from ledger import UsageDetails
from ledger.sqlite import SqliteLedger, store


class NoCheckpoints:
    def __init__(self, *args, **kwargs): pass
    def start(self): pass
    def stop(self): pass


store.Checkpointer = NoCheckpoints


async def main():
    ledger = SqliteLedger(sys.argv[1])
    await ledger.open()
    await ledger.create_account("org", free_grant_units={grant})
    await ledger.hold("org", 1_000, "req-settled", 60)
    await ledger.settle("req-settled", {settled}, UsageDetails(model="m", provider="p"))
    await ledger.hold("org", 2_000, "req-held", 60)
    os.kill(os.getpid(), signal.SIGKILL)


asyncio.run(main())
"""

_WRITE = re.compile(
    r"pwrite64\(\d+<(?P<path>[^>]*)>, .*, (?P<size>\d+), (?P<offset>\d+)\) = (\d+)$"
)
_SYNC = re.compile(r"f(?:data)?sync\(\d+<(?P<path>[^>]*)>\) = 0$")


def synced_lengths(trace: str) -> tuple[dict[str, int], dict[str, int]]:
    """Per file: how far it was written, and how far it was written when last fsynced."""
    written: dict[str, int] = {}
    synced: dict[str, int] = {}
    for line in trace.splitlines():
        if match := _WRITE.search(line):
            path = match["path"]
            end = int(match["offset"]) + int(match["size"])
            written[path] = max(written.get(path, 0), end)
        elif match := _SYNC.search(line):
            synced[match["path"]] = written.get(match["path"], 0)
    return written, synced


def run_child_killed(database: Path, trace: Path) -> None:
    child = CHILD.format(grant=GRANT_UNITS, settled=SETTLED_UNITS)
    command = ["strace", "-f", "-qq", "-yy", "-o", str(trace)]
    command += ["-e", "trace=pwrite64,fsync,fdatasync", "-e", "signal=none"]
    result = subprocess.run(
        [*command, sys.executable, "-c", textwrap.dedent(child), str(database)],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == -9 or "killed by SIGKILL" in result.stderr, result.stderr


def power_cut_image(database: Path, wal_length: int, folder: Path) -> Path:
    """The database file with its WAL as far as ``wal_length`` bytes, in ``folder``."""
    folder.mkdir()
    image = folder / database.name
    shutil.copyfile(database, image)
    wal = Path(f"{database}-wal").read_bytes()
    Path(f"{image}-wal").write_bytes(wal[:wal_length])
    return image


def rows(database: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as connection:
        return connection.execute(query).fetchall()


async def test_a_power_cut_keeps_the_settled_debit_and_may_lose_a_later_hold(
    tmp_path: Path,
) -> None:
    live = tmp_path / "live"
    live.mkdir()
    database = live / "ledger.db"
    trace = tmp_path / "strace.log"
    run_child_killed(database, trace)

    written, synced = synced_lengths(trace.read_text())
    wal = str(database) + "-wal"
    assert written[str(database)] == synced[str(database)], "a database write never fsynced"
    assert synced[wal] < written[wal], "the last hold's commit was fsynced"

    cut = power_cut_image(database, synced[wal], tmp_path / "after-power-cut")
    killed = power_cut_image(database, written[wal], tmp_path / "after-sigkill")

    assert rows(cut, "SELECT request_id, state FROM holds ORDER BY request_id") == [
        ("req-settled", "settled")
    ]
    assert rows(cut, "SELECT request_id, charged_units FROM usage_records") == [
        ("req-settled", SETTLED_UNITS)
    ]
    killed_holds = rows(killed, "SELECT request_id, state FROM holds")
    assert sorted(killed_holds) == [("req-held", "open"), ("req-settled", "settled")]

    store = SqliteLedger(cut)
    await store.open()
    try:
        balance = await store.balance("org")
        assert balance.held_units == 0
        assert balance.available_units == GRANT_UNITS - SETTLED_UNITS
        _, violations = await verify(store)
        assert violations == []
    finally:
        await store.close()
