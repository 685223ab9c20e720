"""Every configuration or start-up mistake: a line or two that name it, exit 1, no traceback.

Each mistake is made for real and ``spu`` runs as the newcomer runs it (the
installed console script, in its own process, from a directory of its own):
``spu serve`` with one worker and with two, a command that opens the ledger,
and ``spu config check``. Only ``SPU_LOG_LEVEL=debug`` shows the traceback.
"""

import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from ledger.postgres.schema import SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION
from ledger.sqlite.schema import SCHEMA_VERSION
from tests.deploy.processes import free_port, gateway_environment
from tests.stores import fresh_database, needs_postgres

SPU = str(Path(sys.executable).with_name("spu"))
RUN_TIMEOUT_S = 60
MAX_STDERR_LINES = 3


@dataclass
class Mistake:
    """A broken set-up, made in a fresh directory, and the words its message must contain."""

    names: tuple[str, ...]
    settings: dict[str, str] = field(default_factory=dict)
    config: str | None = None
    """A spu.yaml to write and name with SPU_CONFIG_FILE."""
    hidden_module: str | None = None
    """A package made to look not installed (its extra missing)."""


def _run(
    tmp_path: Path, mistake: Mistake, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = gateway_environment(f"sqlite:///{tmp_path / 'data' / 'spu-ledger.db'}")
    del environment["SPU_LEDGER_URL"]  # the default, relative to the directory it runs in
    del environment["SPU_LOG_LEVEL"]
    if mistake.config is not None:
        (tmp_path / "spu.yaml").write_text(mistake.config)
        environment["SPU_CONFIG_FILE"] = "spu.yaml"
    environment.update(mistake.settings)
    environment.update(extra or {})
    command = [SPU, *args]
    if mistake.hidden_module is not None:
        hide = f"import sys; sys.modules[{mistake.hidden_module!r}] = None"
        command = [sys.executable, "-c", f"{hide}; from proxy.cli import app; app()", *args]
    return subprocess.run(
        command,
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def assert_told_clearly(result: subprocess.CompletedProcess[str], names: tuple[str, ...]) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert 1 <= len(lines) <= MAX_STDERR_LINES, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for name in names:
        assert name in result.stderr, (name, result.stderr)


def _unpriced_model() -> str:
    return "model_list:\n  - model_name: mine\n    provider_model: my-own-llm\n"


def _newer_ledger(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    with sqlite3.connect(tmp_path / "data" / "spu-ledger.db") as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")


def _not_a_database(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "spu-ledger.db").write_text("notes, not a ledger\n" * 100)


def _nothing(tmp_path: Path) -> None:
    """The mistake is all in the settings."""


SETTINGS_MISTAKES = {
    "bad ledger URL": Mistake(("SPU_LEDGER_URL", "sqlite:/bad"), {"SPU_LEDGER_URL": "sqlite:/bad"}),
    "missing config file": Mistake(("spu.yaml", "no such file"), {"SPU_CONFIG_FILE": "spu.yaml"}),
    "unparsable config file": Mistake(
        ("spu.yaml", "not valid YAML", "line 2"), config="port: 8080\nmarkup: 0.3: x\n"
    ),
    "config file not a mapping": Mistake(("spu.yaml", "YAML mapping"), config="- port: 8080\n"),
    "unknown setting in the file": Mistake(("'prot'", "did you mean port"), config="prot: 9000\n"),
    "unknown setting in the environment": Mistake(
        ("SPU_LEDGER_ULR", "did you mean SPU_LEDGER_URL"), {"SPU_LEDGER_ULR": "sqlite:///x.db"}
    ),
    "unknown key in a model": Mistake(
        ("'api_key_evn'", "model_list[0]", "did you mean api_key_env"),
        config="model_list:\n  - {model_name: a, provider_model: gpt-4o-mini, api_key_evn: K}\n",
    ),
    "unknown api_format": Mistake(
        ("model_list[0].api_format", "'opneai'"),
        config="model_list:\n  - {model_name: a, provider_model: x, api_format: opneai}\n",
    ),
    "not a number of workers": Mistake(("SPU_WORKERS", "'two'"), {"SPU_WORKERS": "two"}),
    "MongoDB ledger without its extra": Mistake(
        ("[mongodb] extra",), {"SPU_LEDGER_URL": "mongodb://127.0.0.1:1/"}, hidden_module="pymongo"
    ),
    "PostgreSQL ledger without its extra": Mistake(
        ("[postgresql] extra",),
        {"SPU_LEDGER_URL": "postgresql://127.0.0.1:1/spu"},
        hidden_module="psycopg_pool",
    ),
}
"""Mistakes every command runs into, since every command reads the settings and the ledger."""

LEDGER_MISTAKES: dict[str, tuple[Mistake, Callable[[Path], None]]] = {
    "schema newer than the code": (
        Mistake(("schema", "newer than this gateway", "version that wrote it")),
        _newer_ledger,
    ),
    "ledger file that is no database": (
        Mistake(("cannot be opened", "spu-ledger.db", "not a database")),
        _not_a_database,
    ),
    "unreachable PostgreSQL": (
        Mistake(
            ("cannot be opened", "postgresql://spu:***@127.0.0.1", "server is running"),
            {"SPU_LEDGER_URL": "postgresql://spu:s3cret@127.0.0.1:{port}/spu"},
        ),
        _nothing,
    ),
    "unreachable MongoDB": (
        Mistake(
            ("cannot be opened", "mongodb://127.0.0.1", "server is running"),
            {"SPU_LEDGER_URL": "mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=300"},
        ),
        _nothing,
    ),
}

GATEWAY_MISTAKES = {
    "model without a price": Mistake(
        ("'mine'", "no price", "input_cost_per_token"), config=_unpriced_model()
    ),
    "litellm model without its extra": Mistake(
        ("'gemini'", "[litellm] extra"),
        config="model_list:\n  - {model_name: gemini, provider_model: gemini/gemini-2.5-flash,"
        " api_format: litellm}\n",
        hidden_module="litellm",
    ),
    "Stripe key without its extra": Mistake(
        ("STRIPE_SECRET_KEY", "[stripe] extra"),
        {"STRIPE_SECRET_KEY": "sk_test_123"},
        hidden_module="stripe",
    ),
}
"""Mistakes only the gateway's checks (``spu serve``, ``spu config check``) look for."""


def _with_free_port(mistake: Mistake) -> Mistake:
    port = str(free_port())
    return Mistake(
        mistake.names,
        {name: value.replace("{port}", port) for name, value in mistake.settings.items()},
        mistake.config,
        mistake.hidden_module,
    )


@pytest.mark.parametrize("mistake", SETTINGS_MISTAKES.values(), ids=SETTINGS_MISTAKES.keys())
def test_a_settings_mistake_is_told_in_a_line_or_two_by_serve_and_every_command(
    tmp_path: Path, mistake: Mistake
) -> None:
    assert_told_clearly(_run(tmp_path, mistake, "serve", "--port", str(free_port())), mistake.names)
    assert_told_clearly(_run(tmp_path, mistake, "orgs", "list"), mistake.names)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("name", LEDGER_MISTAKES.keys())
def test_a_ledger_that_cannot_be_used_is_told_by_serve_config_check_and_commands(
    tmp_path: Path, name: str
) -> None:
    mistake, make = LEDGER_MISTAKES[name]
    mistake = _with_free_port(mistake)
    make(tmp_path)
    for command in (["serve", "--port", str(free_port())], ["orgs", "show", "acme"]):
        result = _run(tmp_path, mistake, *command)
        assert_told_clearly(result, mistake.names)
        assert "s3cret" not in result.stdout + result.stderr
    assert_told_clearly(_run(tmp_path, mistake, "config", "check"), mistake.names)


@needs_postgres
def test_a_postgresql_ledger_from_a_newer_gateway_is_told_by_serve_and_commands(
    tmp_path: Path,
) -> None:
    with fresh_database() as url:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(
                "CREATE TABLE ledger_schema_versions (version INTEGER PRIMARY KEY,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            connection.execute(
                "INSERT INTO ledger_schema_versions (version) VALUES (%s)",
                (POSTGRES_SCHEMA_VERSION + 1,),
            )
        mistake = Mistake(
            ("newer than this gateway", "version that wrote it"), {"SPU_LEDGER_URL": url}
        )
        for command in (["serve", "--port", str(free_port())], ["orgs", "list"]):
            assert_told_clearly(_run(tmp_path, mistake, *command), mistake.names)


@pytest.mark.parametrize("name", GATEWAY_MISTAKES.keys())
def test_a_model_or_store_the_gateway_cannot_use_stops_serve_and_fails_config_check(
    tmp_path: Path, name: str
) -> None:
    mistake = _with_free_port(GATEWAY_MISTAKES[name])
    assert_told_clearly(_run(tmp_path, mistake, "serve", "--port", str(free_port())), mistake.names)
    assert_told_clearly(_run(tmp_path, mistake, "config", "check"), mistake.names)


@pytest.mark.parametrize(
    "mistake",
    [SETTINGS_MISTAKES["unknown api_format"], GATEWAY_MISTAKES["model without a price"]],
    ids=["settings", "model"],
)
def test_with_two_workers_a_mistake_is_told_once_before_any_worker_starts(
    tmp_path: Path, mistake: Mistake
) -> None:
    result = _run(tmp_path, mistake, "serve", "--workers", "2", "--port", str(free_port()))
    assert_told_clearly(result, mistake.names)
    assert "Started parent process" not in result.stderr


def test_a_port_in_use_is_told_before_the_gateway_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for workers in ("1", "2"):
            result = _run(tmp_path, Mistake(()), "serve", "--port", port, "--workers", workers)
            assert_told_clearly(result, (f"port {port}", "already in use", "--port"))


def test_debug_log_level_shows_the_traceback_behind_the_message(tmp_path: Path) -> None:
    mistake = SETTINGS_MISTAKES["bad ledger URL"]
    result = _run(tmp_path, mistake, "orgs", "list", extra={"SPU_LOG_LEVEL": "debug"})

    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "ValueError: unsupported ledger URL 'sqlite:/bad'" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: SPU_LEDGER_URL")
