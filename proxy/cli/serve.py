"""``spu serve``: run the gateway under uvicorn, one or several worker processes."""

import os
from pathlib import Path

import typer
import uvicorn


def serve(
    host: str = typer.Option(None, help="Interface to bind (default: SPU_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port to bind (default: SPU_PORT or 8080)."),
    workers: int = typer.Option(None, help="Worker processes sharing the store (SPU_WORKERS)."),
    config: Path | None = typer.Option(None, help="YAML config file (SPU_CONFIG_FILE)."),
) -> None:
    """Start the gateway. Options override the environment; workers read it at start-up."""
    from proxy.server.draining import run_server
    from proxy.settings import Settings

    if config is not None:
        os.environ["SPU_CONFIG_FILE"] = str(config.resolve())
    settings = Settings()
    server_config = uvicorn.Config(
        "proxy.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level=settings.log_level,
        # RequestLogMiddleware already writes one structured line per request.
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
    )
    run_server(server_config)
