"""``spu --help`` and every command's ``--help`` load none of the gateway's heavy modules.

Start-up time is what they cost (``benchmarks/cli_start.py`` prints it); this
test proves the mechanism: a help walk over every command, in a fresh
interpreter, leaves the settings, ledger, pricing, web, HTTP and Stripe
modules unimported. (typer itself uses pydantic to convert parameters.)
"""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from typer.testing import CliRunner

from proxy.cli import app

REPOSITORY = Path(__file__).resolve().parents[2]

HEAVY = (
    "aiohttp",
    "fastapi",
    "httpx",
    "ledger",
    "pricing",
    "proxy.settings",
    "pydantic_settings",
    "rich",
    "starlette",
    "stripe",
    "tiktoken",
    "uvicorn",
    "yaml",
)

HELP_WALK = """
import contextlib, io, json, sys
import typer.main
from proxy.cli import app

def paths(command, prefix):
    yield prefix
    for name, sub in getattr(command, "commands", {}).items():
        yield from paths(sub, [*prefix, name])

walked = []
for path in paths(typer.main.get_command(app), []):
    with contextlib.redirect_stdout(io.StringIO()) as shown:
        try:
            app([*path, "--help"], standalone_mode=False)
        except SystemExit:
            pass
    walked.append([" ".join(path), shown.getvalue().startswith("Usage:")])
heavy = sorted(name for name in sys.modules if name.split(".")[0] in HEAVY or name in HEAVY)
print(json.dumps({"walked": walked, "heavy": heavy}))
"""


def test_every_help_answers_without_loading_the_heavy_modules() -> None:
    script = f"HEAVY = {HEAVY!r}\n{HELP_WALK}"
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=REPOSITORY,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])

    walked = dict(report["walked"])
    assert {"", "serve", "config check", "orgs list", "stripe sync", "ledger init"} <= set(walked)
    assert all(walked.values()), walked
    assert report["heavy"] == []


def test_version_is_the_one_pyproject_declares() -> None:
    declared = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["version"]

    result = CliRunner().invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.stdout == f"spu-gateway {declared}\n"
