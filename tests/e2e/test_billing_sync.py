"""Reconciliation: missed webhooks heal at start-up and by ``spu stripe sync``;
``spu stripe check`` lists what is wrong with the catalogue."""

import asyncio
from pathlib import Path

import respx
from typer.testing import CliRunner

from ledger import UNITS_PER_SPU, Account
from ledger.sqlite import SqliteLedger
from proxy.cli import app as cli_app
from tests.fakes.stripe_api import FakeStripe
from tests.fakes.stripe_harness import (
    PRODUCT_TAG,
    SECRET_KEY,
    running_gateway,
    seed_catalogue,
)

SPU = UNITS_PER_SPU


async def purchases_without_webhooks(fake: FakeStripe, ledger_path: Path) -> None:
    """The org buys credits and a plan while every webhook is lost."""
    async with running_gateway(fake, ledger_path) as harness:
        auth = await harness.new_org("org-a")
        credits = await harness.client.post(
            "/billing/checkout/credits", json={"spus": 1000}, headers=auth
        )
        plan = await harness.client.post(
            "/billing/checkout/subscription", json={"tier": "individual"}, headers=auth
        )
        fake.complete_checkout(credits.json()["id"])
        fake.complete_checkout(plan.json()["id"])
        assert (await harness.account("org-a")).purchased_credits_units == 0


def assert_healed(account: Account) -> None:
    assert account.purchased_credits_units == 1000 * SPU
    assert (account.subscription_type, account.subscription_status) == ("individual", "active")
    assert account.subscription_allowance_units == 5000 * SPU


async def test_missed_webhooks_heal_when_the_gateway_starts(tmp_path: Path) -> None:
    fake = FakeStripe()
    seed_catalogue(fake)
    await purchases_without_webhooks(fake, tmp_path / "ledger.db")

    async with running_gateway(fake, tmp_path / "ledger.db") as restarted:
        assert restarted.billing.startup is not None
        report = restarted.billing.startup.result()
        healed = await restarted.account("org-a")
    async with running_gateway(fake, tmp_path / "ledger.db") as again:
        second = again.billing.startup.result() if again.billing.startup else None

    assert_healed(healed)
    assert report is not None and (report.orgs, report.sessions_credited) == (1, 1)
    assert second is not None and second.sessions_credited == 0


def run_cli(fake: FakeStripe, ledger_path: Path, *args: str) -> tuple[int, str]:
    env = {
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_PRODUCT_TAG": PRODUCT_TAG,
        "SPU_LEDGER_URL": f"sqlite:///{ledger_path}",
    }
    with respx.mock(assert_all_called=False) as router:
        fake.install(router)
        result = CliRunner().invoke(cli_app, ["stripe", *args], env=env)
    return result.exit_code, result.output


async def read_account(ledger_path: Path, org_id: str) -> Account:
    store = SqliteLedger(ledger_path)
    await store.open()
    try:
        return await store.get_account(org_id)
    finally:
        await store.close()


def test_stripe_sync_command_heals_missed_webhooks(tmp_path: Path) -> None:
    fake = FakeStripe()
    seed_catalogue(fake)
    ledger_path = tmp_path / "ledger.db"
    asyncio.run(purchases_without_webhooks(fake, ledger_path))

    code, output = run_cli(fake, ledger_path, "sync")

    assert code == 0, output
    assert "1 org(s) synced, 1 session(s) credited" in output
    assert_healed(asyncio.run(read_account(ledger_path, "org-a")))


def test_stripe_check_command_describes_a_sound_catalogue(tmp_path: Path) -> None:
    fake = FakeStripe()
    seeded = seed_catalogue(fake)

    code, output = run_cli(fake, tmp_path / "ledger.db", "check")

    assert code == 0, output
    assert f"product: {seeded.product['id']}" in output
    assert f"plan individual: {seeded.individual['id']}, 5000 SPUs per month" in output
    assert f"credits: {seeded.credit['id']}, 100 usd per 100 SPUs" in output
    assert "0 issue(s)" in output


def test_stripe_check_command_lists_every_issue_and_fails(tmp_path: Path) -> None:
    fake = FakeStripe()
    product = fake.add_product({"product": PRODUCT_TAG, "markup": "cheap"})
    missing = fake.add_price(
        product["id"],
        unit_amount=2000,
        interval="month",
        metadata={"price_type": "base", "tier": "team"},
    )
    recurring_credit = fake.add_price(
        product["id"], unit_amount=100, interval="month", metadata={"price_type": "credit"}
    )

    code, output = run_cli(fake, tmp_path / "ledger.db", "check")

    assert code == 1
    assert f"ISSUE: price {missing['id']}: metadata 'included_spus' is missing" in output
    assert f"ISSUE: price {recurring_credit['id']}: a credit price must be one-time" in output
    assert "metadata markup='cheap' must be 0 or more; ignored" in output


def test_stripe_commands_refuse_to_run_without_a_key(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["stripe", "check"], env={"STRIPE_SECRET_KEY": ""})

    assert result.exit_code == 2
    assert "local-only mode" in result.output
