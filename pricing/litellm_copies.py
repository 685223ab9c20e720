"""The files this package copies from litellm: its cost map and two tiktoken encodings.

The gateway prices every call from litellm's model cost map and counts tokens
with tiktoken's cl100k_base and o200k_base, offline. All three ship inside the
litellm wheel, but litellm with what it pulls in is ~190 MB and 40-odd
distributions, more than twice the rest of the install, and only models with
``api_format: litellm`` need the SDK itself (the ``[litellm]`` extra). No
well-kept package ships exactly these files: those that carry a price list
carry their own, not litellm's. So the three files (8.8 MB) are copied byte for
byte from the locked litellm into ``pricing/data``: ``scripts/lock.sh``
refreshes them with the lock, and ``tests/unit/test_litellm_copies.py`` checks
them against the installed litellm. Provenance and licences:
``pricing/data/README.md``.
"""

import importlib.util
from pathlib import Path, PurePosixPath

from pricing.costmap import COST_MAP_FILE, cost_map_path
from pricing.errors import PricingError
from pricing.tokens import BUNDLED_ENCODINGS, BUNDLED_ENCODINGS_DIR, cache_file_name

LITELLM_TOKENIZERS = PurePosixPath("litellm_core_utils/tokenizers")
"""Where litellm keeps its tiktoken cache, inside its package."""


def litellm_copies() -> dict[Path, PurePosixPath]:
    """Each copy in this package → the file it copies, relative to the litellm package."""
    copies = {cost_map_path(): PurePosixPath(COST_MAP_FILE)}
    for name in BUNDLED_ENCODINGS:
        file_name = cache_file_name(name)
        copies[BUNDLED_ENCODINGS_DIR / file_name] = LITELLM_TOKENIZERS / file_name
    return copies


def installed_litellm_dir() -> Path:
    """The installed litellm package's folder, found without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise PricingError("litellm is not installed: it comes with the [litellm] extra")
    return Path(next(iter(spec.submodule_search_locations)))
