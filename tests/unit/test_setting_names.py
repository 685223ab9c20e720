"""Unknown keys are refused, and every documented setting is known, in both places it may be set.

The README's Configuration table is the list users read: each variable in it
must be a setting (or one the scripts read), each setting must be in it, and
the config file must accept every setting by its lower-case name.
"""

import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr, ValidationError

from proxy.settings import NOT_SETTINGS, Settings, setting_variables, unknown_environment

README = Path(__file__).resolve().parents[2] / "README.md"
READ_BY_LIBRARIES = {"TIKTOKEN_CACHE_DIR", "LITELLM_LOCAL_MODEL_COST_MAP"}


def _documented_variables() -> set[str]:
    text = README.read_text()
    table = text[text.index("## Configuration") : text.index("### Models")]
    first_cells = re.findall(r"^\| ([^|]+) \|", table, flags=re.MULTILINE)
    return {name for cell in first_cells for name in re.findall(r"`([A-Z_]+)`", cell)}


def test_every_documented_variable_is_a_setting_or_read_by_a_script_or_library() -> None:
    documented = _documented_variables()

    assert documented - READ_BY_LIBRARIES - NOT_SETTINGS <= setting_variables().keys()
    assert unknown_environment(dict.fromkeys(documented, "x")) == []


def test_every_setting_is_documented() -> None:
    documented = _documented_variables()
    spellings: dict[str, set[str]] = {}
    for variable, name in setting_variables().items():
        spellings.setdefault(name, set()).add(variable)

    undocumented = {name for name, variables in spellings.items() if not variables & documented}

    assert undocumented == {"model_list"}  # a YAML list, documented under "Models"
    assert "`model_list`" in README.read_text()


def _default_in_yaml(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value


def test_the_config_file_accepts_every_setting_by_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {
        name: _default_in_yaml(field.get_default(call_default_factory=True))
        for name, field in Settings.model_fields.items()
    }
    values.update(port=9123, stripe_secret_key="sk_test_file", stripe_product_tag="from_file")
    config = tmp_path / "spu.yaml"
    config.write_text(yaml.safe_dump(values))
    monkeypatch.setenv("SPU_CONFIG_FILE", str(config))

    settings = Settings()

    assert settings.port == 9123
    assert settings.stripe_product_tag == "from_file"
    assert settings.stripe_secret_key is not None
    assert settings.stripe_secret_key.get_secret_value() == "sk_test_file"


def test_the_environment_wins_over_the_file_for_an_aliased_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "spu.yaml"
    config.write_text("stripe_secret_key: sk_test_file\n")
    monkeypatch.setenv("SPU_CONFIG_FILE", str(config))
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_environment")

    secret = Settings().stripe_secret_key

    assert secret is not None and secret.get_secret_value() == "sk_test_environment"


def test_an_unknown_key_in_the_file_or_in_a_model_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "spu.yaml"
    monkeypatch.setenv("SPU_CONFIG_FILE", str(config))
    for text, location in (
        ("prot: 9000\n", ("prot",)),
        ("model_list:\n  - {model_name: a, provider_model: b, api_key_evn: K}\n", None),
    ):
        config.write_text(text)
        with pytest.raises(ValidationError) as raised:
            Settings()
        [error] = raised.value.errors()
        assert error["type"] == "extra_forbidden"
        assert error["loc"] == (location or ("model_list", 0, "api_key_evn"))


def test_unknown_spu_variables_are_found_and_scripts_variables_are_not() -> None:
    environment = {
        "SPU_LEDGER_ULR": "x",
        "spu_prot": "1",
        "SPU_PORT": "1",
        "SPU_EXTRAS": "litellm",
        "SPU_CONFIG_FILE": "spu.yaml",
        "STRIPE_SECRET_KEY": "sk",
        "HOME": "/root",
    }

    assert unknown_environment(environment) == ["SPU_LEDGER_ULR", "spu_prot"]


def test_the_public_url_defaults_to_the_address_served() -> None:
    assert Settings(port=18110).public_url == "http://127.0.0.1:18110"
    assert Settings(host="0.0.0.0", port=9000).public_url == "http://127.0.0.1:9000"
    assert Settings(host="::", port=9000).public_url == "http://[::1]:9000"
    assert Settings(host="10.1.2.3", port=80).public_url == "http://10.1.2.3:80"
    given = Settings(port=18110, public_url="https://llm.example.com")
    assert given.public_url == "https://llm.example.com"


def test_blank_secrets_are_unset_and_bad_values_are_refused() -> None:
    settings = Settings(stripe_secret_key=" ", admin_token="", stripe_webhook_secret="")
    assert (settings.stripe_secret_key, settings.admin_token) == (None, None)
    assert settings.stripe_webhook_secret is None
    assert Settings(log_level="DEBUG").log_level == "debug"
    for bad in (
        {"log_level": "verbose"},
        {"port": 70000},
        {"workers": 0},
        {"public_url": "llm.example.com"},
        {"model_list": [{"model_name": "a", "provider_model": "x"}] * 2},
    ):
        with pytest.raises(ValidationError):
            Settings(**bad)
