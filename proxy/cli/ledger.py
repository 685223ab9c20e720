"""``spu ledger``: look after the credit ledger itself."""

import typer

from ledger import LedgerStore
from ledger.verify import verify as verify_store
from proxy.cli import ledger_init
from proxy.cli.common import console, errors, run
from proxy.settings import Settings

app = typer.Typer(help="Check and prepare the credit ledger.", no_args_is_help=True)
app.command("init")(ledger_init.ledger_init)


@app.command("verify")
def verify() -> None:
    """Check every organization's invariants; exit 1 and print each violation found."""
    settings = Settings()

    async def work(store: LedgerStore) -> tuple[int, list[str]]:
        with console.status("Verifying the ledger…"):
            return await verify_store(store)

    checked, violations = run(settings, work)
    for violation in violations:
        errors.print(f"violation: {violation}", style="red")
    if violations:
        errors.print(f"{len(violations)} violations in {checked} organizations.")
        raise typer.Exit(code=1)
    console.print(f"Ledger OK: {checked} organizations checked, no violations.")
