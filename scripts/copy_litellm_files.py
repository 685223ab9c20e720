"""Copies the locked litellm's cost map and tiktoken encodings into ``pricing/data``.

Run by ``scripts/lock.sh`` in the virtualenv it has just synced from the new
lock; ``pricing.litellm_copies`` lists the files and says why they are copied.
"""

import importlib.metadata
import shutil

from pricing.litellm_copies import installed_litellm_dir, litellm_copies


def main() -> None:
    litellm_dir = installed_litellm_dir()
    version = importlib.metadata.version("litellm")
    for copy, source in litellm_copies().items():
        shutil.copyfile(litellm_dir / source, copy)
        print(f"{copy.name} ← litellm {version}: {source}")


if __name__ == "__main__":
    main()
