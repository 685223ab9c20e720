"""``spu credits``: grant credits to an organization, with a reason, retry-safe."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated

import typer

from proxy.cli.common import command_group, console, fail, load_settings, run

if TYPE_CHECKING:
    from ledger import CreditResult, LedgerStore

app = command_group("Grant credits.")


@app.command("grant")
def grant(
    org_id: Annotated[str, typer.Argument(help="The organization's id.")],
    spus: Annotated[str, typer.Argument(help="SPUs to grant, e.g. 500 or 12.5.")],
    reason: Annotated[str, typer.Option(help="Why: kept in the audit trail.")],
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Retry-safe id: granting again with it changes nothing."),
    ] = None,
) -> None:
    """Add granted credits (kept until used; consumed after allowance and purchases)."""
    from ledger import format_spus
    from proxy.org_admin import grant_credits

    try:
        amount = Decimal(spus)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite():
        fail(f"'{spus}' is not a number of SPUs")

    async def work(store: LedgerStore) -> tuple[CreditResult, int]:
        result = await grant_credits(store, org_id, amount, reason, idempotency_key=idempotency_key)
        return result, (await store.balance(org_id)).available_units

    try:
        result, available_units = run(load_settings(), work)
    except ValueError as error:
        fail(str(error))
    transaction = result.transaction
    verb = "Granted" if result.applied else "Already granted (nothing changed):"
    console().print(
        f"{verb} {format_spus(transaction.amount_units)} SPUs to {org_id}"
        f" ({transaction.reason}); {format_spus(available_units)} SPUs now available."
    )
