"""The ``spu`` command line: one Typer app, one module per command group.

Start-up time is part of the interface: ``spu --help`` and every command's
``--help`` must answer in well under half a second. So the command modules
import only typer and the standard library when they load, and each command
imports what it works with (settings, ledger, fastapi, stripe, aiohttp,
uvicorn) in its body, when it runs; ``tests/unit/test_cli_start.py`` checks
that no ``--help`` loads them. Help is click's plain text, without rich.
"""

from typing import Annotated

import typer

from proxy.cli import config, credits, demo, keys, ledger, orgs, serve, usage
from proxy.cli import stripe as stripe_cli
from proxy.cli.common import command_group

app = command_group("SPU Gateway: metered LLM proxy with prepaid credits.")


def _show_version(shown: bool) -> None:
    if shown:
        from proxy.version import gateway_version

        typer.echo(f"spu-gateway {gateway_version()}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """SPU Gateway: metered LLM proxy with prepaid credits."""


app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("usage")(usage.usage)
app.add_typer(config.app, name="config")
app.add_typer(orgs.app, name="orgs")
app.add_typer(keys.app, name="keys")
app.add_typer(credits.app, name="credits")
app.add_typer(ledger.app, name="ledger")
app.add_typer(stripe_cli.app, name="stripe")
