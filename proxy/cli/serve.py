"""``spu serve``: check everything, take the port, then run the gateway under uvicorn.

The checks (``proxy.preflight``) run once, here, before any worker starts: a
mistake is one or two lines and exit code 1, never a worker's traceback, and
with several workers never a supervisor restarting workers that cannot start.
The options are exported as ``SPU_*`` variables, so the workers (which read
the environment) see the same settings, including the port really bound.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from proxy.cli.common import CONFIG_OPTION, abort, console, errors, load_settings, use_config_file

if TYPE_CHECKING:
    from proxy.preflight.start_up import StartUpReport
    from proxy.settings import Settings


def _export(host: str | None, port: int | None, workers: int | None) -> None:
    for variable, value in (("SPU_HOST", host), ("SPU_PORT", port), ("SPU_WORKERS", workers)):
        if value is not None:
            os.environ[variable] = str(value)


def _summary(settings: Settings, report: StartUpReport) -> list[str]:
    from proxy.preflight.start_up import LedgerState, billing_mode
    from proxy.version import gateway_version

    state = report.ledger_state
    return [
        f"SPU Gateway {gateway_version()}",
        f"ledger:  {report.ledger}" + ("" if state is LedgerState.READY else f" ({state.value})"),
        "models:  " + ", ".join(check.route.model_name for check in report.models),
        f"billing: {billing_mode(settings)}",
    ]


def _starting(settings: Settings) -> str:
    from proxy.settings import local_url

    address = local_url(settings.host, settings.port)
    public = "" if settings.public_url == address else f", public URL {settings.public_url}"
    workers = f"{settings.workers} worker{'s' if settings.workers > 1 else ''}"
    return (
        f"\nStarting on {address} ({workers}{public}). Ctrl-C or SIGTERM stops it: calls in"
        f" flight finish first (up to SPU_SHUTDOWN_GRACE_S, {settings.shutdown_grace_s:g} s)."
    )


def serve(
    host: str = typer.Option(None, help="Interface to bind (default: SPU_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to bind, 0 for any free one (SPU_PORT or 8080)."),
    workers: int = typer.Option(None, help="Worker processes sharing the store (SPU_WORKERS)."),
    config: Path | None = CONFIG_OPTION,
    demo: bool = typer.Option(
        False, help="Seed the demo organization first and print a call to paste (run.sh does)."
    ),
) -> None:
    """Start the gateway. Options override the environment; Ctrl-C or SIGTERM stops it."""
    use_config_file(config)
    _export(host, port, workers)
    settings = load_settings()  # before the heavy imports: a settings mistake is told at once

    import asyncio

    import uvicorn

    from proxy.cli.demo import DEMO_ORG_ID, print_banner, seed_demo
    from proxy.preflight.listener import bind_listener
    from proxy.preflight.problems import ConfigurationError
    from proxy.preflight.start_up import check_start_up
    from proxy.server.draining import run_server

    report = asyncio.run(check_start_up(settings, may_create_ledger=True))
    for warning in report.missing_keys:
        errors().print(f"warning: {warning.line()}", style="yellow")
    if report.problems:
        abort(report.problems)
    try:
        listener = bind_listener(settings.host, settings.port)
    except ConfigurationError as error:
        abort(error.problems, error)
    bound_port = listener.getsockname()[1]
    if bound_port != settings.port:
        os.environ["SPU_PORT"] = str(bound_port)
        settings = load_settings()
    for line in _summary(settings, report):
        console().print(line)
    if demo:
        console().print()
        print_banner(settings, DEMO_ORG_ID, seed_demo(settings, DEMO_ORG_ID, None, say_where=False))
    console().print(_starting(settings))
    server_config = uvicorn.Config(
        "proxy.app:create_app",
        factory=True,
        host=settings.host,
        port=bound_port,
        workers=settings.workers,
        log_level=settings.log_level,
        # RequestLogMiddleware already writes one structured line per request.
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )
    run_server(server_config, listener)
