"""Which org owns which stored response: recorded before the id is handed out, checked on reuse.

An upstream that serves the Responses API stores responses (unless a request
sets ``store: false``) under the gateway's one key, so it would hand any of
them to whoever names its id. The gateway therefore records the org that
created each stored response in the ledger (``ResponseOwners``) before the
client sees the id, and serves a stored response — read, listed, deleted, or
continued with ``previous_response_id`` — only to that org. Any other org, and
an id the gateway never recorded, gets the 404 OpenAI answers for an id it
does not hold; the upstream sees nothing of it. A record that cannot be
written (the ledger down) leaves the response unreachable: fail closed.
"""

import logging
import re
from datetime import timedelta

from ledger import LedgerUnavailable, ResponseOwners
from proxy.auth import Principal
from proxy.errors import ApiError, ledger_unavailable
from proxy.model_registry import ModelRegistry, ServedModel

logger = logging.getLogger("spu.responses")

RETENTION = timedelta(days=30)
"""How long an owner is kept: as long as OpenAI keeps a stored response."""
_RESPONSE_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")
"""What an id the gateway could have recorded looks like; anything else cannot be one."""


def response_not_found(response_id: str, *, param: str | None = None) -> ApiError:
    return ApiError(
        404,
        f"Response with id '{response_id}' not found.",
        param=param,
        code="response_not_found",
    )


async def record_owner(
    owners: ResponseOwners, response_id: str | None, principal: Principal, model: ServedModel
) -> None:
    """Record the caller's org as the owner of a response its call just created."""
    if response_id is None:
        logger.warning("%s answered before naming its response: nobody can read it", model.name)
        return
    try:
        recorded = await owners.record_response(response_id, principal.org_id, model.name)
    except (LedgerUnavailable, ValueError) as error:
        logger.warning(
            "response %s is unreachable: its owner is not recorded (%s)", response_id, error
        )
        return
    if not recorded:
        logger.error("the upstream of %s gave an id another org owns: %s", model.name, response_id)


async def owned_model(
    owners: ResponseOwners,
    registry: ModelRegistry,
    principal: Principal,
    response_id: str,
    *,
    param: str | None = None,
) -> ServedModel:
    """The model whose upstream holds the caller's own response ``response_id``, or a 404."""
    if not _RESPONSE_ID.fullmatch(response_id):
        raise response_not_found(response_id, param=param)
    try:
        owner = await owners.response_owner(response_id)
    except LedgerUnavailable as error:
        raise ledger_unavailable() from error
    if owner is None or owner.org_id != principal.org_id:
        raise response_not_found(response_id, param=param)
    try:
        return registry.get(owner.model)
    except ApiError as error:
        if error.status != 404:
            raise
        raise ApiError(
            404,
            f"Response with id '{response_id}' was made by the model '{owner.model}', which"
            " this gateway no longer serves.",
            param=param,
            code="response_not_found",
        ) from error
