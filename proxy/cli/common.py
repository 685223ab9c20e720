"""What every ``spu`` command shares: the settings, an opened ledger, tables and failures.

Commands talk to the ledger directly (the same store the gateway uses, named
by ``SPU_LEDGER_URL``), so they work whether or not a gateway is running.
Every command that opens it says where it is (on stderr, so that stdout stays
what a pipe reads). A mistake ends the command with one or two lines (what is
wrong, how to fix it) and exit code 1; ``SPU_LOG_LEVEL=debug`` adds the
traceback behind it.

Like every command module, this one imports only typer and the standard
library when it loads (see ``proxy.cli``): the rest is imported by the
functions that use it.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ledger import LedgerStore
    from proxy.preflight.problems import Problem
    from proxy.settings import Settings

T = TypeVar("T")

PIPE_WIDTH = 200
"""Output to a pipe or file is laid out this wide, so rows reach ``grep`` whole."""

DEBUG_VARIABLE = "SPU_LOG_LEVEL"

CONFIG_OPTION = typer.Option(None, help="YAML config file (SPU_CONFIG_FILE).")


def use_config_file(config: Path | None) -> None:
    """``--config`` is ``SPU_CONFIG_FILE`` (absolute, so workers read the same file)."""
    if config is not None:
        os.environ["SPU_CONFIG_FILE"] = str(config.absolute())


def command_group(help_text: str) -> typer.Typer:
    """A group of commands; help is click's plain text (rendering it with rich took longer
    than everything else ``spu --help`` does)."""
    return typer.Typer(
        help=help_text,
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )


def _console(*, stderr: bool) -> Console:
    """Markup is off: ids and reasons from the ledger are printed as they are."""
    from rich.console import Console

    made = Console(stderr=stderr, highlight=False, markup=False, soft_wrap=True)
    if not made.is_terminal:
        made.width = PIPE_WIDTH
    return made


@cache
def console() -> Console:
    return _console(stderr=False)


@cache
def errors() -> Console:
    return _console(stderr=True)


def abort(problems: Sequence[Problem], cause: BaseException | None = None) -> NoReturn:
    """Print each problem (and, with ``SPU_LOG_LEVEL=debug``, the traceback), then exit 1."""
    if cause is not None and os.environ.get(DEBUG_VARIABLE, "").lower() == "debug":
        import traceback

        traceback.print_exception(cause)
    for problem in problems:
        for line in problem.lines():
            errors().print(line, style="red")
    raise typer.Exit(code=1)


def fail(message: str, fix: str = "") -> NoReturn:
    from proxy.preflight.problems import Problem

    abort([Problem(message, fix)])


def load_settings() -> Settings:
    """The settings, or the command ends saying what is wrong with them."""
    from proxy.preflight.loading import load_settings as load
    from proxy.preflight.problems import ConfigurationError

    try:
        return load()
    except ConfigurationError as error:
        abort(error.problems, error)


def run(
    settings: Settings,
    work: Callable[[LedgerStore], Awaitable[T]],
    *,
    may_create_ledger: bool = False,
    say_where: bool = True,
) -> T:
    """Run one command's work against the opened ledger; ledger failures become exit code 1.

    Only commands that start a ledger pass ``may_create_ledger`` (``proxy.preflight.ledger``
    says why the others refuse to create one).
    """
    import asyncio

    from ledger import AccountNotFound, IdempotencyConflict, LedgerUnavailable
    from proxy.preflight.ledger import open_ledger
    from proxy.preflight.problems import ConfigurationError

    async def main() -> T:
        opened = await open_ledger(settings.ledger_url, may_create=may_create_ledger)
        if say_where:
            state = " (created now: a new, empty ledger)" if opened.created else ""
            errors().print(f"ledger: {opened.location}{state}")
        try:
            return await work(opened.store)
        finally:
            await opened.store.close()

    try:
        return asyncio.run(main())
    except ConfigurationError as error:
        abort(error.problems, error)
    except AccountNotFound as error:
        fail(f"no organization '{error.org_id}'")
    except IdempotencyConflict as error:
        fail(str(error))
    except LedgerUnavailable as error:
        from ledger.location import locate

        fail(f"the ledger ({locate(settings.ledger_url)}) is unavailable: {error}")


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")
