"""``spu orgs``: create, list and show organizations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from proxy.cli.common import command_group, console, fail, load_settings, run, when

if TYPE_CHECKING:
    from rich.table import Table

    from ledger import Balance, LedgerStore
    from ledger.models import Account

app = command_group("Create, list and show organizations.")

MAX_LIST = 1000


def balance_table(balance: Balance) -> Table:
    from rich.table import Table

    from ledger import format_spus

    account = balance.account
    table = Table("bucket", "total", "used", "left", title=f"{account.org_id}: SPU buckets")
    for name, total, used in (
        ("subscription", account.subscription_allowance_units, account.subscription_used_units),
        ("purchased", account.purchased_credits_units, account.purchased_used_units),
        ("granted", account.granted_credits_units, account.granted_used_units),
    ):
        table.add_row(name, format_spus(total), format_spus(used), format_spus(total - used))
    return table


def _describe(balance: Balance) -> None:
    from ledger import format_spus

    account = balance.account
    console().print(balance_table(balance))
    console().print(
        f"available {format_spus(balance.available_units)} SPUs"
        f" (held {format_spus(balance.held_units)}, debt {format_spus(account.debt_units)})"
    )
    plan = f"plan {account.subscription_type}"
    if account.period_start is not None:
        plan += f", period {when(account.period_start)} – {when(account.period_end)} UTC"
    console().print(plan)


@app.command("create")
def create(
    org_id: Annotated[str, typer.Argument(help="Your stable id for the organization.")],
    name: Annotated[str | None, typer.Option(help="Contact name.")] = None,
    email: Annotated[str | None, typer.Option(help="Contact email.")] = None,
    user_id: Annotated[str | None, typer.Option(help="Your user id for the owner.")] = None,
) -> None:
    """Create an organization with the free-tier grant (an existing one is left unchanged).

    On a fresh machine this creates the ledger too, and says so.
    """
    from ledger import spus_to_units
    from proxy.org_admin import create_organization

    settings = load_settings()

    async def work(store: LedgerStore) -> tuple[Balance, bool]:
        _, created = await create_organization(
            store,
            org_id,
            free_grant_units=spus_to_units(settings.free_grant_spus),
            user_id=user_id,
            user_name=name,
            user_email=email,
        )
        return await store.balance(org_id), created

    try:
        balance, created = run(settings, work, may_create_ledger=True)
    except ValueError as error:
        fail(str(error))
    console().print(f"{'Created' if created else 'Already exists:'} organization {org_id}")
    _describe(balance)


@app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIST, help="How many to show.")] = 100,
    after: Annotated[str, typer.Option(help="Start after this org id.")] = "",
) -> None:
    """Organizations in id order, with what each bucket has left (holds not counted)."""
    from rich.table import Column, Table

    from ledger import format_spus

    async def work(store: LedgerStore) -> list[Account]:
        return await store.list_accounts(limit=limit, after_org_id=after)

    accounts = run(load_settings(), work)
    table = Table(
        Column("org", no_wrap=True),
        "plan",
        "allowance left",
        "purchased left",
        "granted left",
        Column("created", no_wrap=True),
    )
    for account in accounts:
        table.add_row(
            account.org_id,
            account.subscription_type,
            format_spus(account.subscription_left_units),
            format_spus(account.purchased_left_units),
            format_spus(account.granted_left_units),
            when(account.created_at),
        )
    console().print(table)
    if len(accounts) == limit:
        console().print(f"More may follow: --after {accounts[-1].org_id}")


@app.command("show")
def show(org_id: Annotated[str, typer.Argument(help="The organization's id.")]) -> None:
    """One organization's buckets, holds, debt, plan and access keys."""

    async def work(store: LedgerStore) -> tuple[Balance, int]:
        balance = await store.balance(org_id)
        keys = await store.list_access_keys(org_id)
        return balance, sum(1 for key in keys if key.revoked_at is None)

    balance, active_keys = run(load_settings(), work)
    account = balance.account
    console().print(
        f"Organization {org_id}" + (f" ({account.user_name})" if account.user_name else "")
    )
    _describe(balance)
    console().print(f"{active_keys} active access keys")
