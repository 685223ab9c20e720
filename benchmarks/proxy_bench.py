"""The metering gateway against a fast fake upstream, and the LiteLLM proxy beside it.

What it starts, each as its own process on 127.0.0.1, one worker each:

- the fake upstream (``tests.fakes.upstream``) under uvicorn (uvloop + httptools);
- the gateway, ``python -m uvicorn proxy.app:create_app --factory``, metered
  for real: a fresh SQLite ledger (``synchronous=FULL``) in a temporary folder,
  a seeded org with plenty of credit and a token, a ``model_list`` (via
  ``SPU_CONFIG_FILE``) routing ``bench-model`` (OpenAI format, Chat
  Completions), ``bench-responses`` (OpenAI format with ``responses_api``:
  the Responses API relayed as it is) and ``bench-claude`` (Anthropic format)
  to the fake upstream; no litellm-routed model;
- the LiteLLM proxy (``litellm[proxy]`` in its own virtualenv, created on first
  use under ``~/.cache/spu-gateway-bench``; no database, one worker, same
  upstream). ``--skip-litellm`` leaves it out.

Load comes from wrk (``apt-get install wrk``), a C load generator, through a
Lua script that sends the POST body and prints exact latency percentiles; it
is far cheaper per request than any Python client, so on two cores it takes
little from the servers it measures. Every case runs at 1 and at 32
connections: plain chat, streamed chat, streamed Anthropic ``/v1/messages``,
and streamed ``/v1/responses`` twice: relayed to an upstream that serves it
(``responses stream``) and translated to Chat Completions (``responses
chat``; LiteLLM relays both the same way, natively). A case is skipped with a
note when the gateway answers 404 on its route. Added latency is the
gateway's percentile minus the direct upstream's. Each server's CPU time per
request (user + system, its whole process tree, over the measured run) is
printed beside its throughput: on a shared machine it is steadier than
requests per second.

Run: ``python benchmarks/proxy_bench.py`` (``--help`` for durations and options).
"""

import argparse
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LITELLM_VENV = Path.home() / ".cache" / "spu-gateway-bench" / "litellm-venv"
LITELLM_VERSION = "litellm[proxy]"
READY_TIMEOUT_S = 120.0
READY_POLL_S = 0.005
CONNECTIONS = (1, 32)
BENCH_MODEL = "bench-model"
BENCH_CLAUDE = "bench-claude"
BENCH_RESPONSES = "bench-responses"
UPSTREAM_MODEL = "gpt-4o-mini"
UPSTREAM_CLAUDE = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "Hello! Please answer in one short sentence."}]
MAX_TOKENS = 64
RESPONSES_INPUT = "Hello! Please answer in one short sentence."
SEED_SPUS = 10_000_000

WRK_SCRIPT = textwrap.dedent(
    """\
    wrk.method = "POST"
    wrk.body = {body}
    {headers}
    done = function(summary, latency, requests)
      local errors = summary.errors.connect + summary.errors.read + summary.errors.write
        + summary.errors.status + summary.errors.timeout
      io.write(string.format(
        "WRK_JSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"errors\\": %d,"
        .. " \\"p50_us\\": %d, \\"p99_us\\": %d}}\\n",
        summary.requests, summary.duration, errors,
        latency:percentile(50), latency:percentile(99)))
    end
    """
)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    path: str
    body: dict[str, object]
    direct_path: str
    direct_body: dict[str, object]


@dataclass(frozen=True, slots=True)
class LoadFigures:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float


@dataclass(frozen=True, slots=True)
class Rss:
    """The gateway's resident memory once the load has run, and its high-water mark."""

    after_load_mb: float
    peak_mb: float


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    base_url: str
    headers: dict[str, str]
    pid: int
    """The server's process, whose CPU time is read around each measured run."""


def chat_body(model: str, *, stream: bool) -> dict[str, object]:
    return {"model": model, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": stream}


def responses_body(model: str) -> dict[str, object]:
    return {
        "model": model,
        "input": RESPONSES_INPUT,
        "max_output_tokens": MAX_TOKENS,
        "stream": True,
    }


CASES = (
    Case(
        "chat plain",
        "/v1/chat/completions",
        chat_body(BENCH_MODEL, stream=False),
        "/v1/chat/completions",
        chat_body(UPSTREAM_MODEL, stream=False),
    ),
    Case(
        "chat stream",
        "/v1/chat/completions",
        chat_body(BENCH_MODEL, stream=True),
        "/v1/chat/completions",
        {**chat_body(UPSTREAM_MODEL, stream=True), "stream_options": {"include_usage": True}},
    ),
    Case(
        "messages stream",
        "/v1/messages",
        chat_body(BENCH_CLAUDE, stream=True),
        "/v1/messages",
        chat_body(UPSTREAM_CLAUDE, stream=True),
    ),
    Case(
        "responses stream",
        "/v1/responses",
        responses_body(BENCH_RESPONSES),
        "/v1/responses",
        responses_body(UPSTREAM_MODEL),
    ),
    Case(
        "responses chat",
        "/v1/responses",
        responses_body(BENCH_MODEL),
        "/v1/chat/completions",
        {**chat_body(UPSTREAM_MODEL, stream=True), "stream_options": {"include_usage": True}},
    ),
)


_SCRIPT_NUMBERS = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_status(
    url: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> int:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0


def wait_ready(url: str, process: subprocess.Popen[bytes], started_s: float) -> float:
    """Seconds from ``started_s`` to the first 200 from ``url``."""
    deadline = started_s + READY_TIMEOUT_S
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        if http_status(url) == 200:
            return time.perf_counter() - started_s
        time.sleep(READY_POLL_S)
    raise RuntimeError(f"{url} not ready after {READY_TIMEOUT_S} s")


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split()
        for child in children:
            pids += _tree(int(child))
    return pids


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process and its children have used so far."""
    ticks = 0
    for member in _tree(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """Current and peak resident memory of a process and its children, in MB."""
    current_kb = peak_kb = 0
    for member in _tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                current_kb += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                peak_kb += int(line.split()[1])
    return current_kb / 1024, peak_kb / 1024


@contextmanager
def running(
    command: list[str], env: dict[str, str], log: Path, ready_url: str
) -> Iterator[tuple[subprocess.Popen[bytes], float]]:
    """Start a server process; yield it and its seconds from start to ready."""
    started = time.perf_counter()
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO
        )
        try:
            ready_s = wait_ready(ready_url, process, started)
            yield process, ready_s
        except Exception:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def uvicorn_command(app: str, port: int, *, factory: bool) -> list[str]:
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log", "--loop", "uvloop"]
    command += ["--http", "httptools"]
    return command + (["--factory"] if factory else [])


def wrk(
    target: Target, case: Case, connections: int, duration_s: int, workdir: Path, direct: bool
) -> LoadFigures:
    body = json.dumps(case.direct_body if direct else case.body)
    headers = {"Content-Type": "application/json", **target.headers}
    if case.path == "/v1/messages":
        headers["anthropic-version"] = "2023-06-01"
    header_lines = "\n".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()
    )
    script = workdir / f"wrk-{next(_SCRIPT_NUMBERS)}.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(body), headers=header_lines))
    threads = min(connections, 2)
    url = target.base_url + (case.direct_path if direct else case.path)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "-s", str(script)]
    cpu_before_s = cpu_s(target.pid)
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=duration_s + 60
    ).stdout
    cpu_used_s = cpu_s(target.pid) - cpu_before_s
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    figures = json.loads(line.removeprefix("WRK_JSON "))
    return LoadFigures(
        requests_per_s=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=figures["errors"],
        cpu_us_per_request=cpu_used_s / max(figures["requests"], 1) * 1e6,
    )


def measure(
    target: Target, cases: list[Case], args: argparse.Namespace, workdir: Path, direct: bool = False
) -> dict[tuple[str, int], LoadFigures]:
    results: dict[tuple[str, int], LoadFigures] = {}
    for case in cases:
        for connections in CONNECTIONS:
            wrk(target, case, connections, args.warmup, workdir, direct)
            figures = wrk(target, case, connections, args.duration, workdir, direct)
            results[(case.name, connections)] = figures
            print(
                f"  {target.name:<9} {case.name:<16} c={connections:<3}"
                f" {figures.requests_per_s:9.1f} req/s  p50 {figures.p50_ms:8.3f} ms"
                f"  p99 {figures.p99_ms:8.3f} ms  CPU {figures.cpu_us_per_request:7.0f} us/req"
                f"  errors {figures.errors}",
                flush=True,
            )
    return results


def seed_ledger(path: Path) -> str:
    """A fresh org with plenty of credit and a token, written through the ledger itself."""
    script = textwrap.dedent(
        f"""
        import asyncio
        from ledger import spus_to_units
        from ledger.sqlite import SqliteLedger
        from proxy.auth import issue_token

        async def main():
            store = SqliteLedger({str(path)!r})
            await store.open()
            await store.create_account("bench-org", free_grant_units=spus_to_units({SEED_SPUS}))
            token, _ = await issue_token(store, "bench-org", name="bench")
            await store.close()
            print(token)

        asyncio.run(main())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    )
    return result.stdout.strip()


def ledger_totals(path: Path) -> tuple[int, int]:
    with sqlite3.connect(path) as connection:
        records = connection.execute("SELECT COUNT(*) FROM usage_records").fetchone()[0]
        open_holds = connection.execute(
            "SELECT COUNT(*) FROM holds WHERE state = 'open'"
        ).fetchone()[0]
    return int(records), int(open_holds)


def ensure_litellm() -> Path:
    executable = LITELLM_VENV / "bin" / "litellm"
    if executable.exists():
        return executable
    print(f"creating {LITELLM_VENV} with {LITELLM_VERSION} (one-off, a few minutes)...")
    subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
    pip = [str(LITELLM_VENV / "bin" / "pip"), "install", "--quiet", LITELLM_VERSION]
    subprocess.run(pip, check=True)
    return executable


def write_configs(workdir: Path, upstream_url: str) -> tuple[Path, Path]:
    gateway_config = workdir / "gateway.yaml"
    gateway_config.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": BENCH_MODEL,
                        "provider_model": UPSTREAM_MODEL,
                        "api_format": "openai",
                        "api_base": f"{upstream_url}/v1",
                    },
                    {
                        "model_name": BENCH_CLAUDE,
                        "provider_model": UPSTREAM_CLAUDE,
                        "api_format": "anthropic",
                        "api_base": f"{upstream_url}/v1",
                    },
                    {
                        "model_name": BENCH_RESPONSES,
                        "provider_model": UPSTREAM_MODEL,
                        "api_format": "openai",
                        "api_base": f"{upstream_url}/v1",
                        "responses_api": True,
                    },
                ]
            }
        )
    )
    litellm_config = workdir / "litellm.yaml"
    litellm_config.write_text(
        json.dumps(
            {
                "model_list": [
                    {
                        "model_name": BENCH_MODEL,
                        "litellm_params": {
                            "model": f"openai/{UPSTREAM_MODEL}",
                            "api_base": f"{upstream_url}/v1",
                            "api_key": "sk-bench",
                        },
                    },
                    {
                        "model_name": BENCH_CLAUDE,
                        "litellm_params": {
                            "model": f"anthropic/{UPSTREAM_CLAUDE}",
                            "api_base": upstream_url,
                            "api_key": "sk-bench",
                        },
                    },
                    {
                        "model_name": BENCH_RESPONSES,
                        "litellm_params": {
                            "model": f"openai/{UPSTREAM_MODEL}",
                            "api_base": f"{upstream_url}/v1",
                            "api_key": "sk-bench",
                        },
                    },
                ],
                "litellm_settings": {"telemetry": False},
            }
        )
    )
    return gateway_config, litellm_config


def print_comparison(
    title: str,
    base: dict[tuple[str, int], LoadFigures],
    other: dict[tuple[str, int], LoadFigures],
) -> None:
    print(f"\n{title}")
    for (case, connections), figures in other.items():
        reference = base.get((case, connections))
        if reference is None:
            continue
        added_p50_ms = figures.p50_ms - reference.p50_ms
        added_p99_ms = figures.p99_ms - reference.p99_ms
        # A server that finished no request in the run has no latency to compare.
        ratio = (
            f"{figures.requests_per_s / reference.requests_per_s:6.2f}x"
            if reference.requests_per_s
            else "   n/a (no request finished)"
        )
        print(
            f"  {case:<16} c={connections:<3} added p50 {added_p50_ms:+8.3f} ms"
            f"  added p99 {added_p99_ms:+8.3f} ms  throughput {ratio}"
        )


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def targets_report(
    gateway: dict[tuple[str, int], LoadFigures],
    direct: dict[tuple[str, int], LoadFigures],
    litellm: dict[tuple[str, int], LoadFigures],
    rss: Rss,
    ready_s: float,
) -> None:
    print("\ntargets (one worker, metered)")
    for case in ("chat plain", "chat stream"):
        if (case, 32) in litellm:
            ratio = gateway[(case, 32)].requests_per_s / litellm[(case, 32)].requests_per_s
            print(
                f"  {case:<12} throughput at 32 connections vs LiteLLM: {ratio:6.1f}x (>= 15x)"
                f" {verdict(ratio >= 15)}"
            )
        added_ms = gateway[(case, 1)].p50_ms - direct[(case, 1)].p50_ms
        print(
            f"  {case:<12} added p50 at 1 connection: {added_ms:.3f} ms (<= 1 ms)"
            f" {verdict(added_ms <= 1.0)}"
        )
    print(
        f"  gateway RSS after load: {rss.after_load_mb:.1f} MB (<= 150 MB)"
        f" {verdict(rss.after_load_mb <= 150)}; peak {rss.peak_mb:.1f} MB, while the"
        " tokenizers' rank tables are built at start-up"
    )
    print(f"  gateway start to ready: {ready_s:.2f} s (<= 2 s) {verdict(ready_s <= 2)}")


def route_exists(base_url: str, case: Case, headers: dict[str, str]) -> bool:
    body = json.dumps({**case.body, "stream": False}).encode()
    all_headers = {"content-type": "application/json", "anthropic-version": "2023-06-01", **headers}
    return http_status(base_url + case.path, method="POST", body=body, headers=all_headers) != 404


def run_gateway(
    args: argparse.Namespace, workdir: Path, env: dict[str, str], cases: list[Case]
) -> tuple[dict[tuple[str, int], LoadFigures], float, Rss, list[Case]]:
    ledger_path = workdir / "ledger.db"
    token = seed_ledger(ledger_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway_env = {**env, "SPU_LEDGER_URL": f"sqlite:///{ledger_path}"}
    command = uvicorn_command("proxy.app:create_app", port, factory=True)
    print("\ngateway (python -m uvicorn proxy.app:create_app --factory, SQLite ledger)")
    with running(command, gateway_env, workdir / "gateway.log", f"{url}/readyz") as (
        process,
        ready_s,
    ):
        idle_mb, _ = rss_mb(process.pid)
        print(f"  start to /readyz 200: {ready_s:.2f} s; RSS when ready: {idle_mb:.1f} MB")
        target = Target("gateway", url, {"Authorization": f"Bearer {token}"}, process.pid)
        served = [case for case in cases if route_exists(url, case, target.headers)]
        for case in cases:
            if case not in served:
                print(f"  skipped {case.name}: the gateway answers 404 on {case.path}")
        results = measure(target, served, args, workdir)
        current_mb, peak_mb = rss_mb(process.pid)
        print(f"  RSS after load: {current_mb:.1f} MB (peak {peak_mb:.1f} MB)")
    records, open_holds = ledger_totals(ledger_path)
    print(f"  ledger after shutdown: {records} usage records, {open_holds} open holds")
    return results, ready_s, Rss(current_mb, peak_mb), served


def run_litellm(
    args: argparse.Namespace, workdir: Path, env: dict[str, str], config: Path, cases: list[Case]
) -> dict[tuple[str, int], LoadFigures]:
    executable = ensure_litellm()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    litellm_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    master_key = f"sk-{secrets.token_hex(32)}"
    litellm_env |= {
        "LITELLM_LOG": "ERROR",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_MASTER_KEY": master_key,
    }
    command = [str(executable), "--config", str(config), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--num_workers", "1"]
    print("\nLiteLLM proxy (no database, one worker)")
    with running(command, litellm_env, workdir / "litellm.log", f"{url}/health/liveliness") as (
        process,
        ready_s,
    ):
        idle_mb, _ = rss_mb(process.pid)
        print(f"  start to ready: {ready_s:.2f} s; RSS when ready: {idle_mb:.1f} MB")
        target = Target("litellm", url, {"Authorization": f"Bearer {master_key}"}, process.pid)
        results = measure(target, cases, args, workdir)
        current_mb, peak_mb = rss_mb(process.pid)
        print(f"  RSS after load: {current_mb:.1f} MB (peak {peak_mb:.1f} MB)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run")
    parser.add_argument("--skip-litellm", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")

    with tempfile.TemporaryDirectory(prefix="spu-proxy-bench-") as tmp:
        workdir = Path(tmp)
        upstream_port = free_port()
        upstream_url = f"http://127.0.0.1:{upstream_port}"
        gateway_config, litellm_config = write_configs(workdir, upstream_url)
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "SPU_CONFIG_FILE": str(gateway_config),
        }
        command = uvicorn_command("tests.fakes.upstream:FakeUpstream", upstream_port, factory=True)
        with running(command, env, workdir / "upstream.log", f"{upstream_url}/healthz") as (
            upstream,
            _,
        ):
            print(
                f"fake upstream at {upstream_url}; load from wrk, {args.duration} s per run"
                f" after {args.warmup} s of warm-up; {os.cpu_count()} cores,"
                f" load average at start {os.getloadavg()[0]:.2f}"
            )
            direct_target = Target("upstream", upstream_url, {}, upstream.pid)
            direct = measure(direct_target, list(CASES), args, workdir, True)
            gateway, ready_s, rss, served = run_gateway(args, workdir, env, list(CASES))
            litellm: dict[tuple[str, int], LoadFigures] = {}
            if not args.skip_litellm:
                litellm = run_litellm(args, workdir, env, litellm_config, served)
        print_comparison("gateway vs direct upstream", direct, gateway)
        if litellm:
            print_comparison("LiteLLM vs direct upstream", direct, litellm)
            print_comparison(
                "gateway vs LiteLLM (throughput ratio = gateway / LiteLLM)", litellm, gateway
            )
        targets_report(gateway, direct, litellm, rss, ready_s)
        print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
