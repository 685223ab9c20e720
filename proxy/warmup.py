"""After start-up: load the tokenizers off the request path, then freeze the heap for the GC.

Loading a tiktoken encoding takes about half a second; done lazily, the first
metered call of each encoding paid it. Done before ``/readyz`` it would delay
readiness by as much, so it runs in a thread once the gateway serves.

Then ``gc.freeze()`` moves everything alive (the cost map, the tokenizers'
rank tables, the app) out of the collector's reach: a full collection that
traversed them took 50-120 ms, every few seconds under load, and was the
gateway's slowest percentile.
"""

import asyncio
import gc
import logging

from pricing import PricingError, count_text_tokens
from proxy.model_registry import ModelRegistry

logger = logging.getLogger("spu.warmup")


def _load_tokenizers(registry: ModelRegistry) -> None:
    for model in registry.all():
        try:
            count_text_tokens("warm-up", model.route.provider_model)
        except PricingError as error:
            logger.warning("no tokenizer for %s yet: %s", model.name, error)


async def warm_up(registry: ModelRegistry) -> None:
    await asyncio.to_thread(_load_tokenizers, registry)
    gc.freeze()
