"""The README's example ``spu.yaml`` and its three-line real models pass ``spu config check``.

Every model in them must be priced by the shipped cost map (or by its own
override) and routable with what the test set installs, so an example a
newcomer copies never fails at start-up. The check runs as the newcomer runs
it: the installed ``spu``, in its own process, with dummy keys.
"""

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.processes import gateway_environment

README = Path(__file__).resolve().parents[2] / "README.md"
SPU = str(Path(sys.executable).with_name("spu"))


def _readme_example() -> str:
    blocks = re.findall(r"^```yaml\n(.*?)^```$", README.read_text(), flags=re.MULTILINE | re.DOTALL)
    examples = [block for block in blocks if "model_list:" in block]
    assert len(examples) == 1, "the README has one example spu.yaml"
    return examples[0]


def _three_line_models() -> list[str]:
    """The YAML of each ``echo '…' > spu.yaml`` line in the README."""
    return re.findall(r"^echo '(model_list: .*)' > spu\.yaml$", README.read_text(), re.MULTILINE)


def _config_check(tmp_path: Path, text: str) -> tuple[subprocess.CompletedProcess[str], list[Any]]:
    (tmp_path / "spu.yaml").write_text(text)
    routes: list[Any] = yaml.safe_load(text)["model_list"]
    environment = gateway_environment(f"sqlite:///{tmp_path / 'data' / 'spu-ledger.db'}")
    environment.update(
        {route["api_key_env"]: "dummy-key" for route in routes if "api_key_env" in route}
    )
    result = subprocess.run(
        [SPU, "config", "check", "--config", "spu.yaml"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result, routes


def _served_rows(result: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {
        line.split("│")[1].strip(): line
        for line in result.stdout.splitlines()
        if line.startswith("│") and "model" not in line.split("│")[1]
    }
    for row in rows.values():
        cells = [cell.strip() for cell in row.strip(" │").split("│")]
        input_usd, output_usd, status = cells[5], cells[6], cells[8]
        assert status == "ok", row
        assert Decimal(input_usd) > 0 and Decimal(output_usd) > 0, row
    return rows


def test_the_readme_example_config_passes_spu_config_check_with_dummy_keys(
    tmp_path: Path,
) -> None:
    result, routes = _config_check(tmp_path, _readme_example())

    rows = _served_rows(result)
    assert set(rows) == {route["model_name"] for route in routes} | {"spu-demo"}
    assert "markup 0.30 over provider cost" in result.stdout
    assert not (tmp_path / "data").exists()  # a check creates nothing


def test_each_three_line_real_model_in_the_readme_passes_spu_config_check(tmp_path: Path) -> None:
    examples = _three_line_models()
    assert len(examples) == 2, "an OpenAI and an Anthropic model"
    formats = set()
    for index, text in enumerate(examples):
        directory = tmp_path / str(index)
        directory.mkdir()
        result, [route] = _config_check(directory, text)
        assert set(_served_rows(result)) == {route["model_name"], "spu-demo"}
        formats.add(route.get("api_format", "openai"))
    assert formats == {"openai", "anthropic"}
