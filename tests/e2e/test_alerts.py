"""Low-balance alerts, delivered from the ledger's outbox to a local receiver: each event once
per crossing, signed; retried while the receiver is down, then delivered once; a dead letter
after the last attempt, visible to operators and sent again on request."""

import asyncio
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ledger import UNITS_PER_SPU, LedgerStore, UsageDetails
from tests.e2e.support import RunningGateway, StartGateway, new_org
from tests.fakes.alert_receiver import AlertReceiver, Delivery
from tests.fakes.server import serve_in_thread

SPU = UNITS_PER_SPU
ADMIN_TOKEN = "admin-secret-for-alerts"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
FAST_OUTBOX = {
    "admin_token": ADMIN_TOKEN,
    "outbox_poll_s": 0.05,
    "outbox_retry_first_s": 0.05,
    "outbox_retry_max_s": 0.1,
}
WAIT_S = 10.0


@pytest.fixture
def receiver() -> Iterator[tuple[AlertReceiver, str]]:
    app = AlertReceiver()
    with serve_in_thread(app, lifespan="off") as url:
        yield app, f"{url}/hooks/spu"


async def _spend(store: LedgerStore, org_id: str, spus: int, request_id: str) -> None:
    await store.hold(org_id, spus * SPU, request_id, ttl_s=60)
    await store.settle(request_id, spus * SPU, UsageDetails(model="m", provider="p"))


def _verified(delivery: Delivery, secret: str) -> dict[str, Any]:
    """The event, once its signature is checked here as a receiver would check it."""
    fields = dict(part.split("=", 1) for part in delivery.signature.split(","))
    signed = f"{fields['t']}.".encode() + delivery.body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)
    event: dict[str, Any] = json.loads(delivery.body)
    return event


async def _configure(gateway: RunningGateway, org_id: str, url: str, *thresholds: str) -> str:
    async with httpx.AsyncClient(base_url=gateway.url, headers=ADMIN) as admin:
        answer = await admin.put(
            f"/admin/organizations/{org_id}/alerts",
            json={"url": url, "thresholds_spus": list(thresholds)},
        )
        assert answer.status_code == 200, answer.text
        again = await admin.put(
            f"/admin/organizations/{org_id}/alerts",
            json={"url": url, "thresholds_spus": list(thresholds)},
        )
    secret: str = answer.json()["signing_secret"]
    assert secret.startswith("whsec_spu_") and again.json()["signing_secret"] is None
    return secret


async def test_each_crossing_is_delivered_once_and_signed(
    start_gateway: StartGateway, store: LedgerStore, receiver: tuple[AlertReceiver, str]
) -> None:
    app, url = receiver
    gateway = start_gateway(**FAST_OUTBOX)
    org = await new_org(store, 100)
    secret = await _configure(gateway, org.org_id, url, "50", "20")

    await _spend(store, org.org_id, 55, "r1")
    [low] = await app.wait_for(1, timeout_s=WAIT_S)
    await _spend(store, org.org_id, 10, "r2")
    await _spend(store, org.org_id, 35, "r3")
    deliveries = await app.wait_for(3, timeout_s=WAIT_S)
    await asyncio.sleep(0.3)

    assert len(app.received) == 3
    events = [_verified(delivery, secret) for delivery in deliveries]
    assert [(e["type"], e["data"].get("threshold_spus")) for e in events[:1]] == [
        ("balance.low", "50")
    ]
    assert sorted((e["type"], e["data"].get("threshold_spus")) for e in events[1:]) == [
        ("balance.depleted", "0.000001"),
        ("balance.low", "20"),
    ]
    assert events[0] == {
        "id": events[0]["id"],
        "object": "event",
        "type": "balance.low",
        "org_id": org.org_id,
        "created": events[0]["created"],
        "data": {"balance_spus": "45", "threshold_spus": "50"},
    }
    assert {e["data"]["balance_spus"] for e in events[1:]} == {"0"}
    assert len({e["id"] for e in events}) == 3
    assert _verified(low, secret)["id"] == events[0]["id"]


async def test_a_receiver_down_for_three_attempts_still_gets_the_event_once(
    start_gateway: StartGateway, store: LedgerStore, receiver: tuple[AlertReceiver, str]
) -> None:
    app, url = receiver
    app.down_for = 3
    gateway = start_gateway(**FAST_OUTBOX)
    org = await new_org(store, 100)
    await _configure(gateway, org.org_id, url, "50")

    await _spend(store, org.org_id, 60, "r1")
    [delivery] = await app.wait_for(1, timeout_s=WAIT_S)
    await asyncio.sleep(0.3)

    assert (app.attempts, len(app.received)) == (4, 1)
    async with httpx.AsyncClient(base_url=gateway.url, headers=ADMIN) as admin:
        [event] = (await admin.get(f"/admin/organizations/{org.org_id}/alerts/events")).json()[
            "data"
        ]
        metrics = (await admin.get("/metrics")).text
    assert (event["state"], event["attempts"]) == ("delivered", 4)
    assert json.loads(delivery.body)["id"] == event["id"]
    assert 'spu_alert_deliveries_total{event="balance.low",outcome="retrying"} 3.0' in metrics
    assert 'spu_alert_deliveries_total{event="balance.low",outcome="delivered"} 1.0' in metrics


async def test_the_last_failed_attempt_leaves_a_dead_letter_operators_can_send_again(
    start_gateway: StartGateway, store: LedgerStore, receiver: tuple[AlertReceiver, str]
) -> None:
    app, url = receiver
    app.down_for = 2
    gateway = start_gateway(**FAST_OUTBOX, outbox_max_attempts=2)
    org = await new_org(store, 100)
    await _configure(gateway, org.org_id, url, "50")
    await _spend(store, org.org_id, 60, "r1")

    async with httpx.AsyncClient(base_url=gateway.url, headers=ADMIN) as admin:
        events = f"/admin/organizations/{org.org_id}/alerts/events"
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            dead = (await admin.get(events, params={"state": "dead"})).json()["data"]
            if dead or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.02)
        assert [(e["type"], e["attempts"], e["last_error"]) for e in dead] == [
            ("balance.low", 2, "the receiver answered 503")
        ]
        assert 'outcome="dead"} 1.0' in (await admin.get("/metrics")).text
        retried = await admin.post(f"{events}/{dead[0]['id']}/retry")
        assert retried.status_code == 200
        [delivery] = await app.wait_for(1, timeout_s=WAIT_S)
        again = await admin.post(f"{events}/{dead[0]['id']}/retry")
    assert json.loads(delivery.body)["id"] == dead[0]["id"]
    assert again.json()["error"]["code"] == "no_dead_alert"


async def test_alert_settings_are_checked_and_auto_recharge_needs_stripe(
    start_gateway: StartGateway, store: LedgerStore
) -> None:
    gateway = start_gateway(admin_token=ADMIN_TOKEN)
    org = await new_org(store, 100)
    async with httpx.AsyncClient(base_url=gateway.url, headers=ADMIN) as admin:
        alerts = f"/admin/organizations/{org.org_id}/alerts"
        for bad in (
            {"url": "not a url"},
            {"url": "https://x.test", "thresholds_spus": ["-1"]},
            {"url": "https://x.test", "thresholds_spus": ["0.0000001"]},
        ):
            answer = await admin.put(alerts, json=bad)
            assert answer.status_code == 400, (bad, answer.text)
        assert (await admin.get(alerts)).json()["error"]["code"] == "alerts_not_set"
        missing = await admin.put(
            "/admin/organizations/org-missing/alerts", json={"url": "https://x.test"}
        )
        assert missing.json()["error"]["code"] == "organization_not_found"
        recharge = await admin.put(
            f"/admin/organizations/{org.org_id}/auto_recharge",
            json={"threshold_spus": "10", "amount_spus": "100", "monthly_cap_spus": "500"},
        )
        assert (recharge.status_code, recharge.json()["error"]["code"]) == (
            503,
            "billing_not_configured",
        )
