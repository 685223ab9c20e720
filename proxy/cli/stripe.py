"""``spu stripe check`` and ``spu stripe sync``: the Stripe side, by hand."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from proxy.cli.common import (
    CONFIG_OPTION,
    command_group,
    fail,
    load_settings,
    run,
    use_config_file,
)

if TYPE_CHECKING:
    from ledger import LedgerStore
    from proxy.billing.catalogue.prices import Catalogue
    from proxy.billing.sync import SyncReport
    from proxy.settings import Settings

app = command_group("Stripe billing: check the catalogue, reconcile orgs.")


def _settings(config: Path | None) -> tuple[Settings, str]:
    from proxy.gateway import require_stripe

    use_config_file(config)
    settings = load_settings()
    if settings.stripe_secret_key is None:
        typer.echo("STRIPE_SECRET_KEY is not set: the gateway runs in local-only mode.", err=True)
        raise typer.Exit(2)
    try:
        require_stripe()
    except ValueError as error:
        fail(str(error))
    return settings, settings.stripe_secret_key.get_secret_value()


async def _load_catalogue(secret_key: str, tag: str) -> Catalogue:
    from proxy.billing.catalogue.source import fetch_catalogue
    from proxy.billing.client import connect

    connection = connect(secret_key)
    try:
        return await fetch_catalogue(connection.client, tag)
    finally:
        await connection.aclose()


def describe(catalogue: Catalogue, tag: str) -> list[str]:
    """The catalogue as an operator reads it, issues last."""
    from ledger import format_spus
    from proxy.billing.client import STRIPE_API_VERSION

    lines = [f"Stripe API version {STRIPE_API_VERSION}; product tag {tag!r}"]
    lines.append(f"product: {catalogue.product_id or 'none'}")
    for plan in catalogue.tiers():
        lines.append(
            f"plan {plan.tier}: {plan.price_id}, {format_spus(plan.allowance_units)} SPUs per"
            f" {plan.interval}, {plan.unit_amount} {plan.currency}"
        )
    archived = [plan for plan in catalogue.plans if not plan.active]
    if archived:
        lines.append(f"archived plan prices (grandfathered subscribers): {len(archived)}")
    credit = catalogue.credit
    if credit is not None:
        lines.append(
            f"credits: {credit.price_id}, {credit.unit_amount} {credit.currency} per"
            f" {format_spus(credit.package_units)} SPUs, purchases of"
            f" {format_spus(credit.min_purchase_units)} to"
            f" {format_spus(credit.max_purchase_units)} SPUs"
        )
    if catalogue.markup is not None or catalogue.usd_per_spu is not None:
        lines.append(
            f"pricing from metadata: markup {catalogue.markup}, usd_per_spu {catalogue.usd_per_spu}"
        )
    lines.extend(f"ISSUE: {issue}" for issue in catalogue.issues)
    lines.append(f"{len(catalogue.issues)} issue(s)")
    return lines


@app.command()
def check(config: Path | None = CONFIG_OPTION) -> None:
    """Load the catalogue from Stripe and list what is misconfigured; exit 1 if anything is."""
    settings, secret_key = _settings(config)
    catalogue = asyncio.run(_load_catalogue(secret_key, settings.stripe_product_tag))
    for line in describe(catalogue, settings.stripe_product_tag):
        typer.echo(line)
    if catalogue.issues:
        raise typer.Exit(1)


@app.command()
def sync(config: Path | None = CONFIG_OPTION) -> None:
    """Reconcile every org with a Stripe customer now: plans and paid credit sessions."""
    from proxy.billing.catalogue.source import fetch_catalogue
    from proxy.billing.client import connect
    from proxy.billing.sync import sync_all

    settings, secret_key = _settings(config)

    async def work(store: LedgerStore) -> SyncReport | None:
        connection = connect(secret_key)
        try:
            catalogue = await fetch_catalogue(connection.client, settings.stripe_product_tag)
            if catalogue.product_id is None:
                for issue in catalogue.issues:
                    typer.echo(f"ISSUE: {issue}", err=True)
                return None
            return await sync_all(connection.client, store, catalogue.product_id)
        finally:
            await connection.aclose()

    report = run(settings, work)
    if report is None:
        raise typer.Exit(1)
    typer.echo(f"{report.orgs} org(s) synced, {report.sessions_credited} session(s) credited")
    for failure in report.failures:
        typer.echo(f"FAILED: {failure}", err=True)
    if report.failures:
        raise typer.Exit(1)
