"""The demo banner, its snippets and usage links carry the port the gateway really serves on.

``./scripts/run.sh`` runs ``spu serve --demo``; whatever port it is given
(``SPU_PORT``, ``--port``, or ``--port 0`` for any free one), what it prints
and the links it makes must name that port, unless ``SPU_PUBLIC_URL`` says
otherwise.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.deploy.processes import START_TIMEOUT_S, STOP_TIMEOUT_S, free_port, gateway_environment

SPU = str(Path(sys.executable).with_name("spu"))
STARTING = re.compile(r"Starting on (http://127\.0\.0\.1:(\d+)) ")


@contextmanager
def serving_demo(tmp_path: Path, *args: str, **settings: str) -> Iterator[tuple[str, str]]:
    """``spu serve --demo`` in ``tmp_path``; its printed output and base URL once ready."""
    environment = gateway_environment(f"sqlite:///{tmp_path / 'data' / 'spu-ledger.db'}")
    environment.update(settings)
    out = tmp_path / "serve.out"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [SPU, "serve", "--demo", *args],
            cwd=tmp_path,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert process.poll() is None, out.read_text()
            started = STARTING.search(out.read_text())
            if started is not None:
                try:
                    if httpx.get(f"{started[1]}/readyz", timeout=1.0).status_code == 200:
                        yield out.read_text(), started[1]
                        return
                except httpx.TransportError:
                    pass
            time.sleep(0.05)
        raise AssertionError(f"not ready after {START_TIMEOUT_S} s:\n{out.read_text()}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(STOP_TIMEOUT_S)


def _usage_link(base_url: str, printed: str) -> str:
    token = re.search(r"spu_[A-Za-z0-9_-]{43}", printed)
    assert token is not None, printed
    reply = httpx.post(
        f"{base_url}/v1/usage/link", headers={"authorization": f"Bearer {token[0]}"}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    link: str = reply.json()["url"]
    return link


def _assert_everything_names(printed: str, base_url: str) -> None:
    assert f"curl {base_url}/v1/chat/completions" in printed
    assert f'OpenAI(base_url="{base_url}/v1"' in printed
    assert f"Usage page: {base_url}/usage" in printed
    assert set(re.findall(r"https?://[^\s\"/)]+", printed)) == {base_url}


def test_the_banner_and_a_usage_link_carry_the_port_from_spu_port(tmp_path: Path) -> None:
    port = free_port()
    with serving_demo(tmp_path, SPU_PORT=str(port)) as (printed, base_url):
        link = _usage_link(base_url, printed)

    assert base_url == f"http://127.0.0.1:{port}"
    _assert_everything_names(printed, base_url)
    assert link.startswith(f"http://127.0.0.1:{port}/usage#link=spulink_")


def test_with_port_zero_the_banner_and_links_carry_the_port_picked(tmp_path: Path) -> None:
    with serving_demo(tmp_path, "--port", "0") as (printed, base_url):
        link = _usage_link(base_url, printed)

    port = int(base_url.rsplit(":", 1)[1])
    assert port != 0
    _assert_everything_names(printed, base_url)
    assert link.startswith(f"{base_url}/usage#link=")


def test_a_public_url_given_wins_over_the_port(tmp_path: Path) -> None:
    public = "https://llm.example.test"
    with serving_demo(tmp_path, "--port", "0", SPU_PUBLIC_URL=public) as (printed, base_url):
        link = _usage_link(base_url, printed)

    assert f"curl {public}/v1/chat/completions" in printed
    assert link.startswith(f"{public}/usage#link=")
