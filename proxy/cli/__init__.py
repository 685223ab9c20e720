"""The ``spu`` command line: one Typer app, one module per command group."""

import typer

from proxy.cli import serve

app = typer.Typer(help="SPU Gateway: metered LLM proxy with prepaid credits.", no_args_is_help=True)
app.command("serve")(serve.serve)
