"""An alert's JSON: the event id (receivers dedupe on it: delivery is at least once), its
type, the org, the figures as decimal SPU strings, and when it happened."""

from typing import Any

import orjson

from ledger import format_spus
from ledger.outbox import OutboxEvent


def _spus(units: int | None) -> str | None:
    return None if units is None else format_spus(units)


def alert_json(event: OutboxEvent) -> dict[str, Any]:
    data: dict[str, Any] = {"balance_spus": format_spus(event.balance_units)}
    if event.threshold_units is not None:
        data["threshold_spus"] = _spus(event.threshold_units)
    if event.amount_units is not None:
        data["amount_spus"] = _spus(event.amount_units)
    if event.reference is not None:
        data["payment_intent"] = event.reference
    if event.reason is not None:
        data["reason"] = event.reason
    return {
        "id": event.event_id,
        "object": "event",
        "type": event.kind.value,
        "org_id": event.org_id,
        "created": event.created_at.isoformat(),
        "data": data,
    }


def alert_body(event: OutboxEvent) -> bytes:
    return orjson.dumps(alert_json(event))
