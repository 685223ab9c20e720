"""Where a ledger URL points, as the command line shows it: absolute, and never a password."""

from pathlib import Path

import pytest

from ledger.location import locate, without_password


def test_a_relative_sqlite_url_is_shown_as_the_absolute_file_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    relative = locate("sqlite:///./data/spu-ledger.db")
    absolute = locate(f"sqlite:///{tmp_path}/other.db")

    assert relative.file == tmp_path / "data" / "spu-ledger.db"
    assert str(relative) == f"SQLite file {tmp_path}/data/spu-ledger.db"
    assert not relative.exists
    (tmp_path / "other.db").touch()
    assert absolute.exists and absolute.file == tmp_path / "other.db"


def test_a_server_url_is_shown_without_its_password_and_counts_as_existing() -> None:
    location = locate("mongodb+srv://ops:s3cret@cluster0.example.net/spu?retryWrites=true")

    assert location.file is None and location.exists
    assert str(location) == "mongodb+srv://ops:***@cluster0.example.net/spu?retryWrites=true"
    assert "s3cret" not in str(location)
    assert without_password("postgresql://spu@db:5432/spu") == "postgresql://spu@db:5432/spu"
    assert without_password("mongodb://a:b@h1:1,h2:2/?replicaSet=rs0") == (
        "mongodb://a:***@h1:1,h2:2/?replicaSet=rs0"
    )
