"""The usage page in real headless Chromium: the figures it shows are the ledger's, and the
chart is drawn.

An org is seeded with an Enterprise plan, purchased and granted credits, and
calls on several days and models (written through a store on a hand-moved
clock, so they land on past days), plus one real call through the gateway.
The gateway runs under uvicorn in a thread; Debian's ``chromium`` is driven by
Playwright. A screenshot is saved to ``test-artifacts/usage-page.png``.
"""

import asyncio
import shutil
from collections import defaultdict
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright
from pydantic import SecretStr

from ledger import (
    Balance,
    BudgetPeriod,
    KeyLimits,
    LedgerStore,
    Subscription,
    UsageDetails,
    UsageRecord,
    format_spus,
    spus_to_units,
    units_to_spus,
)
from ledger.sqlite import SqliteLedger
from ledger.verify import verify
from proxy.app import create_app
from proxy.auth import issue_token
from proxy.settings import Settings
from proxy.usage.summary import days_left
from tests.fakes.server import serve_in_thread

T = TypeVar("T")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ORG_ID = "acme-browser"
ADMIN_TOKEN = "admin-secret-for-browser-tests"
FIRST_BAR_RGB = (37, 99, 235)
"""The chart's first series colour (#2563eb), looked for in the drawn pixels."""
PAGE_TIMEOUT_MS = 15_000

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason="needs Debian's chromium at /usr/bin/chromium (scripts/test.sh installs it)",
)

SEEDED_CALLS: list[tuple[int, str, str]] = [
    (4, "model-a", "20"),
    (2, "model-b", "15"),
    (1, "model-a", "10"),
    (0, "model-b", "12.5"),
    (0, "model-a", "3.25"),
]
"""(days ago, model, SPUs): 60.75 SPUs, so the 50-SPU allowance is spent and purchases begin."""


class MovableClock:
    def __init__(self) -> None:
        self.now_s = datetime.now(UTC).timestamp()

    def __call__(self) -> float:
        return self.now_s


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Run ledger work on its own loop in a thread: Playwright's sync API owns this thread's."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result()


@dataclass(frozen=True)
class Seeded:
    url: str
    token: str
    ledger_path: Path


async def seed(ledger_path: Path) -> str:
    now = datetime.now(UTC)
    clock = MovableClock()
    store = SqliteLedger(ledger_path, clock=clock)
    await store.open()
    try:
        clock.now_s = (now - timedelta(days=6)).timestamp()
        await store.create_account(ORG_ID, free_grant_units=spus_to_units(100))
        period_start = now - timedelta(days=5)
        await store.set_subscription(
            ORG_ID,
            Subscription(
                tier="enterprise",
                allowance_units=spus_to_units(50),
                status="active",
                period_start=period_start,
                period_end=period_start + timedelta(days=30),
                as_of=period_start,
                renews_locally=True,
            ),
        )
        await store.credit_purchase("cs_browser_test", ORG_ID, spus_to_units(20))
        for number, (days_ago, model, spus) in enumerate(SEEDED_CALLS):
            clock.now_s = (now - timedelta(days=days_ago, minutes=5)).timestamp()
            units = spus_to_units(spus)
            request_id = f"req_seeded_{number}"
            await store.hold(ORG_ID, units, request_id, ttl_s=60)
            details = UsageDetails(
                model=model,
                provider="demo",
                prompt_tokens=1000 + number,
                completion_tokens=200 + number,
                total_tokens=1200 + 2 * number,
                cost_pico_usd=units * 8_000,
            )
            await store.settle(request_id, units, details)
        token, _ = await issue_token(store, ORG_ID, name="browser")
        await issue_token(
            store,
            ORG_ID,
            name="batch-jobs",
            limits=KeyLimits(spus_to_units(25), BudgetPeriod.WEEK, rpm=60),
        )
        await store.set_alerts(ORG_ID, "https://hooks.example.test/spu", [spus_to_units(10)], "x")
        return token
    finally:
        await store.close()


async def read_ledger(ledger_path: Path) -> tuple[Balance, list[UsageRecord]]:
    store = SqliteLedger(ledger_path)
    await store.open()
    try:
        return await store.balance(ORG_ID), await store.usage_records(ORG_ID, limit=100)
    finally:
        await store.close()


async def verify_ledger(ledger_path: Path) -> list[str]:
    store: LedgerStore = SqliteLedger(ledger_path)
    await store.open()
    try:
        return (await verify(store))[1]
    finally:
        await store.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    ledger_path = tmp_path_factory.mktemp("browser") / "ledger.db"
    token = run_async(seed(ledger_path))
    settings = Settings(
        ledger_url=f"sqlite:///{ledger_path}", admin_token=SecretStr(ADMIN_TOKEN), demo_model=True
    )
    with serve_in_thread(create_app(settings)) as url:
        answer = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "spu-demo", "messages": [{"role": "user", "content": "Hello!"}]},
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        yield Seeded(url=url, token=token, ledger_path=ledger_path)
    assert run_async(verify_ledger(ledger_path)) == []


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(PAGE_TIMEOUT_MS)
    yield opened
    context.close()


def sign_in(page: Page, seeded: Seeded, token: str) -> None:
    page.goto(f"{seeded.url}/usage")
    page.fill("#token-input", token)
    page.click("#token-form button[type=submit]")


def wait_ready(page: Page) -> None:
    page.wait_for_selector("body[data-state=ready]")


def chart_state(page: Page) -> dict[str, Any]:
    """What Chart.js holds, and how many canvas pixels carry the first series' colour."""
    state: dict[str, Any] = page.evaluate(
        """([r, g, b]) => {
            const canvas = document.getElementById("daily-chart");
            const chart = Chart.getChart(canvas);
            const pixels = canvas.getContext("2d")
                .getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 0; i < pixels.length; i += 4) {
                if (pixels[i] === r && pixels[i + 1] === g && pixels[i + 2] === b) painted++;
            }
            return {
                labels: chart.data.labels,
                datasets: chart.data.datasets.map((d) => ({label: d.label, data: d.data})),
                painted,
            };
        }""",
        list(FIRST_BAR_RGB),
    )
    return state


def test_the_page_shows_the_ledgers_buckets_period_calls_and_chart(
    page: Page, seeded: Seeded
) -> None:
    sign_in(page, seeded, seeded.token)
    wait_ready(page)
    balance, records = run_async(read_ledger(seeded.ledger_path))
    account = balance.account
    text = page.inner_text

    assert text("#org-id") == ORG_ID
    assert text("#allowance-used") == format_spus(account.subscription_used_units) == "50"
    assert text("#allowance-left") == format_spus(account.subscription_left_units) == "0"
    assert text("#allowance-total") == "50"
    assert text("#purchased-left") == format_spus(account.purchased_left_units)
    assert text("#granted-left") == format_spus(account.granted_left_units) == "100"
    assert text("#available") == format_spus(balance.available_units)
    assert text("#days-left") == f"{days_left(account, datetime.now(UTC))} days left"
    assert text("#plan-tier") == "enterprise"

    [limited] = page.locator("#key-limits tbody tr").all()
    assert limited.locator("td").all_inner_texts()[:4] == ["batch-jobs", "25 per week", "0", "25"]
    assert limited.locator("td").all_inner_texts()[5:] == ["60", "–"]
    assert text("#alerts-state") == "Low-balance alerts: on, below 10 SPUs and when depleted."
    assert text("#recharge-state") == "Auto-recharge: off."

    rows = page.locator("#recent-calls tbody tr")
    assert rows.count() == len(records) == len(SEEDED_CALLS) + 1
    newest = records[0]
    assert rows.nth(0).get_attribute("data-request-id") == newest.request_id
    cells = rows.nth(0).locator("td").all_inner_texts()
    assert cells[1:] == [
        newest.details.model,
        str(newest.details.prompt_tokens),
        str(newest.details.completion_tokens),
        cells[4],
        format_spus(newest.charged_units),
    ]

    assert account.period_start is not None
    expected: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for record in records:
        day = record.created_at.date().isoformat()
        expected[record.details.model][day] += units_to_spus(record.charged_units)
    chart = chart_state(page)
    assert chart["labels"][0] == account.period_start.date().isoformat()
    assert len(chart["labels"]) == 31
    assert [dataset["label"] for dataset in chart["datasets"]] == sorted(expected)
    for dataset in chart["datasets"]:
        drawn = {
            day: value for day, value in zip(chart["labels"], dataset["data"], strict=True) if value
        }
        wanted = {day: float(spus) for day, spus in expected[dataset["label"]].items()}
        assert drawn == pytest.approx(wanted)
    assert chart["painted"] > 100

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "usage-page.png"), full_page=True)


def test_a_signed_link_opens_the_page_without_billing_buttons(page: Page, seeded: Seeded) -> None:
    link = httpx.post(
        f"{seeded.url}/v1/usage/link", headers={"authorization": f"Bearer {seeded.token}"}
    ).json()["url"]
    fragment = link.split("#", 1)[1]

    page.goto(f"{seeded.url}/usage#{fragment}")
    wait_ready(page)

    assert page.inner_text("#org-id") == ORG_ID
    assert page.evaluate("() => window.location.hash") == ""
    assert page.is_hidden("#billing-actions")
    assert page.is_hidden("#sign-in")


def test_a_wrong_token_is_refused_and_nothing_is_shown(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded, "spu_not-a-real-token")
    page.wait_for_selector("body[data-state=signed-out] #sign-in-error:not(:empty)")

    assert "Invalid access token" in page.inner_text("#sign-in-error")
    assert page.is_hidden("#usage")
    assert page.evaluate("() => sessionStorage.length") == 0


def test_with_stripe_the_buy_button_opens_checkout_for_the_chosen_spus(
    page: Page, seeded: Seeded
) -> None:
    checkout_bodies: list[Any] = []

    def stripe_on(route: Route) -> None:
        route.fulfill(json={"stripe": True})

    def checkout(route: Route) -> None:
        checkout_bodies.append(route.request.post_data_json)
        route.fulfill(json={"url": f"{seeded.url}/usage?checkout=done"})

    page.route("**/v1/usage/config", stripe_on)
    page.route("**/billing/checkout/credits", checkout)
    sign_in(page, seeded, seeded.token)
    wait_ready(page)
    assert page.is_visible("#manage-subscription")

    page.fill("#buy-spus", "2500")
    with page.expect_navigation():
        page.click("#buy-credits")

    assert checkout_bodies == [{"spus": 2500}]
    assert page.url.endswith("/usage?checkout=done")
