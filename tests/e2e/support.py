"""What the gateway e2e tests share: test settings, seeded orgs, ledger waits, expected prices."""

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from ledger import LedgerStore, UsageRecord, spus_to_units
from proxy.auth import issue_token
from proxy.settings import ModelRoute, Settings

CHAT_MODEL = "gpt-4o-mini"
CHAT_KEY_ENV = "FAKE_UPSTREAM_KEY"
"""The chat model's ``api_key_env``; set for every gateway ``start_gateway`` starts."""
EMBEDDING_MODEL = "text-embedding-3-small"
INPUT_USD_PER_TOKEN = Decimal("0.00000015")
OUTPUT_USD_PER_TOKEN = Decimal("0.0000006")
MARKUP = Decimal("0.25")
USD_PER_SPU = Decimal("0.01")
UPSTREAM_TIMEOUT_S = 1.0
WAIT_FOR_LEDGER_S = 5.0


@dataclass(frozen=True, slots=True)
class RunningGateway:
    url: str
    settings: Settings

    def client(self, token: str) -> AsyncOpenAI:
        return AsyncOpenAI(base_url=f"{self.url}/v1", api_key=token, max_retries=0, timeout=10.0)


@dataclass(frozen=True, slots=True)
class Org:
    org_id: str
    token: str
    key_id: str


StartGateway = Callable[..., RunningGateway]


def gateway_settings(ledger_path: Path, upstream_url: str, **overrides: Any) -> Settings:
    routes = [
        ModelRoute(
            model_name=CHAT_MODEL,
            provider_model=CHAT_MODEL,
            api_base=f"{upstream_url}/v1",
            api_key_env=CHAT_KEY_ENV,
            input_cost_per_token=INPUT_USD_PER_TOKEN,
            output_cost_per_token=OUTPUT_USD_PER_TOKEN,
        ),
        ModelRoute(
            model_name=EMBEDDING_MODEL,
            provider_model=EMBEDDING_MODEL,
            api_base=f"{upstream_url}/v1",
        ),
    ]
    values: dict[str, Any] = {
        "ledger_url": f"sqlite:///{ledger_path}",
        "model_list": routes,
        "demo_model": False,
        "markup": MARKUP,
        "usd_per_spu": USD_PER_SPU,
        "upstream_timeout_s": UPSTREAM_TIMEOUT_S,
        "upstream_connect_timeout_s": UPSTREAM_TIMEOUT_S,
        "token_cache_ttl_s": 0.0,
        "shutdown_grace_s": WAIT_FOR_LEDGER_S,
    }
    values.update(overrides)
    return Settings(**values)


async def new_org(store: LedgerStore, spus: Decimal | int = 100, **token_options: Any) -> Org:
    org_id = f"org_{uuid.uuid4().hex[:12]}"
    await store.create_account(org_id, free_grant_units=spus_to_units(Decimal(spus)))
    token, key = await issue_token(store, org_id, **token_options)
    return Org(org_id=org_id, token=token, key_id=key.key_id)


async def wait_for_records(store: LedgerStore, org_id: str, count: int) -> list[UsageRecord]:
    """Streams settle after the response ends: poll (bounded) until ``count`` records exist."""
    deadline = asyncio.get_running_loop().time() + WAIT_FOR_LEDGER_S
    while True:
        records = await store.usage_records(org_id, limit=max(count, 1) + 10)
        if len(records) >= count or asyncio.get_running_loop().time() > deadline:
            return records
        await asyncio.sleep(0.02)


async def wait_for_no_holds(store: LedgerStore, org_id: str) -> int:
    """Held units once every hold of the org has ended (or the wait ran out)."""
    deadline = asyncio.get_running_loop().time() + WAIT_FOR_LEDGER_S
    while True:
        held = (await store.balance(org_id)).held_units
        if held == 0 or asyncio.get_running_loop().time() > deadline:
            return held
        await asyncio.sleep(0.02)


def expected_units(prompt_tokens: int, completion_tokens: int) -> int:
    """SPU units for a call, worked out here from the configured rates, not by ``pricing``."""
    cost_usd = prompt_tokens * INPUT_USD_PER_TOKEN + completion_tokens * OUTPUT_USD_PER_TOKEN
    units = cost_usd * (1 + MARKUP) / USD_PER_SPU * 1_000_000
    return int(units.to_integral_value(rounding="ROUND_CEILING"))


def affordable_output_tokens(available_units: int, prompt_tokens: int) -> int:
    """Largest max_tokens whose worst case fits, searched here independently of ``pricing``."""
    tokens = 0
    while expected_units(prompt_tokens, tokens + 1) <= available_units:
        tokens += 1
    return tokens


def expected_cost_pico_usd(prompt_tokens: int, completion_tokens: int) -> int:
    cost_usd = prompt_tokens * INPUT_USD_PER_TOKEN + completion_tokens * OUTPUT_USD_PER_TOKEN
    return int((cost_usd * 10**12).to_integral_value(rounding="ROUND_CEILING"))
