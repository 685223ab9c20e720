"""Everything the gateway needs before it serves, checked at once so every problem is told.

``spu serve`` runs this with the right to create the ledger and refuses to
start on any problem; a missing upstream key is only a warning there (the
gateway serves every other model, and refuses that one's calls with a 503).
``spu config check`` runs it without creating anything and counts a missing
key as a problem too.
"""

from dataclasses import dataclass
from enum import Enum

from ledger.location import LedgerLocation, locate
from proxy.gateway import require_stripe
from proxy.preflight.ledger import creation_problem, ping_ledger
from proxy.preflight.models import ModelCheck, check_models
from proxy.preflight.problems import ConfigurationError, Problem
from proxy.settings import Settings


class LedgerState(Enum):
    READY = "ready"
    CREATED = "created now: a new, empty ledger"
    NOT_CREATED = "not created yet: `spu serve` creates it"
    UNUSABLE = "unusable"


@dataclass(frozen=True, slots=True)
class StartUpReport:
    models: list[ModelCheck]
    ledger: LedgerLocation
    ledger_state: LedgerState
    problems: list[Problem]
    """What stops the gateway from starting."""
    missing_keys: list[Problem]
    """Models whose upstream key is not set: their calls are refused."""


def billing_mode(settings: Settings) -> str:
    return "Stripe" if settings.stripe_secret_key is not None else "local-only (no Stripe key)"


def stripe_problem(settings: Settings) -> Problem | None:
    if settings.stripe_secret_key is None:
        return None
    try:
        require_stripe()
    except ValueError as error:
        return Problem(str(error))
    return None


async def check_start_up(settings: Settings, *, may_create_ledger: bool) -> StartUpReport:
    models = check_models(settings)
    problems = [check.unusable for check in models if check.unusable is not None]
    stripe = stripe_problem(settings)
    if stripe is not None:
        problems.append(stripe)
    location = locate(settings.ledger_url)
    if not location.exists and not may_create_ledger:
        unwritable = creation_problem(location)
        state = LedgerState.NOT_CREATED if unwritable is None else LedgerState.UNUSABLE
        problems += [unwritable] if unwritable is not None else []
    else:
        try:
            opened = await ping_ledger(settings.ledger_url, may_create=may_create_ledger)
        except ConfigurationError as error:
            state = LedgerState.UNUSABLE
            problems += error.problems
        else:
            state = LedgerState.CREATED if opened.created else LedgerState.READY
    return StartUpReport(
        models=models,
        ledger=location,
        ledger_state=state,
        problems=problems,
        missing_keys=[check.missing_key for check in models if check.missing_key is not None],
    )
