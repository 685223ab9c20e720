"""``spu usage``: recent usage records, or one organization's totals, as a table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from proxy.cli.common import console, fail, load_settings, run, when

if TYPE_CHECKING:
    from rich.table import Table

    from ledger import LedgerStore, UsageRecord, UsageTotal

MAX_RECORDS = 1000


def records_table(records: list[UsageRecord]) -> Table:
    from rich.table import Column, Table

    from ledger import format_spus
    from proxy.ledger_json import format_usd

    table = Table(
        Column("time (UTC)", no_wrap=True),
        Column("org", no_wrap=True),
        "model",
        "prompt",
        "completion",
        "cost USD",
        "SPUs",
        "status",
    )
    for record in records:
        details = record.details
        table.add_row(
            when(record.created_at),
            record.org_id,
            details.model,
            str(details.prompt_tokens),
            str(details.completion_tokens),
            format_usd(details.cost_pico_usd),
            format_spus(record.charged_units),
            details.status,
        )
    return table


def totals_table(group_by: str, totals: list[UsageTotal]) -> Table:
    from rich.table import Table

    from ledger import format_spus
    from proxy.ledger_json import format_usd

    table = Table(group_by, "calls", "tokens", "cost USD", "SPUs")
    for total in totals:
        table.add_row(
            total.group,
            str(total.calls),
            str(total.total_tokens),
            format_usd(total.cost_pico_usd),
            format_spus(total.charged_units),
        )
    return table


def usage(
    org_id: Annotated[
        str | None, typer.Argument(help="Organization (default: every organization).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="How many days back to read.")] = 30,
    group_by: Annotated[
        Literal["model", "day", "key"] | None,
        typer.Option(help="Totals by model, day or key instead of single calls (needs an org)."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only this model's calls.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_RECORDS, help="Most calls shown.")] = 20,
) -> None:
    """Show usage: the latest calls (newest first) or totals over the last DAYS days."""
    from proxy.usage.window import usage_window

    if group_by is not None and org_id is None:
        fail("--group-by needs an organization id")
    window = usage_window(None, None, now=datetime.now(UTC), span=timedelta(days=days))

    async def work(store: LedgerStore) -> Table:
        with console().status("Reading usage from the ledger…"):
            if group_by is None:
                records = await store.usage_records(
                    org_id, start=window.start, end=window.end, limit=limit, model=model
                )
                return records_table(records)
            assert org_id is not None
            await store.get_account(org_id)
            totals = await store.usage_totals(org_id, group_by, start=window.start, end=window.end)
            return totals_table(group_by, totals)

    console().print(run(load_settings(), work))
