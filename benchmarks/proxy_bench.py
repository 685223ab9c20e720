"""The metering gateway against a fast fake upstream, and the LiteLLM proxy beside it, in one run.

What it starts, each as its own process on 127.0.0.1, one worker each:

- the fake upstream (``tests.fakes.upstream``, answering with 20 streamed
  pieces) under uvicorn (uvloop + httptools);
- the gateway, ``python -m uvicorn proxy.app:create_app --factory``, metered
  for real: a fresh SQLite ledger (durable: ``synchronous=FULL``) in a
  temporary folder, a seeded org with plenty of credit and a token, a
  ``model_list`` (via ``SPU_CONFIG_FILE``) routing ``bench-model`` (OpenAI
  format, Chat Completions), ``bench-responses`` (OpenAI format with
  ``responses_api``: the Responses API relayed as it is) and ``bench-claude``
  (Anthropic format) to the fake upstream;
- the LiteLLM proxy (``litellm[proxy]`` in its own virtualenv, created on first
  use under ``~/.cache/spu-gateway-bench``; no database, one worker, same
  upstream). ``--skip-litellm`` leaves it out;
- the stack floor (``benchmarks.stack_floor``): a chat proxy on the gateway's
  own stack that meters nothing, for plain and streamed chat and the 1 and
  512 KB prompts, so that the gateway's figures can be read against what its
  stack alone costs.

On a machine of two cores or more the proxy under test (gateway, then
LiteLLM) is pinned to the last core, and the fake upstream and the load
generator to the first, so neither takes CPU from what is measured.

Load comes from wrk (``apt-get install wrk``), a C load generator, through a
Lua script that reads the POST body from a file and prints exact latency
percentiles. The cases:

- plain chat with a short prompt, streamed chat (20 chunks) and streamed
  ``/v1/responses`` twice (relayed to an upstream that serves it, ``responses
  stream``, and translated to Chat Completions, ``responses chat``; LiteLLM
  relays both the same way), at 1 and 32 connections: throughput, latency and
  CPU per request;
- plain chat with 1, 16, 128 and 512 KB prompts at 1 connection;
- a Claude-Code-shaped streamed ``/v1/messages`` of about 150 KB (a system
  prompt in two cached blocks, 24 tools, a long history of tool calls and
  results) to the Anthropic-format upstream;
- short plain calls at 1 connection while 4 connections loop 512 KB calls.

Before the cases it makes one-row durable SQLite commits on the ledger's disk
for a few seconds, then ones that are not (``commit_times``): each metered call
waits for one durable commit before it answers, which the c=1 target is read
against, and the slowest of them show how long the disk can stall one. Then it
runs the ledger alone (``ledger_alone``: hold and settle pairs, pinned to the
proxy's core): one pair at a time, whose p50 every call at one connection
waits for, and 32 in flight, whose CPU per pair every call at 32 connections
spends; the c=1 and throughput targets are printed beside them.

A case is skipped with a note when the gateway answers 404 on its route.
Added latency is the proxy's percentile minus the direct upstream's. wrk
corrects its percentiles for coordinated omission (``stats_correct`` in its
``stats.c``): a response that took T, where a connection's responses came
every I on average, also counts at T - I, T - 2I, ... So one stall of the
disk under a durable commit, 100 ms among calls of 1.5 ms, counts as some 65
slow calls: a few such stalls set the gateway's p95 and p99, which a server
that writes nothing (the upstream, the stack floor) never shows. CPU per
request is each server's user + system time (all its threads and children,
from ``/proc``) over a measured run, divided by the requests wrk completed:
other load on the machine disturbs it far less than it disturbs latency.

Run: ``python benchmarks/proxy_bench.py`` (``--help`` for durations and options).
"""

import argparse
import dataclasses
import itertools
import json
import os
import random
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import ledger_bench

REPO = Path(__file__).resolve().parent.parent
LITELLM_VENV = Path.home() / ".cache" / "spu-gateway-bench" / "litellm-venv"
LITELLM_VERSION = "litellm[proxy]"
READY_TIMEOUT_S = 120.0
READY_POLL_S = 0.005
BENCH_MODEL = "bench-model"
BENCH_CLAUDE = "bench-claude"
BENCH_RESPONSES = "bench-responses"
UPSTREAM_MODEL = "gpt-4o-mini"
UPSTREAM_CLAUDE = "claude-haiku-4-5"
SHORT_PROMPT = "Hello! Please answer in one short sentence."
STREAM_REPLY = " ".join(f"word{index}" for index in range(20))
"""The fake's answer: 20 pieces, so a stream carries 20 content chunks."""
MAX_TOKENS = 64
SEED_SPUS = 10_000_000
PROMPT_SIZES_KB = (1, 16, 128, 512)
BIG_LOOPERS = 4
BESIDE_HEAD_START_S = 1
WRK_TIMEOUT_S = 10
"""wrk's latency record ends at its timeout (2 s unless told): a slower response still counts
as completed, but as an error, outside every percentile. LiteLLM's streamed calls at 32
connections took about 3 s each on a slow machine, and its p50 was printed as 0. Its
record costs wrk 8 bytes per microsecond of it, 80 MB here."""
WORDS = (
    "the of and to in is you that it he was for on are as with his they at be this have from or"
    " one had by word but not what all were we when your can said there use an each which she do"
    " how their if will up other about out many then them these so some her would make like him"
    " into time has look two more write go see number no way could people my than first water"
).split()

WRK_SCRIPT = textwrap.dedent(
    """\
    local file = assert(io.open({body_path}, "rb"))
    wrk.method = "POST"
    wrk.body = file:read("*a")
    file:close()
    {headers}
    done = function(summary, latency, requests)
      local errors = summary.errors.connect + summary.errors.read + summary.errors.write
        + summary.errors.status + summary.errors.timeout
      io.write(string.format(
        "WRK_JSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"errors\\": %d,"
        .. " \\"p50_us\\": %d, \\"p95_us\\": %d, \\"p99_us\\": %d}}\\n",
        summary.requests, summary.duration, errors, latency:percentile(50),
        latency:percentile(95), latency:percentile(99)))
    end
    """
)


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    path: str
    body: dict[str, Any]
    direct_path: str
    direct_body: dict[str, Any]
    connections: tuple[int, ...] = (1,)


@dataclass(frozen=True, slots=True)
class Figures:
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    cpu_us_per_request: float | None = None
    beside_requests_per_s: float | None = None
    """The calls beside it (``wrk(beside=...)``): how far they still got, in requests/s."""


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    base_url: str
    headers: dict[str, str]
    pid: int | None = None
    """The process whose CPU time is measured (None: not measured)."""


@dataclass(slots=True)
class Run:
    """What one target measured: figures by (case, connections), and its process figures."""

    figures: dict[tuple[str, int], Figures] = field(default_factory=dict)
    ready_s: float = 0.0
    rss_after_load_mb: float = 0.0
    rss_peak_mb: float = 0.0


def prose(size: int, rng: random.Random) -> str:
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:size]


def source_code(size: int, rng: random.Random) -> str:
    lines: list[str] = []
    length = 0
    while length < size:
        name = f"{rng.choice(WORDS)}_{rng.randrange(100)}"
        line = (
            f"    def {name}(self, value: int) -> int:\n"
            f"        return value * {rng.randrange(1, 10)}  # {prose(40, rng)}\n"
        )
        lines.append(line)
        length += len(line)
    return "".join(lines)


def chat_body(model: str, *, stream: bool, prompt: str = SHORT_PROMPT) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": MAX_TOKENS,
        "stream": stream,
    }
    return body


def responses_body(model: str) -> dict[str, Any]:
    return {"model": model, "input": SHORT_PROMPT, "max_output_tokens": MAX_TOKENS, "stream": True}


def claude_code_body(model: str, size: int = 150_000) -> dict[str, Any]:
    """A streamed Messages request shaped like a Claude Code turn: cached system blocks, 24 tools
    with long descriptions and schemas, then tool calls and their results until ``size`` bytes."""
    rng = random.Random(13)
    system = [
        {
            "type": "text",
            "text": "You are Claude Code, Anthropic's official CLI for Claude.",
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "text", "text": prose(14_000, rng), "cache_control": {"type": "ephemeral"}},
    ]
    tools = [
        {
            "name": f"Tool{index}",
            "description": prose(1_800, rng),
            "input_schema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {
                    f"param{number}": {
                        "type": rng.choice(["string", "number", "boolean"]),
                        "description": prose(80, rng),
                    }
                    for number in range(5)
                },
                "required": ["param0"],
                "additionalProperties": False,
            },
        }
        for index in range(24)
    ]
    messages: list[dict[str, Any]] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"<system-reminder>{prose(600, rng)}</system-reminder>"},
                {"type": "text", "text": "Fix the failing parser test."},
            ],
        }
    ]
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": 32_000,
        "stream": True,
        "system": system,
        "tools": tools,
        "messages": messages,
        "metadata": {"user_id": "user_bench_account__session_0"},
        "thinking": {"type": "enabled", "budget_tokens": 4_000},
    }
    for turn in itertools.count(1):
        if len(json.dumps(body)) >= size:
            break
        tool_id = f"toolu_{turn:04d}"
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": prose(120, rng)},
                    {
                        "type": "tool_use",
                        "id": tool_id,
                        "name": "Tool1",
                        "input": {"param0": f"/src/module_{turn}.py"},
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": tool_id,
                        "content": source_code(1_500, rng),
                    }
                ],
            }
        )
    messages.append({"role": "user", "content": "Continue."})
    return body


def prompt_of(size_kb: int) -> str:
    return prose(size_kb * 1024, random.Random(size_kb))


def plain_chat(name: str, prompt: str = SHORT_PROMPT, connections: tuple[int, ...] = (1,)) -> Case:
    return Case(
        name,
        "/v1/chat/completions",
        chat_body(BENCH_MODEL, stream=False, prompt=prompt),
        "/v1/chat/completions",
        chat_body(UPSTREAM_MODEL, stream=False, prompt=prompt),
        connections,
    )


CHAT_PLAIN = plain_chat("chat plain", connections=(1, 32))
CHAT_STREAM = Case(
    "chat stream",
    "/v1/chat/completions",
    chat_body(BENCH_MODEL, stream=True),
    "/v1/chat/completions",
    {**chat_body(UPSTREAM_MODEL, stream=True), "stream_options": {"include_usage": True}},
    (1, 32),
)
RESPONSES_STREAM = Case(
    "responses stream",
    "/v1/responses",
    responses_body(BENCH_RESPONSES),
    "/v1/responses",
    responses_body(UPSTREAM_MODEL),
    (1, 32),
)
RESPONSES_CHAT = Case(
    "responses chat",
    "/v1/responses",
    responses_body(BENCH_MODEL),
    "/v1/chat/completions",
    CHAT_STREAM.direct_body,
    (1, 32),
)
SIZED = {size: plain_chat(f"chat {size} KB", prompt_of(size)) for size in PROMPT_SIZES_KB}
CLAUDE_CODE = Case(
    "claude code turn",
    "/v1/messages",
    claude_code_body(BENCH_CLAUDE),
    "/v1/messages",
    claude_code_body(UPSTREAM_CLAUDE),
)
CASES = (CHAT_PLAIN, CHAT_STREAM, RESPONSES_STREAM, RESPONSES_CHAT, *SIZED.values(), CLAUDE_CODE)
# The 1 and 512 KB prompts too: what the stack itself spends per byte is the floor
# under the 512 KB target.
FLOOR_CASES = (CHAT_PLAIN, CHAT_STREAM, SIZED[1], SIZED[512])
BESIDE = "small beside 4x512 KB"
RATIO_TARGETS = {CHAT_PLAIN.name: 30, CHAT_STREAM.name: 40}
"""The least throughput at 32 connections, as a multiple of LiteLLM's, by case."""


def bench_upstream() -> Any:
    """The fake upstream as the benchmark runs it: a 20-piece answer, one request remembered."""
    from collections import deque

    from tests.fakes.upstream import FakeUpstream, Knobs

    return FakeUpstream(knobs=Knobs(reply=STREAM_REPLY), requests=deque(maxlen=1))


_SCRIPT_NUMBERS = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cores() -> tuple[str | None, str | None]:
    """(the proxy's core, the upstream's and wrk's), or no pinning on a single core."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2 or shutil.which("taskset") is None:
        return None, None
    return str(available[-1]), str(available[0])


PROXY_CORE, LOAD_CORE = cores()


def pinned(command: list[str], core: str | None) -> list[str]:
    return command if core is None else ["taskset", "-c", core, *command]


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


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) and its children."""
    ticks = 0
    for member in _tree(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


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


def wrk_command(
    target: Target, case: Case, connections: int, duration_s: int, workdir: Path, direct: bool
) -> list[str]:
    number = next(_SCRIPT_NUMBERS)
    body_path = workdir / f"body-{number}.json"
    body_path.write_text(json.dumps(case.direct_body if direct else case.body))
    headers = {"Content-Type": "application/json", **target.headers}
    if case.path == "/v1/messages":
        headers["anthropic-version"] = "2023-06-01"
    header_lines = "\n".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()
    )
    script = workdir / f"wrk-{number}.lua"
    script.write_text(WRK_SCRIPT.format(body_path=json.dumps(str(body_path)), headers=header_lines))
    threads = min(connections, 2)
    url = target.base_url + (case.direct_path if direct else case.path)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s"]
    command += [f"--timeout={WRK_TIMEOUT_S}s", "-s", str(script), url]
    return pinned(command, LOAD_CORE)


def wrk_figures(output: str, cpu_used_s: float | None) -> Figures:
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    figures = json.loads(line.removeprefix("WRK_JSON "))
    requests = max(figures["requests"], 1)
    return Figures(
        requests_per_s=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        errors=figures["errors"],
        cpu_us_per_request=None if cpu_used_s is None else cpu_used_s / requests * 1e6,
    )


def wrk(
    target: Target,
    case: Case,
    connections: int,
    duration_s: int,
    workdir: Path,
    direct: bool,
    beside: list[str] | None = None,
) -> Figures:
    """One wrk run, with the target's CPU time measured around it; ``beside`` is a second wrk
    command, started a second earlier and running throughout (only its throughput is kept)."""
    command = wrk_command(target, case, connections, duration_s, workdir, direct)
    background = None
    if beside is not None:
        background = subprocess.Popen(beside, stdout=subprocess.PIPE, text=True)
        time.sleep(BESIDE_HEAD_START_S)
    before = None if target.pid is None else cpu_s(target.pid)
    try:
        output = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=duration_s + 60
        ).stdout
    finally:
        used = None if target.pid is None or before is None else cpu_s(target.pid) - before
        beside_output = (
            None if background is None else background.communicate(timeout=duration_s + 60)[0]
        )
    figures = wrk_figures(output, used)
    if beside_output is None:
        return figures
    beside_rate = wrk_figures(beside_output, None).requests_per_s
    return dataclasses.replace(figures, beside_requests_per_s=beside_rate)


def report(target: Target, case: str, connections: int, figures: Figures) -> None:
    cpu = (
        ""
        if figures.cpu_us_per_request is None
        else f"  CPU {figures.cpu_us_per_request:7.0f} us/req"
    )
    beside = (
        ""
        if figures.beside_requests_per_s is None
        else f"  (the calls beside: {figures.beside_requests_per_s:.1f} req/s)"
    )
    print(
        f"  {target.name:<8} {case:<22} c={connections:<3} {figures.requests_per_s:8.1f} req/s"
        f"  p50 {figures.p50_ms:8.3f}  p95 {figures.p95_ms:8.3f}  p99 {figures.p99_ms:8.3f} ms"
        f"  errors {figures.errors}{cpu}  load {os.getloadavg()[0]:.2f}{beside}",
        flush=True,
    )


def measure(
    target: Target,
    cases: list[Case],
    args: argparse.Namespace,
    workdir: Path,
    direct: bool,
    beside: bool = True,
) -> dict[tuple[str, int], Figures]:
    results: dict[tuple[str, int], Figures] = {}
    for case in cases:
        for connections in case.connections:
            wrk(target, case, connections, args.warmup, workdir, direct)
            figures = wrk(target, case, connections, args.duration, workdir, direct)
            results[(case.name, connections)] = figures
            report(target, case.name, connections, figures)
    if not beside:
        return results
    big = wrk_command(
        target, SIZED[512], BIG_LOOPERS, args.duration + 2 * BESIDE_HEAD_START_S, workdir, direct
    )
    # The CPU time is the big calls' too here: not a figure per small call.
    unmetered = Target(target.name, target.base_url, target.headers)
    figures = wrk(unmetered, CHAT_PLAIN, 1, args.duration, workdir, direct, beside=big)
    results[(BESIDE, 1)] = figures
    report(target, BESIDE, 1, figures)
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


def route_exists(base_url: str, case: Case, headers: dict[str, str]) -> bool:
    body = json.dumps({**case.body, "stream": False}).encode()
    all_headers = {"content-type": "application/json", "anthropic-version": "2023-06-01", **headers}
    return http_status(base_url + case.path, method="POST", body=body, headers=all_headers) != 404


def run_gateway(
    args: argparse.Namespace, workdir: Path, env: dict[str, str], cases: list[Case]
) -> Run:
    ledger_path = workdir / "ledger.db"
    token = seed_ledger(ledger_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    gateway_env = {**env, "SPU_LEDGER_URL": f"sqlite:///{ledger_path}"}
    command = pinned(uvicorn_command("proxy.app:create_app", port, factory=True), PROXY_CORE)
    print(f"\ngateway ({' '.join(command[command.index('-m') :])}, durable SQLite ledger)")
    run = Run()
    with running(command, gateway_env, workdir / "gateway.log", f"{url}/readyz") as (
        process,
        ready_s,
    ):
        run.ready_s = ready_s
        idle_mb, _ = rss_mb(process.pid)
        print(f"  start to /readyz 200: {run.ready_s:.2f} s; RSS when ready: {idle_mb:.1f} MB")
        target = Target("gateway", url, {"Authorization": f"Bearer {token}"}, process.pid)
        served = [case for case in cases if route_exists(url, case, target.headers)]
        for case in cases:
            if case not in served:
                print(f"  skipped {case.name}: the gateway answers 404 on {case.path}")
        run.figures = measure(target, served, args, workdir, direct=False)
        run.rss_after_load_mb, run.rss_peak_mb = rss_mb(process.pid)
        print(f"  RSS after load: {run.rss_after_load_mb:.1f} MB (peak {run.rss_peak_mb:.1f} MB)")
    records, open_holds = ledger_totals(ledger_path)
    print(f"  ledger after shutdown: {records} usage records, {open_holds} open holds")
    return run


def run_litellm(
    args: argparse.Namespace, workdir: Path, env: dict[str, str], config: Path, cases: list[Case]
) -> Run:
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
    command = pinned([*command, "--port", str(port), "--num_workers", "1"], PROXY_CORE)
    print("\nLiteLLM proxy (no database, one worker)")
    run = Run()
    with running(command, litellm_env, workdir / "litellm.log", f"{url}/health/liveliness") as (
        process,
        ready_s,
    ):
        run.ready_s = ready_s
        idle_mb, _ = rss_mb(process.pid)
        print(f"  start to ready: {run.ready_s:.2f} s; RSS when ready: {idle_mb:.1f} MB")
        target = Target("litellm", url, {"Authorization": f"Bearer {master_key}"}, process.pid)
        run.figures = measure(target, cases, args, workdir, direct=False)
        run.rss_after_load_mb, run.rss_peak_mb = rss_mb(process.pid)
        print(f"  RSS after load: {run.rss_after_load_mb:.1f} MB (peak {run.rss_peak_mb:.1f} MB)")
    return run


def run_floor(
    args: argparse.Namespace, workdir: Path, env: dict[str, str], upstream_url: str
) -> Run:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = pinned(
        uvicorn_command("benchmarks.stack_floor:create_app", port, factory=True), PROXY_CORE
    )
    print("\nstack floor (benchmarks.stack_floor: the gateway's stack, nothing metered)")
    run = Run()
    floor_env = {**env, "FLOOR_UPSTREAM": upstream_url}
    with running(command, floor_env, workdir / "floor.log", f"{url}/docs") as (process, ready_s):
        run.ready_s = ready_s
        target = Target("floor", url, {}, process.pid)
        run.figures = measure(target, list(FLOOR_CASES), args, workdir, direct=False, beside=False)
    return run


def cell(value: float | None, pattern: str) -> str:
    return "-" if value is None else format(value, pattern)


def ratio(figures: Figures, other: Figures | None) -> float | None:
    """Throughput over ``other``'s; None when there is no other or it finished nothing."""
    if other is None or not other.requests_per_s:
        return None
    return figures.requests_per_s / other.requests_per_s


def print_table(direct: dict[tuple[str, int], Figures], gateway: Run, litellm: Run | None) -> None:
    print(
        "\n| case | c | direct p50 ms | gateway adds p50 ms | LiteLLM adds p50 ms"
        " | gateway req/s | LiteLLM req/s | ratio | gateway CPU us/req | LiteLLM CPU us/req |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key, figures in gateway.figures.items():
        base = direct.get(key)
        other = litellm.figures.get(key) if litellm else None
        columns = [
            key[0],
            str(key[1]),
            cell(None if base is None else base.p50_ms, ".3f"),
            cell(None if base is None else figures.p50_ms - base.p50_ms, "+.3f"),
            cell(None if base is None or other is None else other.p50_ms - base.p50_ms, "+.3f"),
            f"{figures.requests_per_s:.1f}",
            cell(None if other is None else other.requests_per_s, ".1f"),
            # A server that finished no request in the run has no ratio.
            cell(ratio(figures, other), ".1f"),
            cell(figures.cpu_us_per_request, ".0f"),
            cell(None if other is None else other.cpu_us_per_request, ".0f"),
        ]
        print("| " + " | ".join(columns) + " |")


def print_floor(
    direct: dict[tuple[str, int], Figures], gateway: Run, floor: Run, litellm: Run | None
) -> None:
    """The gateway beside its stack's floor, and the CPU a request may take for a ratio target."""
    print(
        "\n| case | c | floor adds p50 ms | gateway adds p50 ms | floor req/s | gateway req/s"
        " | floor CPU us/req | gateway CPU us/req | CPU/req that the ratio target allows |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for key, figures in floor.figures.items():
        mine, base = gateway.figures[key], direct[key]
        allowed = None
        least = RATIO_TARGETS.get(key[0])
        other = None if litellm is None else litellm.figures.get(key)
        if key[1] == 32 and least is not None and other is not None and other.requests_per_s:
            # One core: a request may take at most 1 s / (least x LiteLLM's req/s) of it.
            allowed = 1e6 / (least * other.requests_per_s)
        columns = [
            key[0],
            str(key[1]),
            f"{figures.p50_ms - base.p50_ms:+.3f}",
            f"{mine.p50_ms - base.p50_ms:+.3f}",
            f"{figures.requests_per_s:.1f}",
            f"{mine.requests_per_s:.1f}",
            cell(figures.cpu_us_per_request, ".0f"),
            cell(mine.cpu_us_per_request, ".0f"),
            cell(allowed, ".0f"),
        ]
        print("| " + " | ".join(columns) + " |")


@dataclass(frozen=True, slots=True)
class CommitTimes:
    """One-row commits made back to back for a while: their p50, their slowest, and how many
    took longer than ``STALL_MS``."""

    p50_ms: float
    max_ms: float
    stalls: int
    commits: int


STALL_MS = 10.0
COMMIT_SECONDS = 3.0


def commit_times(folder: Path, *, durable: bool, seconds: float = COMMIT_SECONDS) -> CommitTimes:
    """One-row SQLite commits in WAL mode on ``folder``'s disk for ``seconds``, durable
    (``synchronous=FULL``: the ledger's settlements) or not (``NORMAL``: its holds).

    Every metered call waits for one durable commit before its answer, so at one
    connection the gateway's added latency cannot fall below the stack floor's plus
    the difference of the two p50s; and a call whose commit the disk stalls waits that
    long, which wrk's corrected percentiles count many times (see the module's doc).
    """
    path = folder / f"commit-{'full' if durable else 'normal'}.db"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
        connection.execute("CREATE TABLE t (n INTEGER)")
        took_ms: list[float] = []
        ends = time.perf_counter() + seconds
        while (started := time.perf_counter()) < ends:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO t VALUES (?)", (len(took_ms),))
            connection.execute("COMMIT")
            took_ms.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()
    took_ms.sort()
    return CommitTimes(
        p50_ms=took_ms[len(took_ms) // 2],
        max_ms=took_ms[-1],
        stalls=sum(ms > STALL_MS for ms in took_ms),
        commits=len(took_ms),
    )


LEDGER_PAIRS_ALONE = 3_000
LEDGER_PAIRS_AT_32 = 20_000


@dataclass(frozen=True, slots=True)
class LedgerAlone:
    """The gateway's SQLite ledger by itself, pinned to the proxy's core, on the ledger's disk:
    hold then settle of one request (the two writes of every metered call), durable as the
    gateway commits them, with no HTTP around them (``ledger_bench``)."""

    alone: ledger_bench.PairFigures
    """One pair at a time: its p50 is in every call's latency at one connection."""
    at_32: ledger_bench.PairFigures
    """32 in flight, as at 32 connections: its CPU per pair is in every call's CPU there."""


def ledger_alone(folder: Path) -> LedgerAlone:
    backend = ledger_bench.Backend(folder, None)
    core = None if PROXY_CORE is None else int(PROXY_CORE)
    return LedgerAlone(
        alone=ledger_bench.pair_figures(backend, 1, LEDGER_PAIRS_ALONE, 1, 1, core),
        at_32=ledger_bench.pair_figures(backend, 1, LEDGER_PAIRS_AT_32, 32, 1, core),
    )


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def print_targets(
    direct: dict[tuple[str, int], Figures],
    gateway: Run,
    litellm: Run | None,
    floor: Run,
    durable: CommitTimes,
    not_durable: CommitTimes,
    ledger: LedgerAlone,
) -> None:
    def added(case: str, connections: int = 1, run: Run = gateway) -> float:
        return run.figures[(case, connections)].p50_ms - direct[(case, connections)].p50_ms

    rows: list[tuple[str, str, str, bool]] = []
    added_1k, added_512k = added(SIZED[1].name), added(SIZED[512].name)
    floor_1k, floor_512k = added(SIZED[1].name, run=floor), added(SIZED[512].name, run=floor)
    rows.append(
        (
            "added p50 at 512 KB",
            f"{added_512k:+.3f} ms (1 KB: {added_1k:+.3f} ms; the stack floor adds"
            f" {floor_512k:+.3f} ms at 512 KB, {floor_1k:+.3f} ms at 1 KB)",
            "<= 2 ms and <= 1.5x the 1 KB figure",
            added_512k <= 2.0 and added_512k <= 1.5 * max(added_1k, 0.0),
        )
    )
    alone = gateway.figures[(CHAT_PLAIN.name, 1)].p95_ms
    beside = gateway.figures[(BESIDE, 1)].p95_ms
    big_rate = gateway.figures[(BESIDE, 1)].beside_requests_per_s or 0.0
    rows.append(
        (
            "small calls beside 4 big, p95",
            f"{beside:.3f} ms = {beside / alone:.2f}x alone ({alone:.3f} ms);"
            f" the big calls meanwhile {big_rate:.0f} req/s; the disk's slowest durable"
            f" commit {durable.max_ms:.1f} ms",
            "<= 1.5x alone",
            beside <= 1.5 * alone,
        )
    )
    for case, limit in ((CHAT_PLAIN.name, 500), (CHAT_STREAM.name, 800)):
        cpu = gateway.figures[(case, 32)].cpu_us_per_request or 0.0
        rows.append(
            (f"CPU per {case} request (c=32)", f"{cpu:.0f} us", f"<= {limit} us", cpu <= limit)
        )
    if litellm is not None:
        for case, least in RATIO_TARGETS.items():
            theirs = litellm.figures[(case, 32)].requests_per_s
            ratio = gateway.figures[(case, 32)].requests_per_s / theirs
            floor_cpu = floor.figures[(case, 32)].cpu_us_per_request or 0.0
            rows.append(
                (
                    f"throughput c=32, {case}",
                    f"{ratio:.1f}x LiteLLM (the ratio leaves a request"
                    f" {1e6 / (least * theirs):.0f} us of the core; the stack floor takes"
                    f" {floor_cpu:.0f} us and the ledger alone {ledger.at_32.cpu_us_per_pair:.0f})",
                    f">= {least}x",
                    ratio >= least,
                )
            )
    plain_added = added(CHAT_PLAIN.name)
    floor_added = added(CHAT_PLAIN.name, run=floor)
    rows.append(
        (
            "added p50 at c=1, chat plain",
            f"{plain_added:+.3f} ms (the stack floor adds {floor_added:+.3f} ms; the ledger's"
            f" hold and settle alone take {ledger.alone.p50_ms:.3f} ms, its durable commit"
            f" {durable.p50_ms - not_durable.p50_ms:.3f} ms more than one that is not)",
            "<= 0.7 ms",
            plain_added <= 0.7,
        )
    )
    rows.append(
        (
            "resident memory after load",
            f"{gateway.rss_after_load_mb:.1f} MB",
            "<= 150 MB",
            gateway.rss_after_load_mb <= 150,
        )
    )
    rows.append(("start to ready", f"{gateway.ready_s:.2f} s", "<= 2 s", gateway.ready_s <= 2))
    print("\n| target | measured | aim | |")
    print("|---|---|---|---|")
    for name, measured, aim, met in rows:
        print(f"| {name} | {measured} | {aim} | {verdict(met)} |")


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
        command = uvicorn_command(
            "benchmarks.proxy_bench:bench_upstream", upstream_port, factory=True
        )
        upstream_log = workdir / "upstream.log"
        with running(pinned(command, LOAD_CORE), env, upstream_log, f"{upstream_url}/healthz") as (
            upstream_process,
            _,
        ):
            print(
                f"fake upstream at {upstream_url}; load from wrk, {args.duration} s per run after"
                f" {args.warmup} s of warm-up; {os.cpu_count()} cores, proxy on core"
                f" {PROXY_CORE}, upstream and wrk on core {LOAD_CORE};"
                f" load average at start {os.getloadavg()[0]:.2f}"
            )
            print(
                f"claude code turn: {len(json.dumps(CLAUDE_CODE.body)) / 1000:.0f} kB,"
                f" {len(CLAUDE_CODE.body['tools'])} tools,"
                f" {len(CLAUDE_CODE.body['messages'])} messages"
            )
            full = commit_times(workdir, durable=True)
            normal = commit_times(workdir, durable=False)
            print(
                f"one-row SQLite commits (WAL) on the ledger's disk, {COMMIT_SECONDS:g} s of each:"
                f" durable p50 {full.p50_ms:.3f} ms, slowest {full.max_ms:.1f} ms,"
                f" {full.stalls} of {full.commits} over {STALL_MS:g} ms;"
                f" not durable p50 {normal.p50_ms:.3f} ms, slowest {normal.max_ms:.1f} ms"
            )
            ledger = ledger_alone(workdir)
            print(
                f"the ledger alone (hold + settle, durable, pinned as the proxy is): one pair at"
                f" a time p50 {ledger.alone.p50_ms:.3f} ms, CPU {ledger.alone.cpu_us_per_pair:.0f}"
                f" us/pair; 32 in flight {ledger.at_32.pairs_per_s:,.0f} pairs/s, CPU"
                f" {ledger.at_32.cpu_us_per_pair:.0f} us/pair"
            )
            upstream = Target("upstream", upstream_url, {}, upstream_process.pid)
            direct = measure(upstream, list(CASES), args, workdir, direct=True)
            gateway = run_gateway(args, workdir, env, list(CASES))
            floor = run_floor(args, workdir, env, upstream_url)
            litellm = None
            if not args.skip_litellm:
                litellm = run_litellm(args, workdir, env, litellm_config, list(CASES))
        print_table(direct, gateway, litellm)
        print_floor(direct, gateway, floor, litellm)
        print_targets(direct, gateway, litellm, floor, full, normal, ledger)
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
