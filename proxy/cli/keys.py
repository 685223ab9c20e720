"""``spu keys``: issue (shown once), list, limit and revoke an organization's access tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from proxy.cli.common import command_group, console, fail, load_settings, run, when

if TYPE_CHECKING:
    from ledger import AccessKey, KeyBudgetUse, KeyLimits, LedgerStore

app = command_group("Issue, list, limit and revoke access tokens.")


class Period(StrEnum):
    """``ledger.BudgetPeriod``'s values, spelled here so that ``--help`` loads no ledger."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    TOTAL = "total"


NO_LIMIT = "none"

OrgId = Annotated[str, typer.Argument(help="The organization's id.")]


@app.command("create")
def create(
    org_id: OrgId,
    name: Annotated[str | None, typer.Option(help="A label, e.g. the app using it.")] = None,
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, help="Expire after this many days (default: never).")
    ] = None,
) -> None:
    """Issue an access token. It is printed this once: only its hash is stored."""
    from proxy.auth import issue_token

    expires_at = None
    if expires_in_days is not None:
        expires_at = datetime.now(UTC) + timedelta(days=expires_in_days)

    async def work(store: LedgerStore) -> tuple[str, AccessKey]:
        await store.get_account(org_id)
        return await issue_token(store, org_id, name=name, expires_at=expires_at)

    token, key = run(load_settings(), work)
    console().print(f"Issued {key.key_id} for {org_id}. The token is shown only now:")
    console().print(token)


def _per(period: str) -> str:
    return "in total" if period == Period.TOTAL else f"per {period}"


def _budget_text(key: AccessKey, use: KeyBudgetUse | None) -> str:
    from ledger import format_spus

    limits = key.limits
    if limits.budget_units is None:
        return ""
    spent = "" if use is None else f"{format_spus(use.spent_units + use.held_units)} of "
    return f"{spent}{format_spus(limits.budget_units)} {_per(limits.budget_period.value)}"


@app.command("list")
def list_(org_id: OrgId) -> None:
    """An organization's keys: id, prefix, name, limits (the budget as used of allowed per
    window, held calls included), created, expiry and revocation."""
    from rich.table import Column, Table

    async def work(store: LedgerStore) -> tuple[list[AccessKey], list[KeyBudgetUse]]:
        await store.get_account(org_id)
        return await store.list_access_keys(org_id), await store.key_budget_use(org_id)

    keys, budgets = run(load_settings(), work)
    used = {use.key_id: use for use in budgets}
    table = Table(
        Column("key", no_wrap=True),
        Column("prefix", no_wrap=True),
        "name",
        "budget",
        "rpm",
        "tpm",
        Column("created", no_wrap=True),
        "expires",
        "revoked",
    )
    for key in keys:
        table.add_row(
            key.key_id,
            key.prefix + "…",
            key.name or "",
            _budget_text(key, used.get(key.key_id)),
            "" if key.limits.rpm is None else str(key.limits.rpm),
            "" if key.limits.tpm is None else str(key.limits.tpm),
            when(key.created_at),
            when(key.expires_at),
            when(key.revoked_at),
        )
    console().print(table)


@app.command("limit")
def limit(
    org_id: OrgId,
    key_id: Annotated[str, typer.Argument(help="The key's id.")],
    budget: Annotated[
        str | None,
        typer.Option(help="SPUs the key may spend per window, or 'none' to remove the budget."),
    ] = None,
    period: Annotated[
        Period | None, typer.Option(help="The budget window, from the key's creation (UTC).")
    ] = None,
    rpm: Annotated[
        int | None, typer.Option(min=0, help="Calls per minute; 0 removes the limit.")
    ] = None,
    tpm: Annotated[
        int | None, typer.Option(min=0, help="Tokens per minute; 0 removes the limit.")
    ] = None,
) -> None:
    """Set a key's budget, budget window, rpm and tpm; options left out keep their value."""
    from dataclasses import replace

    from ledger import BudgetPeriod, format_spus, spus_to_units

    budget_units: int | None = None
    if budget is not None and budget.lower() != NO_LIMIT:
        try:
            budget_units = spus_to_units(budget)
        except (ValueError, ArithmeticError):
            fail(f"--budget must be a number of SPUs or '{NO_LIMIT}', not {budget!r}")
        if budget_units < 0:
            fail("--budget cannot be negative")

    def changed(current: KeyLimits) -> KeyLimits:
        limits = current
        if budget is not None:
            limits = replace(limits, budget_units=budget_units)
        if period is not None:
            limits = replace(limits, budget_period=BudgetPeriod(period.value))
        if rpm is not None:
            limits = replace(limits, rpm=rpm or None)
        if tpm is not None:
            limits = replace(limits, tpm=tpm or None)
        return limits

    async def work(store: LedgerStore) -> AccessKey | None:
        await store.get_account(org_id)
        keys = await store.list_access_keys(org_id)
        current = next((k for k in keys if k.key_id == key_id), None)
        if current is None:
            return None
        return await store.set_key_limits(org_id, key_id, changed(current.limits))

    key = run(load_settings(), work)
    if key is None:
        fail(f"no key '{key_id}' for organization '{org_id}'")
    limits = key.limits
    budget_text = (
        "no budget"
        if limits.budget_units is None
        else f"a budget of {format_spus(limits.budget_units)} SPUs"
        f" {_per(limits.budget_period.value)}"
    )
    console().print(
        f"{key.key_id} now has {budget_text}, rpm {limits.rpm or 'unlimited'},"
        f" tpm {limits.tpm or 'unlimited'}; every gateway applies it to the key's next call."
    )


@app.command("revoke")
def revoke(org_id: OrgId, key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key. Running gateways stop accepting it within SPU_TOKEN_CACHE_TTL_S."""
    settings = load_settings()

    async def work(store: LedgerStore) -> AccessKey | None:
        return await store.revoke_access_key(org_id, key_id)

    key = run(settings, work)
    if key is None:
        fail(f"no key '{key_id}' for organization '{org_id}'")
    console().print(
        f"Revoked {key.key_id} ({key.prefix}…) at {when(key.revoked_at)} UTC; running gateways"
        f" refuse it within {settings.token_cache_ttl_s:g} s."
    )
