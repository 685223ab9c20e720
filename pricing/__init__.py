"""What things cost: tokens → provider cost (pico-USD) → SPUs, and the worst case before a call.

Pure functions plus two read-once loaders (litellm's cost map and tiktoken's
encodings, from the copies in ``pricing/data``). It depends only on ``ledger``
for its unit; it knows nothing of HTTP or storage.
"""

from pricing.cost import PICO_USD_PER_USD, cost_pico_usd, cost_usd
from pricing.costmap import ModelRates, RateOverride, cost_map_path, load_cost_map, resolve_rates
from pricing.errors import InvalidTokenCounts, PricingError, TokenizerUnavailable, UnknownModelPrice
from pricing.estimate import (
    affordable_max_tokens,
    worst_case_cost_pico_usd,
    worst_case_input_rate,
    worst_case_units,
)
from pricing.prompts import (
    PromptTokens,
    anthropic_prompt_tokens,
    chat_prompt_tokens,
    count_anthropic_prompt_tokens,
    count_chat_prompt_tokens,
    image_tokens_bound,
    texts_prompt_tokens,
)
from pricing.spus import PricingPolicy, max_cost_for_units, units_for_cost
from pricing.token_counts import (
    MAX_TOKEN_COUNT,
    TokenCounts,
    counts_from_anthropic,
    counts_from_openai,
)
from pricing.tokens import count_text_tokens, encoding_name_for_model

__all__ = [
    "MAX_TOKEN_COUNT",
    "PICO_USD_PER_USD",
    "InvalidTokenCounts",
    "ModelRates",
    "PricingError",
    "PricingPolicy",
    "PromptTokens",
    "RateOverride",
    "TokenCounts",
    "TokenizerUnavailable",
    "UnknownModelPrice",
    "affordable_max_tokens",
    "anthropic_prompt_tokens",
    "chat_prompt_tokens",
    "cost_map_path",
    "cost_pico_usd",
    "cost_usd",
    "count_anthropic_prompt_tokens",
    "count_chat_prompt_tokens",
    "count_text_tokens",
    "counts_from_anthropic",
    "counts_from_openai",
    "encoding_name_for_model",
    "image_tokens_bound",
    "load_cost_map",
    "max_cost_for_units",
    "resolve_rates",
    "texts_prompt_tokens",
    "units_for_cost",
    "worst_case_cost_pico_usd",
    "worst_case_input_rate",
    "worst_case_units",
]
