"""The operator's routes for an org's low-balance alerts and auto-recharge, under ``/admin``.

Alerts work in every mode; auto-recharge needs Stripe (it charges the
customer's saved card), so in local-only mode its PUT answers 503
``billing_not_configured`` like the ``/billing`` routes.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from ledger import format_spus, spus_to_units
from ledger.outbox import AlertSettings, AutoRecharge, OutboxEvent, OutboxState, Recharge
from proxy.admin.auth import require_admin
from proxy.admin.routes import ADMIN_RESPONSES, MAX_LIST_LIMIT, ledger_errors
from proxy.admin.schemas import (
    AlertEventList,
    AlertEventView,
    AlertSettingsSet,
    AlertSettingsView,
    AutoRechargeSet,
    AutoRechargeView,
    RechargeView,
)
from proxy.alerts.body import alert_json
from proxy.alerts.signature import new_secret
from proxy.billing_stub import billing_not_configured
from proxy.errors import ApiError, bad_request
from proxy.gateway import gateway_of

router = APIRouter(
    prefix="/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin)],
    responses=ADMIN_RESPONSES,
)

RECENT_RECHARGES = 10


def _units(value: object, param: str) -> int:
    try:
        return spus_to_units(str(value))
    except ValueError as error:
        raise bad_request(str(error), param=param) from error


def _alerts_view(settings: AlertSettings, *, show_secret: bool) -> AlertSettingsView:
    return AlertSettingsView(
        org_id=settings.org_id,
        url=settings.url,
        thresholds_spus=[format_spus(units) for units in settings.thresholds_units],
        signing_secret=settings.secret if show_secret else None,
    )


def _not_configured(what: str, org_id: str) -> ApiError:
    return ApiError(
        404, f"Organization '{org_id}' has no {what}.", code=f"{what.replace(' ', '_')}_not_set"
    )


@router.put("/organizations/{org_id}/alerts", response_model=AlertSettingsView)
async def set_alerts(request: Request, org_id: str, body: AlertSettingsSet) -> AlertSettingsView:
    """Send balance.low, balance.depleted and auto-recharge events to ``url``.

    The signing secret is made on the first PUT and shown in its answer only;
    later PUTs change the URL and thresholds and keep the secret.
    """
    thresholds = [_units(value, "thresholds_spus") for value in body.thresholds_spus]
    with ledger_errors():
        settings, created = await gateway_of(request).store.set_alerts(
            org_id, str(body.url), thresholds, new_secret()
        )
    return _alerts_view(settings, show_secret=created)


@router.get("/organizations/{org_id}/alerts", response_model=AlertSettingsView)
async def get_alerts(request: Request, org_id: str) -> AlertSettingsView:
    with ledger_errors():
        settings = await gateway_of(request).store.alert_settings(org_id)
    if settings is None:
        raise _not_configured("alerts", org_id)
    return _alerts_view(settings, show_secret=False)


@router.delete("/organizations/{org_id}/alerts", response_model=AlertSettingsView)
async def clear_alerts(request: Request, org_id: str) -> AlertSettingsView:
    """Stop alerts; what is still pending is not delivered."""
    store = gateway_of(request).store
    with ledger_errors():
        settings = await store.alert_settings(org_id)
        if settings is None:
            raise _not_configured("alerts", org_id)
        await store.clear_alerts(org_id)
    return _alerts_view(settings, show_secret=False)


def _event_view(event: OutboxEvent) -> AlertEventView:
    body = alert_json(event)
    return AlertEventView(
        id=event.event_id,
        type=event.kind.value,
        state=event.state.value,
        attempts=event.attempts,
        last_error=event.last_error,
        created=event.created_at,
        data=body["data"],
    )


@router.get("/organizations/{org_id}/alerts/events", response_model=AlertEventList)
async def alert_events(
    request: Request,
    org_id: str,
    state: Literal["pending", "delivered", "dead"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = 50,
) -> AlertEventList:
    """The org's alerts, newest first; ``state=dead`` lists the dead letters."""
    wanted = None if state is None else OutboxState(state)
    with ledger_errors():
        events = await gateway_of(request).store.alert_events(org_id, state=wanted, limit=limit)
    return AlertEventList(data=[_event_view(event) for event in events])


@router.post(
    "/organizations/{org_id}/alerts/events/{event_id}/retry", response_model=AlertEventList
)
async def retry_alert(request: Request, org_id: str, event_id: str) -> AlertEventList:
    """Deliver a dead letter again (its attempts start over)."""
    store = gateway_of(request).store
    with ledger_errors():
        if not await store.requeue_outbox(org_id, event_id):
            raise ApiError(
                404,
                f"No dead alert '{event_id}' for organization '{org_id}'.",
                code="no_dead_alert",
            )
        events = await store.alert_events(org_id, limit=MAX_LIST_LIMIT)
    return AlertEventList(data=[_event_view(e) for e in events if e.event_id == event_id])


def _recharge_view(recharge: Recharge) -> RechargeView:
    return RechargeView(
        recharge_id=recharge.recharge_id,
        amount_spus=format_spus(recharge.amount_units),
        state=recharge.state.value,
        payment_intent=recharge.payment_intent_id,
        reason=recharge.reason,
        created_at=recharge.created_at,
    )


async def _recharge_view_of(
    request: Request, org_id: str, settings: AutoRecharge
) -> AutoRechargeView:
    recent = await gateway_of(request).store.recharges(org_id, limit=RECENT_RECHARGES)
    return AutoRechargeView(
        org_id=org_id,
        threshold_spus=format_spus(settings.threshold_units),
        amount_spus=format_spus(settings.amount_units),
        monthly_cap_spus=format_spus(settings.monthly_cap_units),
        recent=[_recharge_view(recharge) for recharge in recent],
    )


@router.put(
    "/organizations/{org_id}/auto_recharge",
    response_model=AutoRechargeView,
    responses={503: {"description": "Local-only mode: Stripe billing is not configured"}},
)
async def set_auto_recharge(
    request: Request, org_id: str, body: AutoRechargeSet
) -> AutoRechargeView:
    """When a settlement leaves the balance below ``threshold_spus``, buy ``amount_spus`` on
    the customer's saved card (Stripe mode), at most ``monthly_cap_spus`` a month."""
    if gateway_of(request).billing is None:
        await billing_not_configured()
    settings = AutoRecharge(
        _units(body.threshold_spus, "threshold_spus"),
        _units(body.amount_spus, "amount_spus"),
        _units(body.monthly_cap_spus, "monthly_cap_spus"),
    )
    with ledger_errors():
        await gateway_of(request).store.set_auto_recharge(org_id, settings)
        return await _recharge_view_of(request, org_id, settings)


@router.get("/organizations/{org_id}/auto_recharge", response_model=AutoRechargeView)
async def get_auto_recharge(request: Request, org_id: str) -> AutoRechargeView:
    with ledger_errors():
        settings = await gateway_of(request).store.auto_recharge(org_id)
        if settings is None:
            raise _not_configured("auto recharge", org_id)
        return await _recharge_view_of(request, org_id, settings)


@router.delete("/organizations/{org_id}/auto_recharge", response_model=AutoRechargeView)
async def clear_auto_recharge(request: Request, org_id: str) -> AutoRechargeView:
    """Stop auto-recharge; a PaymentIntent already started still credits when it succeeds."""
    store = gateway_of(request).store
    with ledger_errors():
        settings = await store.auto_recharge(org_id)
        if settings is None:
            raise _not_configured("auto recharge", org_id)
        view = await _recharge_view_of(request, org_id, settings)
        await store.clear_auto_recharge(org_id)
    return view
