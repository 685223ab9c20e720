"""``spu ledger init`` (the compose ledger-init job): current schema, or a clear error; on
SQLite and PostgreSQL, with ``spu ledger verify`` on the latter."""

import sqlite3
from pathlib import Path

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from ledger.postgres.schema import SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION
from ledger.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from proxy.cli.ledger import app as ledger_app
from proxy.cli.ledger_init import ledger_init
from tests.stores import fresh_database, needs_postgres


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(ledger_init)
    return app


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
    return int(version)


def test_ledger_init_migrates_an_old_file_and_can_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(MIGRATIONS[0])
        connection.execute("PRAGMA user_version = 1")
    monkeypatch.setenv("SPU_LEDGER_URL", f"sqlite:///{path}")

    for _ in range(2):
        result = CliRunner().invoke(_cli(), [])
        assert result.exit_code == 0, result.output
        assert "ledger ready (sqlite)" in result.output
        assert _user_version(path) == SCHEMA_VERSION


def test_ledger_init_fails_with_the_reason_on_a_store_it_cannot_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "newer.db"
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    monkeypatch.setenv("SPU_LEDGER_URL", f"sqlite:///{path}")

    result = CliRunner().invoke(_cli(), [])
    assert result.exit_code == 1
    assert "newer than this gateway" in result.output


@needs_postgres
def test_ledger_init_and_verify_work_on_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    with fresh_database() as url:
        monkeypatch.setenv("SPU_LEDGER_URL", url)
        for _ in range(2):
            result = CliRunner().invoke(_cli(), [])
            assert result.exit_code == 0, result.output
            assert "ledger ready (postgresql)" in result.output
        with psycopg.connect(url) as connection:
            versions = connection.execute("SELECT version FROM ledger_schema_versions").fetchall()
        assert versions == [(version,) for version in range(1, POSTGRES_SCHEMA_VERSION + 1)]

        verified = CliRunner().invoke(ledger_app, ["verify"])
        assert verified.exit_code == 0, verified.output
        assert "Ledger OK: 0 organizations checked" in verified.output
