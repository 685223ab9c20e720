"""The ``spu`` command line through Typer's runner, on a temporary SQLite ledger."""

import asyncio
import contextlib
import io
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from typer.testing import CliRunner, Result

from ledger import BudgetPeriod, KeyLimits, LedgerStore, UsageDetails, spus_to_units
from ledger.sqlite import SqliteLedger
from ledger.verify import verify
from proxy.app import create_app
from proxy.auth import hash_token
from proxy.cli import app
from proxy.settings import Settings
from tests.fakes.server import serve_in_thread

T = TypeVar("T")
TOKEN = re.compile(r"spu_[A-Za-z0-9_-]{43}")


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "ledger.db"


@pytest.fixture
def spu(ledger_path: Path) -> Iterator[Callable[..., Result]]:
    """Run ``spu`` with the environment pointing at the test's own ledger.

    ``--config`` sets ``SPU_CONFIG_FILE`` for the command's workers; run in this
    process, that would outlive the test, so the environment is put back after it."""
    runner = CliRunner()
    env = {
        "SPU_LEDGER_URL": f"sqlite:///{ledger_path}",
        "SPU_PUBLIC_URL": "http://gateway.test:8080",
        "SPU_FREE_GRANT_SPUS": "100",
    }

    def invoke(*args: str, **extra_env: str) -> Result:
        return runner.invoke(app, list(args), env={**env, **extra_env})

    before = dict(os.environ)
    yield invoke
    os.environ.clear()
    os.environ.update(before)


def on_ledger(ledger_path: Path, work: Callable[[LedgerStore], Awaitable[T]]) -> T:
    async def main() -> T:
        store = SqliteLedger(ledger_path)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(main())


@pytest.fixture(autouse=True)
def ledger_verifies_after_each_test(ledger_path: Path) -> Iterator[None]:
    yield
    if ledger_path.exists():
        _, violations = on_ledger(ledger_path, verify)
        assert violations == []


def seed_call(ledger_path: Path, org_id: str, model: str, units: int, request_id: str) -> None:
    async def work(store: LedgerStore) -> None:
        await store.hold(org_id, units, request_id, ttl_s=60)
        details = UsageDetails(
            model=model, provider="demo", prompt_tokens=10, completion_tokens=5, total_tokens=15
        )
        await store.settle(request_id, units, details)

    on_ledger(ledger_path, work)


def test_demo_seeds_an_org_and_token_once_and_prints_snippets(
    spu: Callable[..., Result], ledger_path: Path
) -> None:
    first = spu("demo")
    second = spu("demo")

    assert first.exit_code == 0, first.output
    (token,) = set(TOKEN.findall(first.stdout))
    assert TOKEN.findall(second.stdout)[0] == token
    assert "curl http://gateway.test:8080/v1/chat/completions" in first.stdout
    assert 'OpenAI(base_url="http://gateway.test:8080/v1"' in first.stdout
    assert '"model": "spu-demo"' in first.stdout
    assert "reused" in second.stdout
    token_file = ledger_path.parent / "demo-token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    keys = on_ledger(ledger_path, lambda store: store.list_access_keys("demo"))
    assert [key.token_sha256 for key in keys] == [hash_token(token)]
    account = on_ledger(ledger_path, lambda store: store.get_account("demo"))
    assert account.granted_credits_units == spus_to_units(100)


def test_demo_issues_a_new_token_once_the_saved_one_is_revoked(
    spu: Callable[..., Result], ledger_path: Path
) -> None:
    first = spu("demo")
    key_id = on_ledger(ledger_path, lambda store: store.list_access_keys("demo"))[0].key_id
    spu("keys", "revoke", "demo", key_id)

    second = spu("demo")

    assert "issued" in second.stdout
    assert TOKEN.findall(second.stdout)[0] != TOKEN.findall(first.stdout)[0]


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl to paste the curl command")
def test_the_demo_snippets_work_when_pasted(spu: Callable[..., Result], ledger_path: Path) -> None:
    settings = Settings(ledger_url=f"sqlite:///{ledger_path}", demo_model=True)
    with serve_in_thread(create_app(settings)) as url:
        output = spu("demo", SPU_PUBLIC_URL=url).stdout
        python_snippet = output[output.index("from openai import") : output.index("\nUsage page")]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(python_snippet, {})
        curl_command = output[output.index("curl ") : output.index("\n\n# Python")]
        curl = subprocess.run(
            ["bash", "-c", curl_command], capture_output=True, text=True, timeout=30, check=True
        )

    assert "Hello from the SPU Gateway demo model" in printed.getvalue()
    assert '"object":"chat.completion"' in curl.stdout.replace(" ", "")
    records = on_ledger(ledger_path, lambda store: store.usage_records("demo"))
    assert len(records) == 2


def test_orgs_create_list_and_show(spu: Callable[..., Result], ledger_path: Path) -> None:
    created = spu("orgs", "create", "acme", "--name", "Acme Inc", "--email", "ops@acme.test")
    again = spu("orgs", "create", "acme")
    spu("orgs", "create", "beta")
    listed = spu("orgs", "list")
    shown = spu("orgs", "show", "acme")

    assert created.exit_code == 0 and "Created organization acme" in created.stdout
    assert "Already exists" in again.stdout
    assert listed.stdout.index("acme") < listed.stdout.index("beta")
    assert "granted" in shown.stdout and "100" in shown.stdout
    assert "Acme Inc" in shown.stdout
    account = on_ledger(ledger_path, lambda store: store.get_account("acme"))
    assert account.user_email == "ops@acme.test"


def test_orgs_refuses_bad_ids_and_unknown_orgs(spu: Callable[..., Result]) -> None:
    bad = spu("orgs", "create", "a b")
    unknown = spu("orgs", "show", "nobody")

    assert bad.exit_code == 1 and "not a valid organization id" in bad.stderr
    assert unknown.exit_code == 1 and "no organization 'nobody'" in unknown.stderr


def test_keys_create_shows_the_token_once_list_hides_it_and_revoke_ends_it(
    spu: Callable[..., Result], ledger_path: Path
) -> None:
    spu("orgs", "create", "acme")
    created = spu("keys", "create", "acme", "--name", "ci", "--expires-in-days", "30")
    (token,) = TOKEN.findall(created.stdout)
    key = on_ledger(ledger_path, lambda store: store.access_key_by_hash(hash_token(token)))
    assert key is not None and key.expires_at is not None

    listed = spu("keys", "list", "acme")
    revoked = spu("keys", "revoke", "acme", key.key_id)
    missing = spu("keys", "revoke", "acme", "key_nope")

    assert key.key_id in listed.stdout and token not in listed.stdout
    assert revoked.exit_code == 0 and "Revoked" in revoked.stdout
    after = on_ledger(ledger_path, lambda store: store.access_key_by_hash(hash_token(token)))
    assert after is not None and after.revoked_at is not None
    assert missing.exit_code == 1


def test_keys_limit_sets_and_keeps_limits_and_list_shows_them(
    spu: Callable[..., Result], ledger_path: Path
) -> None:
    spu("orgs", "create", "acme")
    (token,) = TOKEN.findall(spu("keys", "create", "acme").stdout)
    key = on_ledger(ledger_path, lambda store: store.access_key_by_hash(hash_token(token)))
    assert key is not None

    limited = spu("keys", "limit", "acme", key.key_id, "--budget", "12.5", "--period", "week")
    rated = spu("keys", "limit", "acme", key.key_id, "--rpm", "30", "--tpm", "9000")
    listed = spu("keys", "list", "acme")

    assert limited.exit_code == 0 and "12.5 SPUs per week" in limited.stdout
    assert rated.exit_code == 0 and "rpm 30" in rated.stdout
    after = on_ledger(ledger_path, lambda store: store.access_key_by_hash(hash_token(token)))
    assert after is not None
    assert after.limits == KeyLimits(spus_to_units("12.5"), BudgetPeriod.WEEK, 30, 9000)
    row = next(line for line in listed.stdout.splitlines() if key.key_id in line)
    assert "0 of 12.5 per week" in row and "30" in row and "9000" in row
    cleared = spu("keys", "limit", "acme", key.key_id, "--budget", "none", "--rpm", "0")
    assert cleared.exit_code == 0 and "no budget" in cleared.stdout
    assert spu("keys", "limit", "acme", key.key_id, "--budget", "lots").exit_code == 1
    assert spu("keys", "limit", "acme", "key_nope", "--rpm", "3").exit_code == 1


def test_credits_grant_is_retry_safe_and_checks_the_amount(
    spu: Callable[..., Result], ledger_path: Path
) -> None:
    spu("orgs", "create", "acme")
    grant = ("credits", "grant", "acme", "12.5", "--reason", "support", "--idempotency-key", "t1")

    first = spu(*grant)
    retry = spu(*grant)
    too_fine = spu("credits", "grant", "acme", "0.0000001", "--reason", "x")
    not_a_number = spu("credits", "grant", "acme", "lots", "--reason", "x")
    unknown = spu("credits", "grant", "nobody", "5", "--reason", "x")

    assert "Granted 12.5 SPUs" in first.stdout and "112.5 SPUs now available" in first.stdout
    assert "Already granted" in retry.stdout
    account = on_ledger(ledger_path, lambda store: store.get_account("acme"))
    assert account.granted_credits_units == spus_to_units("112.5")
    assert [too_fine.exit_code, not_a_number.exit_code, unknown.exit_code] == [1, 1, 1]


def test_usage_prints_recent_calls_and_totals_as_tables(
    spu: Callable[..., Result], ledger_path: Path
) -> None:
    spu("orgs", "create", "acme")
    seed_call(ledger_path, "acme", "model-a", 1_250_000, "req_1")
    seed_call(ledger_path, "acme", "model-b", 500_000, "req_2")
    seed_call(ledger_path, "acme", "model-a", 250_000, "req_3")

    calls = spu("usage")
    one_model = spu("usage", "--model", "model-b")
    by_model = spu("usage", "acme", "--group-by", "model")
    needs_org = spu("usage", "--group-by", "model")

    assert calls.exit_code == 0
    assert [line.count("model-") for line in calls.stdout.splitlines() if "acme" in line] == [
        1,
        1,
        1,
    ]
    assert "model-a" not in one_model.stdout and "0.5" in one_model.stdout
    rows = {
        line.split("│")[1].strip(): line for line in by_model.stdout.splitlines() if "│" in line
    }
    assert "1.5" in rows["model-a"] and "│ 2 " in rows["model-a"]
    assert needs_org.exit_code == 1


def test_ledger_verify_passes_a_sound_ledger_and_names_each_violation(
    spu: Callable[..., Result], ledger_path: Path
) -> None:
    spu("orgs", "create", "acme")
    seed_call(ledger_path, "acme", "model-a", 1_000_000, "req_1")
    sound = spu("ledger", "verify")
    with sqlite3.connect(ledger_path) as connection:
        connection.execute(
            "UPDATE accounts SET granted_used_units = granted_used_units + 7 WHERE org_id = 'acme'"
        )

    broken = spu("ledger", "verify")
    with sqlite3.connect(ledger_path) as connection:
        connection.execute(
            "UPDATE accounts SET granted_used_units = granted_used_units - 7 WHERE org_id = 'acme'"
        )

    assert sound.exit_code == 0 and "1 organizations checked" in sound.stdout
    assert broken.exit_code == 1
    assert "violation: acme: conservation broken" in broken.stderr


def test_ledger_init_is_reachable_in_the_ledger_group(
    spu: Callable[..., Result], ledger_path: Path
) -> None:
    result = spu("ledger", "init")

    assert result.exit_code == 0
    assert ledger_path.exists()


@pytest.mark.parametrize(
    "command",
    [
        ["orgs", "list"],
        ["orgs", "show", "acme"],
        ["keys", "list", "acme"],
        ["credits", "grant", "acme", "5", "--reason", "x"],
        ["usage"],
        ["ledger", "verify"],
    ],
    ids=" ".join,
)
def test_a_command_run_where_there_is_no_ledger_refuses_to_create_one_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    result = CliRunner().invoke(app, command, env={"SPU_LEDGER_URL": None})

    assert result.exit_code == 1
    assert f"there is no ledger at {elsewhere}/data/spu-ledger.db" in result.stderr
    assert "relative to the current directory" in result.stderr
    assert "spu ledger init" in result.stderr
    assert list(elsewhere.iterdir()) == []


def test_commands_say_which_ledger_they_open_and_when_they_created_it(
    spu: Callable[..., Result], ledger_path: Path
) -> None:
    created = spu("orgs", "create", "acme")
    listed = spu("orgs", "list")

    assert created.exit_code == 0 and listed.exit_code == 0
    assert (
        created.stderr == f"ledger: SQLite file {ledger_path} (created now: a new, empty ledger)\n"
    )
    assert listed.stderr == f"ledger: SQLite file {ledger_path}\n"
    assert "acme" in listed.stdout and "ledger:" not in listed.stdout


def test_config_check_prices_every_model_and_fails_with_one_line_per_problem(
    spu: Callable[..., Result], ledger_path: Path, tmp_path: Path
) -> None:
    config = tmp_path / "spu.yaml"
    config.write_text(
        "model_list:\n"
        "  - {model_name: mini, provider_model: gpt-4o-mini, api_key_env: CHECK_KEY_A}\n"
        "  - {model_name: sonnet, provider_model: claude-sonnet-4-5, api_format: anthropic,"
        " api_key_env: CHECK_KEY_B}\n"
        "  - {model_name: own, provider_model: my-llm, input_cost_per_token: '0.000002',"
        " output_cost_per_token: '0.000004'}\n"
        "  - {model_name: unpriced, provider_model: my-other-llm}\n"
    )

    failed = spu("config", "check", "--config", str(config), CHECK_KEY_A="sk-a")
    fixed = config.read_text().replace(
        "  - {model_name: unpriced, provider_model: my-other-llm}\n", ""
    )
    config.write_text(fixed)
    passed = spu("config", "check", "--config", str(config), CHECK_KEY_A="sk-a", CHECK_KEY_B="b")

    assert failed.exit_code == 1
    assert failed.stderr.splitlines() == [
        "error: model 'unpriced': no price for 'my-other-llm' in litellm's cost map; set"
        " input_cost_per_token and output_cost_per_token in its config",
        "error: model 'sonnet': CHECK_KEY_B (its api_key_env) is not set, so its calls are"
        " refused: export CHECK_KEY_B=<the provider's key> before starting the gateway",
        "2 problem(s).",
    ]
    rows = {line.split("│")[1].strip(): line for line in passed.stdout.splitlines() if "│" in line}
    assert re.search(r"│ CHECK_KEY_A set +│ +0\.15 │ +0\.6 │", rows["mini"]), rows["mini"]
    assert re.search(r"│ none +│ +2 │ +4 │", rows["own"]), rows["own"]
    assert "https://api.anthropic.com/v1" in rows["sonnet"]
    assert passed.exit_code == 0, passed.output
    assert f"ledger:   SQLite file {ledger_path} (not created yet" in passed.stdout
    assert not ledger_path.exists()
