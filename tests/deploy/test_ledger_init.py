"""``spu ledger init`` (the compose ledger-init job): current schema, or a clear error."""

import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ledger.sqlite.schema import MIGRATIONS, SCHEMA_VERSION
from proxy.cli.ledger_init import ledger_init


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
