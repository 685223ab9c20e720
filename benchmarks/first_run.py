"""A newcomer's first run, measured: a fresh clone, cold package caches, no ``.venv``.

What it does, in a temporary folder:

1. ``git clone`` of this repository at ``--ref`` (default ``HEAD``);
2. runs ``./scripts/run.sh --port P`` there with every package cache pointed at
   an empty folder (``UV_CACHE_DIR``, ``PIP_NO_CACHE_DIR=1``, ``XDG_CACHE_HOME``)
   and no ``VIRTUAL_ENV`` or ``SPU_*`` variables, and times it until
   ``GET /readyz`` answers 200; then stops it with SIGTERM;
3. prints that time, the ``.venv``'s size in MB and its number of installed
   distributions (the project itself included), then times a second
   ``run.sh`` (installed already: what every later start costs);
4. with ``--test``, then runs ``./scripts/test.sh`` in the same clone (its
   install steps start from the runtime ``.venv`` just made, with the caches
   still cold for what the test set adds) and prints its wall time and the
   ``.venv``'s size and distribution count afterwards. Debian's chromium is
   installed by test.sh only when it is missing: say whether it was.

Package downloads come from the registry over the network, so the figure is
only as steady as the network; run it twice. Run:
``python benchmarks/first_run.py [--ref main] [--test]``.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 900.0
READY_POLL_S = 0.1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def cold_environment(scratch: Path) -> dict[str, str]:
    """The caller's environment, minus anything that would reuse a warm cache or a venv."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SPU_", "UV_", "VIRTUAL_ENV", "STRIPE_", "TIKTOKEN_"))
    }
    env |= {
        "UV_CACHE_DIR": str(scratch / "uv-cache"),
        "XDG_CACHE_HOME": str(scratch / "xdg-cache"),
        "PIP_NO_CACHE_DIR": "1",
    }
    return env


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def venv_figures(clone: Path) -> tuple[float, int]:
    """The ``.venv``'s size in MB (10⁶ bytes, as ``du -sb``) and its distribution count."""
    venv = clone / ".venv"
    size = sum(path.lstat().st_size for path in venv.rglob("*") if not path.is_symlink())
    distributions = len(list(venv.glob("lib/python*/site-packages/*.dist-info")))
    return size / 1e6, distributions


def time_run(clone: Path, env: dict[str, str], log: Path) -> float:
    port = free_port()
    started = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["./scripts/run.sh", "--port", str(port)],
            cwd=clone,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            while not ready(port):
                if process.poll() is not None:
                    sys.exit(f"run.sh exited with {process.returncode}; see {log}")
                if time.monotonic() - started > READY_TIMEOUT_S:
                    sys.exit(f"not ready after {READY_TIMEOUT_S:.0f} s; see {log}")
                time.sleep(READY_POLL_S)
            elapsed = time.monotonic() - started
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
    return elapsed


def time_test_run(clone: Path, env: dict[str, str], log: Path) -> tuple[float, int]:
    started = time.monotonic()
    with log.open("wb") as output:
        result = subprocess.run(
            ["./scripts/test.sh"], cwd=clone, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    return time.monotonic() - started, result.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="HEAD", help="the commit to clone (default HEAD)")
    parser.add_argument("--test", action="store_true", help="also time ./scripts/test.sh")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its logs")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="spu-first-run-"))
    clone = scratch / "clone"
    try:
        subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
        subprocess.run(["git", "checkout", "--quiet", args.ref], cwd=clone, check=True)
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, check=True, capture_output=True
        ).stdout.decode()
        env = cold_environment(scratch)
        had_chromium = shutil.which("chromium") is not None
        print(f"commit {commit.strip()} ({args.ref}), fresh clone in {clone}")

        seconds = time_run(clone, env, scratch / "run.log")
        size_mb, distributions = venv_figures(clone)
        print(f"run.sh → /readyz 200: {seconds:.1f} s")
        print(f"runtime .venv: {size_mb:.0f} MB, {distributions} distributions")
        seconds = time_run(clone, env, scratch / "run-again.log")
        print(f"run.sh again → /readyz 200: {seconds:.1f} s")

        if args.test:
            seconds, code = time_test_run(clone, env, scratch / "test.log")
            size_mb, distributions = venv_figures(clone)
            chromium = "already installed" if had_chromium else "installed by test.sh"
            print(f"test.sh: {seconds:.1f} s, exit {code} (chromium {chromium})")
            print(f"test .venv: {size_mb:.0f} MB, {distributions} distributions")
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
