"""The ``spu`` command line: one Typer app, one module per command group."""

import typer

from proxy.cli import credits, demo, keys, ledger, orgs, serve, usage
from proxy.cli import stripe as stripe_cli

app = typer.Typer(help="SPU Gateway: metered LLM proxy with prepaid credits.", no_args_is_help=True)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("usage")(usage.usage)
app.add_typer(orgs.app, name="orgs")
app.add_typer(keys.app, name="keys")
app.add_typer(credits.app, name="credits")
app.add_typer(ledger.app, name="ledger")
app.add_typer(stripe_cli.app, name="stripe")
