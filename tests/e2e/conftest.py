"""The gateway under a real uvicorn, the fake upstream beside it, and a ledger to check both.

Each test gets its own gateway (its own SQLite file, settings and worker state)
talking to one session-wide fake upstream whose knobs are reset before every
test. The test reads and seeds the same SQLite file through its own store, as
a second worker process would, and the ledger must verify clean afterwards.

The Stripe tests instead drive an in-process gateway whose Stripe is ``FakeStripe``
(``harness``, on the seeded catalogue).
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ledger import LedgerStore
from ledger.sqlite import SqliteLedger
from ledger.verify import verify
from proxy.app import create_app
from tests.e2e.anthropic_support import UPSTREAM_KEY, UPSTREAM_KEY_ENV, anthropic_routes
from tests.e2e.responses_support import native_route
from tests.e2e.support import (
    CHAT_KEY_ENV,
    Org,
    RunningGateway,
    StartGateway,
    gateway_settings,
    new_org,
)
from tests.fakes.server import serve_in_thread
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.stripe_harness import (
    BillingHarness,
    SeededCatalogue,
    running_gateway,
    seed_catalogue,
)
from tests.fakes.upstream import FakeUpstream


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[tuple[FakeUpstream, str]]:
    fake = FakeUpstream()
    with serve_in_thread(fake) as url:
        yield fake, url


@pytest.fixture
def upstream(upstream_server: tuple[FakeUpstream, str]) -> FakeUpstream:
    """The fake provider, its knobs back at their defaults."""
    fake, _ = upstream_server
    fake.reset()
    return fake


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
async def store(ledger_path: Path) -> AsyncIterator[LedgerStore]:
    """The test's own handle on the gateway's ledger file; verified clean after the test."""
    ledger = SqliteLedger(ledger_path)
    await ledger.open()
    try:
        yield ledger
        _, violations = await verify(ledger)
        assert violations == [], violations
    finally:
        await ledger.close()


@pytest.fixture
def start_gateway(
    ledger_path: Path,
    upstream_server: tuple[FakeUpstream, str],
    upstream: FakeUpstream,
    store: LedgerStore,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[StartGateway]:
    """Start gateways with settings overrides (and optionally a wrapped store).

    Each is stopped, its detached settlements drained, before the ledger is verified.
    The chat model's upstream key is set: without it the gateway refuses its calls.
    """
    _, upstream_url = upstream_server
    monkeypatch.setenv(CHAT_KEY_ENV, "sk-fake-upstream-key")
    with ExitStack() as stack:

        def start(*, ledger: LedgerStore | None = None, **overrides: Any) -> RunningGateway:
            settings = gateway_settings(ledger_path, upstream_url, **overrides)
            url = stack.enter_context(serve_in_thread(create_app(settings, store=ledger)))
            return RunningGateway(url=url, settings=settings)

        yield start


@pytest.fixture
def gateway(start_gateway: StartGateway) -> RunningGateway:
    return start_gateway()


@pytest.fixture
def agents_gateway(
    start_gateway: StartGateway,
    upstream_server: tuple[FakeUpstream, str],
    monkeypatch: pytest.MonkeyPatch,
) -> RunningGateway:
    """What agents are pointed at: the demo model, an OpenAI-format model whose upstream (the
    fake) serves the Responses API itself, and Claude models on the fake's Messages API."""
    monkeypatch.setenv(UPSTREAM_KEY_ENV, UPSTREAM_KEY)
    routes = [native_route(upstream_server[1]), *anthropic_routes(upstream_server[1])]
    return start_gateway(model_list=routes, demo_model=True)


@pytest.fixture
async def org(store: LedgerStore) -> Org:
    """A fresh org with the default 100 SPUs and one access token."""
    return await new_org(store)


@pytest.fixture
def fake() -> FakeStripe:
    """Stripe's API as the billing tests see it."""
    return FakeStripe()


@pytest.fixture
def seeded(fake: FakeStripe) -> SeededCatalogue:
    return seed_catalogue(fake)


@pytest.fixture
async def harness(
    fake: FakeStripe, seeded: SeededCatalogue, tmp_path: Path
) -> AsyncIterator[BillingHarness]:
    async with running_gateway(fake, tmp_path / "ledger.db") as running:
        yield running
