"""Token counts with tiktoken, strictly offline.

tiktoken downloads an encoding on first use unless its cache directory holds
the file, named by the SHA-1 of the download URL (and checks the file's
SHA-256). litellm ships cl100k_base and o200k_base in exactly that form; this
package ships byte-for-byte copies of the locked litellm's
(``pricing.litellm_copies`` says why), so pointing ``TIKTOKEN_CACHE_DIR`` at
them gives both with no network and no litellm.
"""

import hashlib
import os
import re
import threading
import time
from pathlib import Path

import tiktoken
import tiktoken.registry

from pricing.errors import TokenizerUnavailable
from pricing.heap import return_free_pages

CACHE_DIR_ENV = "TIKTOKEN_CACHE_DIR"
CL100K_BASE = "cl100k_base"
O200K_BASE = "o200k_base"

# tiktoken's own download address; its cache file is named by this URL's SHA-1
# (tiktoken/load.py, read_file_cached).
_ENCODING_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"

BUNDLED_ENCODINGS_DIR = Path(__file__).resolve().parent / "data" / "tiktoken"
BUNDLED_ENCODINGS = (CL100K_BASE, O200K_BASE)

_O200K_FAMILIES = re.compile(
    r"(?:chatgpt-4o|gpt-4o|gpt-4\.1|gpt-4\.5|gpt-[5-9]|gpt-oss|o[1-9])(?![0-9a-z])"
)


def tiktoken_cache_dir() -> Path:
    """The directory tiktoken reads: the bundled copies unless the operator chose one."""
    if CACHE_DIR_ENV not in os.environ:
        os.environ[CACHE_DIR_ENV] = str(BUNDLED_ENCODINGS_DIR)
    return Path(os.environ[CACHE_DIR_ENV])


def cache_file_name(name: str) -> str:
    """The file name tiktoken gives an encoding in its cache: the SHA-1 of its download URL."""
    return hashlib.sha1(_ENCODING_URL.format(name=name).encode()).hexdigest()


def encoding_file(name: str) -> Path:
    """Where tiktoken will look for an encoding before trying to download it."""
    return tiktoken_cache_dir() / cache_file_name(name)


_LOADING = threading.Lock()
_loaded: dict[str, tuple[tiktoken.Encoding, float]] = {}
"""The encodings in memory, by name, each with when it was last asked for (monotonic)."""


def get_encoding(name: str) -> tiktoken.Encoding:
    """An encoding loaded from disk on first use, then kept until it goes unused; never a
    download.

    Exact counts run in worker threads, so two may ask for an encoding at once:
    the lock makes the second wait for the first's load (about half a second
    and tens of MB while it lasts) instead of doing it again.
    """
    with _LOADING:
        entry = _loaded.get(name)
        if entry is None:
            name = _available_name(name)  # a file test: only until it is loaded
            entry = _loaded.get(name)
        encoding = _encoding_without_rank_table(name) if entry is None else entry[0]
        _loaded[name] = (encoding, time.monotonic())
        return encoding


def drop_idle_encodings(idle_s: float) -> list[str]:
    """Forget the encodings nobody asked for in ``idle_s`` seconds, and give their pages back.

    An encoding is needed only for an exact count (a refusal's figures, a reply
    that reported no usage), and o200k_base and cl100k_base together keep about
    65 MB resident. A gateway whose calls are affordable and reported needs them
    rarely, so holding them forever would be most of its memory; the next exact
    count loads the encoding again (about half a second, in its worker thread).
    Returns the names dropped. It takes the load lock, so it runs in a thread.
    """
    with _LOADING:
        unused_since = time.monotonic() - idle_s
        idle = [name for name, (_, used) in _loaded.items() if used <= unused_since]
        for name in idle:
            del _loaded[name]
    if idle:
        return_free_pages()
    return idle


def _available_name(name: str) -> str:
    """An operator's ``TIKTOKEN_CACHE_DIR`` that lacks o200k_base gets cl100k_base
    in its place, the nearest encoding; a missing cl100k_base is an error, not a
    download.
    """
    if encoding_file(name).is_file():
        return name
    if name == O200K_BASE:
        return _available_name(CL100K_BASE)
    raise TokenizerUnavailable(name, str(encoding_file(name)))


def _encoding_without_rank_table(name: str) -> tiktoken.Encoding:
    """The encoding, minus the Python copy of its rank table.

    ``tiktoken.Encoding`` keeps the ``dict[bytes, int]`` it was built from
    (200k bytes objects for o200k_base, ~36 MB with cl100k_base's) although
    encoding, decoding and counting all run in its Rust ``CoreBPE``, which holds
    its own copy; only pickling reads the dict. It is deleted, not emptied, so
    that anything that did need it fails loudly instead of seeing no ranks, and
    the pages its load left free are given back (about 8 MB of resident memory
    with o200k_base). The encoding is built here rather than by
    ``tiktoken.get_encoding`` because tiktoken's registry would keep the full
    one alive.
    """
    tiktoken.registry.list_encoding_names()  # loads the registry's constructors
    constructors = tiktoken.registry.ENCODING_CONSTRUCTORS
    assert constructors is not None
    encoding = tiktoken.Encoding(**constructors[name]())
    del encoding._mergeable_ranks
    return_free_pages()
    return encoding


def encoding_name_for_model(model: str) -> str:
    """o200k_base for the gpt-4o, gpt-4.1, gpt-5 and o-series families, else cl100k_base.

    Claude's tokenizer is not public; cl100k_base stands in for it as an
    approximation, and Claude may count somewhat more. Settlement uses the
    provider's reported usage, so only the pre-call estimate is affected.
    """
    bare_name = model.rsplit("/", 1)[-1].lower()
    return O200K_BASE if _O200K_FAMILIES.match(bare_name) else CL100K_BASE


def encoding_for_model(model: str) -> tiktoken.Encoding:
    return get_encoding(encoding_name_for_model(model))


def count_text_tokens(text: str, model: str) -> int:
    """Tokens of plain text; special-token markers in it count as ordinary text."""
    return len(encoding_for_model(model).encode_ordinary(text))
