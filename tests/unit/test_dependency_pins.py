"""Every dependency is pinned, and uv, its build backend and its bootstrap agree on one version.

uv.lock pins the whole tree with hashes; ``scripts/test.sh`` installs with
``--locked``, so a lock out of step with pyproject.toml fails there. What the
lock cannot catch is checked here.
"""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines.extend(extra)
    lines.extend(PYPROJECT["build-system"]["requires"])
    return [Requirement(line) for line in lines]


def test_every_declared_dependency_and_tool_is_pinned_to_one_version() -> None:
    loose = [
        str(requirement)
        for requirement in _declared()
        if requirement.name != PYPROJECT["project"]["name"]
        and not (
            len(requirement.specifier) == 1 and next(iter(requirement.specifier)).operator == "=="
        )
    ]
    assert loose == []


def test_uv_its_build_backend_and_its_bootstrap_are_one_version() -> None:
    required = PYPROJECT["tool"]["uv"]["required-version"]
    assert required.startswith("==")
    version = required.removeprefix("==")
    assert PYPROJECT["build-system"]["requires"] == [f"uv_build=={version}"]
    bootstrap = (REPO_ROOT / "scripts" / "uv-requirements.txt").read_text()
    assert re.findall(r"^uv==(\S+) \\$", bootstrap, flags=re.MULTILINE) == [version]
    assert "--hash=sha256:" in bootstrap
