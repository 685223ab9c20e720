"""The README's example ``spu.yaml`` starts a gateway with the locked versions.

Every model in it must be priced by the shipped cost map (or by its own
override) and routable with what the test set installs, so the example a
newcomer copies never fails at start-up.
"""

import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from proxy.model_registry import ModelRegistry
from proxy.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_example() -> str:
    blocks = re.findall(r"^```yaml\n(.*?)^```$", README.read_text(), flags=re.MULTILINE | re.DOTALL)
    examples = [block for block in blocks if "model_list:" in block]
    assert len(examples) == 1, "the README has one example spu.yaml"
    return examples[0]


def test_the_readme_example_config_builds_the_model_registry_with_dummy_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = _readme_example()
    config = tmp_path / "spu.yaml"
    config.write_text(text)
    for name in list(os.environ):
        if name.startswith("SPU_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SPU_CONFIG_FILE", str(config))
    routes = yaml.safe_load(text)["model_list"]
    for route in routes:
        if "api_key_env" in route:
            monkeypatch.setenv(route["api_key_env"], "dummy-key")

    settings = Settings()
    registry = ModelRegistry(settings.model_list, include_demo=settings.demo_model)

    assert settings.markup == Decimal("0.30")
    served = {model.name: model for model in registry.all()}
    assert set(served) == {route["model_name"] for route in routes} | {"spu-demo"}
    for model in served.values():
        assert model.rates.input_usd_per_token > 0
        assert model.rates.output_usd_per_token > 0
