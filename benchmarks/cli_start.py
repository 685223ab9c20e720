"""How long ``spu --help``, every command's ``--help`` and ``spu --version`` take to answer.

Each is run ``--runs`` times as its own process, the way a person types it
(the installed ``spu`` console script of the venv given, default ``.venv``).
It prints, per command, the median and slowest wall time and the median CPU
time (user + system) of the process, and the machine's load average before
and after: on a shared machine wall time follows the load, CPU time much less.
The issue's target is 0.5 s of wall time for every help.

    python benchmarks/cli_start.py [--runs 10] [--venv .venv]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


LIST_COMMANDS = """
import json, typer.main
from proxy.cli import app

def walk(command, prefix):
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from walk(sub, [*prefix, name])

print(json.dumps(list(walk(typer.main.get_command(app), []))))
"""


def command_paths(python: Path) -> list[list[str]]:
    """Every command and group of the ``spu`` app, from the root down, as that venv has it."""
    listed = subprocess.run(
        [str(python), "-c", LIST_COMMANDS], check=True, capture_output=True, text=True, cwd=REPO
    )
    paths: list[list[str]] = json.loads(listed.stdout)
    return paths


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``argv``, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=REPO)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def load() -> str:
    return " ".join(f"{figure:.2f}" for figure in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--venv", type=Path, default=REPO / ".venv")
    args = parser.parse_args()
    spu = str(args.venv / "bin" / "spu")

    paths = command_paths(args.venv / "bin" / "python")
    cases = [[*path, "--help"] for path in paths] + [["--version"]]
    print(f"load average before: {load()}")
    print(f"{'command':34} {'median s':>9} {'max s':>7} {'CPU s':>7}")
    slowest = 0.0
    for case in cases:
        timed([spu, *case])  # one unmeasured run: the files are in the page cache after it
        runs = [timed([spu, *case]) for _ in range(args.runs)]
        walls = [wall for wall, _ in runs]
        slowest = max(slowest, max(walls))
        cpu = statistics.median(cpu for _, cpu in runs)
        label = " ".join(["spu", *case])
        print(f"{label:34} {statistics.median(walls):9.3f} {max(walls):7.3f} {cpu:7.3f}")
    print(f"slowest of all: {slowest:.3f} s; load average after: {load()}")


if __name__ == "__main__":
    main()
