"""Run the real Codex and Claude Code CLIs against a gateway: bounded, isolated, offline.

The CLIs are the pinned ones ``scripts/test.sh`` installs into
``tests/agents/node_modules``. Each run gets its own home, config directory and
working directory under the test's temporary directory, and an environment
holding only what the CLI needs: ``PATH``, the home and config directories, the
gateway's address and the org token, and the switches that turn off
everything it would otherwise fetch (telemetry, update checks, plugin and
marketplace syncs), so that a run talks to the gateway and nothing else. A run
that outlives ``CLI_TIMEOUT_S`` is killed and reported as such.

Codex is configured the way the README tells users to: a custom provider in
``$CODEX_HOME/config.toml`` with ``base_url`` the gateway's ``/v1``,
``env_key`` naming the variable that holds the org token and
``wire_api = "responses"``. Retries are off, so that every model call the test
sees metered is one Codex made once.

A test module uses the ``codex`` and ``claude`` fixtures by importing them
(``from tests.e2e.agent_clis import claude, codex``), or calls ``run_codex`` /
``run_claude`` itself.
"""

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

AGENTS_BIN = Path(__file__).resolve().parents[1] / "agents" / "node_modules" / ".bin"
CODEX = AGENTS_BIN / "codex"
CLAUDE = AGENTS_BIN / "claude"
CLI_TIMEOUT_S = 90.0
"""Far above a run's ~1 s on an idle machine; a hung CLI fails the test instead of CI."""
CODEX_TOKEN_ENV = "SPU_GATEWAY_TOKEN"
CODEX_PROVIDER = "spu"


@dataclass(frozen=True, slots=True)
class CliRun:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    elapsed_s: float

    def json(self) -> Any:
        return orjson.loads(self.stdout)

    def describe(self) -> str:
        """For assertion messages: what ran, how it ended, and what it printed."""
        return (
            f"{' '.join(self.command)} -> {self.returncode} in {self.elapsed_s:.1f} s\n"
            f"stdout:\n{self.stdout[-4000:]}\nstderr:\n{self.stderr[-4000:]}"
        )


def _binary(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: scripts/test.sh installs the pinned CLIs with "
            "`npm ci --prefix tests/agents`"
        )
    return path


def _base_env(home: Path) -> dict[str, str]:
    """``PATH`` with node (Codex's launcher is a node script) and the system tools only."""
    node = shutil.which("node")
    folders = [str(Path(node).parent)] if node else []
    return {
        "PATH": os.pathsep.join([*folders, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(home),
    }


async def run_cli(
    command: list[str], *, env: Mapping[str, str], cwd: Path, timeout_s: float = CLI_TIMEOUT_S
) -> CliRun:
    """Run one CLI to its end (stdin closed); kill it if it outlives ``timeout_s``."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        stdout, stderr = await process.communicate()
        stderr += f"\n[killed after {timeout_s} s]".encode()
    return CliRun(
        command=command,
        returncode=process.returncode if process.returncode is not None else -1,
        stdout=stdout.decode(errors="replace"),
        stderr=stderr.decode(errors="replace"),
        elapsed_s=time.monotonic() - started,
    )


def codex_config(*, base_url: str, model: str) -> str:
    """The ``config.toml`` the README documents, plus the switches a test run needs."""
    return f"""\
model = "{model}"
model_provider = "{CODEX_PROVIDER}"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false

[model_providers.{CODEX_PROVIDER}]
name = "SPU Gateway"
base_url = "{base_url}/v1"
env_key = "{CODEX_TOKEN_ENV}"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
"""


async def run_codex(root: Path, *, base_url: str, token: str, model: str, prompt: str) -> CliRun:
    """``codex exec --skip-git-repo-check PROMPT``; its stdout is the final message alone."""
    home, codex_home, work = root / "home", root / "codex-home", root / "work"
    for folder in (home, codex_home, work):
        folder.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(codex_config(base_url=base_url, model=model))
    env = {**_base_env(home), "CODEX_HOME": str(codex_home), CODEX_TOKEN_ENV: token}
    command = [str(_binary(CODEX)), "exec", "--skip-git-repo-check", prompt]
    return await run_cli(command, env=env, cwd=work)


async def run_claude(root: Path, *, base_url: str, token: str, model: str, prompt: str) -> CliRun:
    """``claude -p PROMPT --output-format json``, the default request (no ``--bare``)."""
    home, config, work = root / "home", root / "claude-config", root / "work"
    for folder in (home, config, work):
        folder.mkdir(parents=True, exist_ok=True)
    env = {
        **_base_env(home),
        "CLAUDE_CONFIG_DIR": str(config),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": token,
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": model,
        # Telemetry, error reports, auto-update and every other optional request off.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    command = [str(_binary(CLAUDE)), "-p", prompt, "--output-format", "json"]
    return await run_cli(command, env=env, cwd=work)


CliRunner = Callable[..., Coroutine[Any, Any, CliRun]]


@pytest.fixture
def codex(tmp_path: Path) -> CliRunner:
    """``await codex(base_url=…, token=…, model=…, prompt=…)`` in the test's own directories."""

    async def run(**options: str) -> CliRun:
        return await run_codex(tmp_path / "codex", **options)

    return run


@pytest.fixture
def claude(tmp_path: Path) -> CliRunner:
    """``await claude(base_url=…, token=…, model=…, prompt=…)`` in the test's own directories."""

    async def run(**options: str) -> CliRun:
        return await run_claude(tmp_path / "claude", **options)

    return run
