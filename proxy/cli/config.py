"""``spu config check``: every check ``spu serve`` makes, without starting or creating anything.

It prints what the gateway would run with (settings source, ledger, address,
billing, and a table of the models with their upstreams, keys and prices),
then one line per problem on stderr, and exits 1 if there is any. A missing
upstream key is a problem here, though only a warning for ``spu serve``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from proxy.cli.common import (
    CONFIG_OPTION,
    command_group,
    console,
    errors,
    load_settings,
    use_config_file,
)

if TYPE_CHECKING:
    from rich.table import Table

    from proxy.preflight.models import ModelCheck
    from proxy.preflight.start_up import StartUpReport
    from proxy.settings import Settings

app = command_group("Check the configuration before starting the gateway.")

TOKENS_PER_PRICE = Decimal(1_000_000)
"""Prices are shown per million tokens, as providers publish them."""


def _usd(per_token: Decimal) -> str:
    return f"{per_token * TOKENS_PER_PRICE:f}".rstrip("0").rstrip(".")


def _upstream(check: ModelCheck) -> str:
    from proxy.upstream.clients import DEFAULT_BASES

    route = check.route
    if route.api_format == "demo":
        return "answered locally"
    if route.api_format == "litellm":
        return "litellm" + (f" → {route.api_base}" if route.api_base else "")
    return route.api_base or DEFAULT_BASES[route.api_format]


def _key(check: ModelCheck) -> str:
    variable = check.route.api_key_env
    if variable is None:
        return "none"
    return f"{variable} " + ("NOT SET" if check.missing_key is not None else "set")


def models_table(report: StartUpReport) -> Table:
    from rich.table import Column, Table

    table = Table(
        Column("model", no_wrap=True),
        "format",
        "provider model",
        "upstream",
        "key",
        Column("USD/1M in", justify="right"),
        Column("USD/1M out", justify="right"),
        Column("max out", justify="right"),
        "status",
        title="Models",
    )
    for check in report.models:
        served = check.served
        problem = check.unusable or check.missing_key
        table.add_row(
            check.route.model_name,
            check.route.api_format,
            check.route.provider_model,
            _upstream(check),
            _key(check),
            "" if served is None else _usd(served.rates.input_usd_per_token),
            "" if served is None else _usd(served.rates.output_usd_per_token),
            "" if served is None else str(served.rates.max_output_tokens or ""),
            "ok" if problem is None else "PROBLEM",
        )
    return table


def _facts(settings: Settings, report: StartUpReport) -> list[str]:
    from proxy.preflight.start_up import billing_mode

    source = os.environ.get("SPU_CONFIG_FILE")
    return [
        "settings: environment" + (f" over {source}" if source else " (no config file)"),
        f"ledger:   {report.ledger} ({report.ledger_state.value})",
        f"address:  {settings.host}:{settings.port}, public URL {settings.public_url}",
        f"billing:  {billing_mode(settings)}",
        f"pricing:  markup {settings.markup} over provider cost,"
        f" 1 SPU = {settings.usd_per_spu} USD",
    ]


@app.command("check")
def check(config: Path | None = CONFIG_OPTION) -> None:
    """Load the settings and models, price every model, check every key and the ledger."""
    import asyncio

    from proxy.preflight.start_up import check_start_up

    use_config_file(config)
    settings = load_settings()
    report = asyncio.run(check_start_up(settings, may_create_ledger=False))
    for line in _facts(settings, report):
        console().print(line)
    console().print(models_table(report))
    problems = report.problems + report.missing_keys
    for problem in problems:
        errors().print(f"error: {problem.line()}", style="red")
    if problems:
        errors().print(f"{len(problems)} problem(s).")
        raise typer.Exit(code=1)
    console().print(f"OK: {len(report.models)} model(s); ledger {report.ledger_state.value}.")
