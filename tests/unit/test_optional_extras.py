"""A feature whose extra is not installed is refused at start-up, saying which extra to add."""

import sys

import pytest

from ledger.factory import open_store
from proxy.model_registry import ModelRegistry
from proxy.settings import ModelRoute

GEMINI = ModelRoute(
    model_name="gemini-flash", provider_model="gemini/gemini-2.5-flash", api_format="litellm"
)


def test_a_litellm_model_without_the_litellm_extra_is_refused_naming_the_model_and_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)
    with pytest.raises(ValueError, match=r"'gemini-flash'.*\[litellm\] extra"):
        ModelRegistry([GEMINI], include_demo=False)


def test_without_the_litellm_extra_other_models_are_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)
    route = ModelRoute(model_name="mini", provider_model="gpt-4o-mini", api_key_env="KEY")
    registry = ModelRegistry([route], include_demo=True)
    assert sorted(model.name for model in registry.all()) == ["mini", "spu-demo"]


def test_with_the_litellm_extra_a_litellm_model_is_served() -> None:
    assert ModelRegistry([GEMINI], include_demo=False).get("gemini-flash").provider == "gemini"


def test_a_mongodb_ledger_without_the_mongodb_extra_is_refused_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pymongo", None)
    with pytest.raises(ValueError, match=r"\[mongodb\] extra"):
        open_store("mongodb://localhost:27017/?replicaSet=rs0")


def test_a_postgresql_ledger_without_the_postgresql_extra_is_refused_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(ValueError, match=r"\[postgresql\] extra"):
        open_store("postgresql://spu@localhost:5432/spu")
