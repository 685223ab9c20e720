"""After start-up: load the tokenizers off the request path, return spare memory, freeze the heap.

Loading a tiktoken encoding takes about half a second; done lazily, the first
metered call of each encoding paid it. Done before ``/readyz`` it would delay
readiness by as much, so it runs in a thread once the gateway serves. Only the
encodings of configured models are loaded (o200k_base alone is ~40 MB).

Loading builds each encoding's rank table as a Python dict first (tens of MB,
dropped at once); the parsed cost map is not needed once the registry has
priced every configured model. Both are released, and glibc is asked to
return the freed pages (``malloc_trim``), so that the gateway's resident size
is what it keeps, not what it once parsed.

Then ``gc.freeze()`` moves everything alive (the app, the routes, the
settings) out of the collector's reach: a full collection that traversed them
took 50-120 ms, every few seconds under load, and was the gateway's slowest
percentile.
"""

import asyncio
import ctypes
import gc
import logging

from pricing import PricingError, count_text_tokens, load_cost_map
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


def _warm(registry: ModelRegistry) -> None:
    load_cost_map.cache_clear()
    release_free_memory()
    _load_tokenizers(registry)
    release_free_memory()


async def warm_up(registry: ModelRegistry) -> None:
    await asyncio.to_thread(_warm, registry)
    gc.freeze()
