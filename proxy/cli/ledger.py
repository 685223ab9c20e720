"""``spu ledger``: look after the credit ledger itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from proxy.cli import ledger_init
from proxy.cli.common import command_group, console, errors, load_settings, run

if TYPE_CHECKING:
    from ledger import LedgerStore

app = command_group("Check and prepare the credit ledger.")
app.command("init")(ledger_init.ledger_init)


@app.command("verify")
def verify() -> None:
    """Check every organization's invariants; exit 1 and print each violation found."""
    from ledger.verify import verify as verify_store

    async def work(store: LedgerStore) -> tuple[int, list[str]]:
        with console().status("Verifying the ledger…"):
            return await verify_store(store)

    checked, violations = run(load_settings(), work)
    for violation in violations:
        errors().print(f"violation: {violation}", style="red")
    if violations:
        errors().print(f"{len(violations)} violations in {checked} organizations.")
        raise typer.Exit(code=1)
    console().print(f"Ledger OK: {checked} organizations checked, no violations.")
