"""The cost map and encodings shipped in ``pricing/data`` are exactly the locked litellm's."""

import hashlib
import importlib.metadata
import tomllib
from pathlib import Path

from pricing.litellm_copies import installed_litellm_dir, litellm_copies

REPO_ROOT = Path(__file__).resolve().parents[2]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_installed_litellm_is_the_locked_one() -> None:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    locked = {package["name"]: package.get("version") for package in lock["package"]}
    assert importlib.metadata.version("litellm") == locked["litellm"]


def test_every_copy_is_byte_for_byte_the_installed_litellm_file() -> None:
    litellm_dir = installed_litellm_dir()
    copies = litellm_copies()
    assert {copy.name for copy in copies} == {
        "model_prices_and_context_window_backup.json",
        "9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
        "fb374d419588a4632f3f557e76b4b70aebbca790",
    }
    for copy, source in copies.items():
        assert _sha256(copy) == _sha256(litellm_dir / source), (
            f"{copy} differs from litellm's {source}: run scripts/lock.sh"
        )
