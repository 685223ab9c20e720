"""Start-up: load the tokenizers before the gateway serves, return spare memory, freeze the heap.

Loading a tiktoken encoding takes about half a second; done lazily, the first
metered call of each encoding paid it. Only the encodings of configured models
are loaded (o200k_base alone is ~40 MB). It runs on the event loop's thread
before ``/readyz`` answers: that costs readiness the loading time, but the
gateway measured ~146 MB after ``benchmarks/proxy_bench.py``'s load instead of
~152 MB when a worker thread loaded them after start-up, and a replica reports
ready only once no call has to wait for a tokenizer.

Loading builds each encoding's rank table as a Python dict first (tens of MB,
dropped at once), and the parsed cost map is not needed once the registry has
priced every configured model. Both are released, and glibc is asked to
return the freed pages (``malloc_trim``), so that the gateway's resident size
is what it keeps, not what it once parsed. That is done once per process: a
later start finds the encodings loaded and has nothing to release.

Then ``gc.freeze()`` moves everything alive (the app, the routes, the
settings) out of the collector's reach: a full collection that traversed them
took 50-120 ms, every few seconds under load, and was the gateway's slowest
percentile.
"""

import ctypes
import gc
import logging

from pricing import PricingError, count_text_tokens, load_cost_map
from pricing.tokens import get_encoding
from proxy.model_registry import ModelRegistry

logger = logging.getLogger("spu.warmup")


def _load_tokenizers(registry: ModelRegistry) -> None:
    for model in registry.all():
        try:
            count_text_tokens("warm-up", model.route.provider_model)
        except PricingError as error:
            logger.warning("no tokenizer for %s yet: %s", model.name, error)


def release_free_memory() -> None:
    """Collect garbage, then return free heap pages to the OS where the C library can."""
    gc.collect()
    # glibc keeps freed memory mapped for reuse; malloc_trim unmaps it. Other C
    # libraries (musl, macOS) have no such call and return memory on their own terms.
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if trim is not None:
        trim(0)


def warm_up(registry: ModelRegistry) -> None:
    first_start = get_encoding.cache_info().currsize == 0
    if first_start:
        load_cost_map.cache_clear()
    _load_tokenizers(registry)
    if first_start:
        release_free_memory()
    gc.freeze()
