"""One JSON log line per request (ids and figures, never secrets) and ``/metrics``."""

import asyncio

import httpx
import orjson
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from ledger import LedgerStore, format_spus
from proxy.server.metrics import Metrics
from proxy.server.request_log import RequestLogMiddleware, defer_until, note
from tests.e2e.support import CHAT_MODEL, Org, RunningGateway, expected_units
from tests.fakes.upstream import FakeUpstream

SECRET_PROMPT = "my very private prompt about project nightingale"
WAIT_S = 5.0
REQUEST_LINE_START = '{"event":"request"'


class Lines:
    """What the gateway wrote to stderr, where its request lines go (``capsys`` captures it)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.written = ""

    def request_lines(self) -> list[str]:
        self.written += self._capsys.readouterr().err
        return [line for line in self.written.splitlines() if line.startswith(REQUEST_LINE_START)]

    async def wait_for(self, count: int) -> list[dict[str, object]]:
        """Lines are written after the response is sent: wait (bounded) until they are."""
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:
            lines = self.request_lines()
            if len(lines) >= count or asyncio.get_running_loop().time() > deadline:
                return [orjson.loads(line) for line in lines]
            await asyncio.sleep(0.01)


@pytest.fixture
def request_lines(capsys: pytest.CaptureFixture[str]) -> Lines:
    return Lines(capsys)


def sample(metrics_text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(metrics_text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return None


async def test_a_metered_call_logs_one_line_with_its_request_id_and_no_secrets(
    gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
    request_lines: Lines,
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(
            "/v1/chat/completions",
            json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": SECRET_PROMPT}]},
            headers={"authorization": f"Bearer {org.token}"},
        )

    (line,) = await request_lines.wait_for(1)
    assert line["request_id"] == response.headers["x-request-id"]
    assert (line["method"], line["route"], line["status"]) == ("POST", "/v1/chat/completions", 200)
    assert (line["org_id"], line["model"]) == (org.org_id, CHAT_MODEL)
    assert line["spus"] == response.headers["x-spu-charged"]
    assert isinstance(line["latency_ms"], int)
    assert org.token not in request_lines.written
    assert "nightingale" not in request_lines.written


async def test_a_streams_line_is_written_once_it_has_settled_with_its_charge(
    gateway: RunningGateway,
    org: Org,
    store: LedgerStore,
    upstream: FakeUpstream,
    request_lines: Lines,
) -> None:
    async with gateway.client(org.token) as client:
        stream = await client.chat.completions.create(
            model=CHAT_MODEL,
            messages=[{"role": "user", "content": SECRET_PROMPT}],
            stream=True,
        )
        async for _ in stream:
            pass

    (line,) = await request_lines.wait_for(1)
    (record,) = await store.usage_records(org.org_id)
    assert line["request_id"] == record.request_id
    assert line["spus"] == format_spus(record.charged_units)
    assert line["model"] == CHAT_MODEL


async def test_an_unknown_path_gets_a_request_id_and_a_bounded_route_label(
    gateway: RunningGateway, request_lines: Lines
) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get("/no/such/path/12345")

    (line,) = await request_lines.wait_for(1)
    assert response.status_code == 404
    assert response.headers["x-request-id"] == line["request_id"]
    assert line["route"] == "unmatched"


async def test_metrics_count_requests_by_route_and_status_and_debited_units(
    gateway: RunningGateway, org: Org, upstream: FakeUpstream
) -> None:
    async with gateway.client(org.token) as client:
        await client.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "Count my tokens."}]
        )
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.get("/metrics")

    text = response.text
    assert response.headers["content-type"].startswith("text/plain")
    requests = sample(text, "spu_requests_total", route="/v1/chat/completions", status="200")
    assert requests == 1.0
    assert sample(text, "spu_debited_units_total", model=CHAT_MODEL) == expected_units(17, 14)
    assert sample(text, "spu_open_holds") == 0.0
    assert org.org_id not in text


async def test_requests_are_counted_by_route_template_whatever_path_they_name(
    gateway: RunningGateway,
) -> None:
    """A concrete path as a label would give every request its own series: unbounded."""
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        for path in ("/v1/models/a-1", "/v1/models/b/2", "/v1/responses/resp_x"):
            assert (await http.get(path)).status_code == 401
        assert (await http.get("/v1/chat/completions")).status_code == 405
        text = (await http.get("/metrics")).text

    models = sample(text, "spu_requests_total", route="/v1/models/{model:path}", status="401")
    assert models == 2.0
    responses = "/v1/responses/{response_id}"
    assert sample(text, "spu_requests_total", route=responses, status="401") == 1.0
    chat = sample(text, "spu_requests_total", route="/v1/chat/completions", status="405")
    assert chat == 1.0
    assert "a-1" not in text
    assert "resp_x" not in text


async def test_a_line_waits_for_a_settlement_that_outlives_the_response(
    request_lines: Lines,
) -> None:
    settle_now = asyncio.Event()
    app = FastAPI()

    @app.get("/stream")
    async def stream() -> dict[str, bool]:
        note(org_id="acme", model="spu-demo")

        async def settle() -> None:
            await settle_now.wait()
            note(charged_units=1_500)

        defer_until(asyncio.get_running_loop().create_task(settle()))
        return {"ok": True}

    wrapped = RequestLogMiddleware(app, metrics=Metrics())
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        response = await http.get("/stream")
        await asyncio.sleep(0.05)
        written_before_settling = request_lines.request_lines()
        settle_now.set()
        (line,) = await request_lines.wait_for(1)

    assert written_before_settling == []
    assert line["request_id"] == response.headers["x-request-id"]
    assert (line["org_id"], line["model"], line["spus"]) == ("acme", "spu-demo", "0.0015")


@pytest.mark.parametrize(
    ("log_level", "lines"),
    [("trace", 1), ("debug", 1), ("info", 1), ("warning", 0), ("error", 0), ("critical", 0)],
)
async def test_levels_quieter_than_info_leave_the_request_lines_out(
    request_lines: Lines, log_level: str, lines: int
) -> None:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    wrapped = RequestLogMiddleware(app, metrics=Metrics(), log_level=log_level)
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        assert (await http.get("/ping")).status_code == 200  # the app has returned, and logged

    assert len(request_lines.request_lines()) == lines
