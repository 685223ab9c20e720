"""An alert outlives a crash: the settlement that crosses a threshold writes it to the ledger's
outbox in its own transaction, so a gateway SIGKILLed right after that settlement delivers it
once it runs again (on a SQLite file and on a PostgreSQL database)."""

import asyncio
import hashlib
import hmac
import json
import os
import signal
from pathlib import Path

from ledger import UNITS_PER_SPU
from ledger.factory import open_store
from ledger.outbox import OutboxState
from tests.deploy.processes import chat_body, running_gateway, seed_orgs
from tests.fakes.alert_receiver import AlertReceiver
from tests.fakes.server import serve_in_thread

SECRET = "whsec_spu_crash_test"
WAIT_S = 20.0


async def _pending_alerts(ledger_url: str, org_id: str) -> list[str]:
    store = open_store(ledger_url)
    await store.open()
    try:
        events = await store.alert_events(org_id, state=OutboxState.PENDING)
        return [event.kind.value for event in events]
    finally:
        await store.close()


async def test_an_alert_written_before_a_sigkill_is_delivered_after_the_restart(
    ledger_url: str, tmp_path: Path
) -> None:
    receiver = AlertReceiver()
    [org] = await seed_orgs(ledger_url, {"org_crash_alert": 1})
    store = open_store(ledger_url)
    await store.open()
    with serve_in_thread(receiver, lifespan="off") as receiver_url:
        try:
            await store.set_alerts(org.org_id, f"{receiver_url}/hook", [UNITS_PER_SPU], SECRET)
        finally:
            await store.close()

        # A poll far beyond the test: the worker looks once, at start-up, before the call.
        with running_gateway(ledger_url, tmp_path, workers=1, outbox_poll_s=3600) as first:
            async with first.client(timeout_s=10.0) as client:
                answer = await client.post(
                    "/v1/chat/completions",
                    json=chat_body(max_tokens=5, stream=False),
                    headers={"authorization": f"Bearer {org.token}"},
                )
            assert answer.status_code == 200, answer.text
            os.killpg(first.pid, signal.SIGKILL)
            first.process.wait(10)
        assert receiver.received == []
        assert await _pending_alerts(ledger_url, org.org_id) == ["balance.low"]

        with running_gateway(ledger_url, tmp_path, workers=1, outbox_poll_s=0.1):
            await receiver.wait_for(1, timeout_s=WAIT_S)
            await asyncio.sleep(0.3)

    [delivery] = receiver.received
    fields = dict(part.split("=", 1) for part in delivery.signature.split(","))
    signed = f"{fields['t']}.".encode() + delivery.body
    assert fields["v1"] == hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
    event = json.loads(delivery.body)
    assert (event["type"], event["org_id"], event["data"]["threshold_spus"]) == (
        "balance.low",
        org.org_id,
        "1",
    )
    assert await _pending_alerts(ledger_url, org.org_id) == []
