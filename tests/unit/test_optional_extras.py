"""A feature whose extra is not installed is refused at start-up, saying which extra to add."""

import sys

import pytest

from ledger.factory import open_store


def test_a_mongodb_ledger_without_the_mongodb_extra_is_refused_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pymongo", None)
    with pytest.raises(ValueError, match=r"\[mongodb\] extra"):
        open_store("mongodb://localhost:27017/?replicaSet=rs0")
