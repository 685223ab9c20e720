"""Request ids: unique, in the old shape, in the order they were made (the ledger's
indexes on them take each new one at their right edge), and never shared by a forked worker."""

import itertools
import os
import re
import time

import pytest

from proxy.ids import random_hex
from proxy.server import request_log


def test_an_id_is_req_and_32_hex_digits() -> None:
    assert re.fullmatch(r"req_[0-9a-f]{32}", request_log.new_request_id())


def test_ids_made_in_one_millisecond_are_all_different(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "time_ns", lambda: 1_796_145_346_626_000_000)
    ids = {request_log.new_request_id() for _ in range(20_000)}
    assert len(ids) == 20_000


def test_an_id_made_later_sorts_later(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []
    for ms in (999, 1_000, 4_095, 4_096, 1_796_145_346_626, 1_796_145_346_627, 2**48 - 1):
        monkeypatch.setattr(time, "time_ns", lambda ms=ms: ms * 1_000_000 + 999_999)
        made.extend(request_log.new_request_id() for _ in range(50))
    chunks = [made[i : i + 50] for i in range(0, len(made), 50)]
    for earlier, later in itertools.pairwise(chunks):
        assert max(earlier) < min(later)


def test_a_forked_worker_draws_other_ids_than_its_parent() -> None:
    """The random part comes from ``random``, which a forked child must not share."""
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # the child must never return into pytest, whatever happens
        try:
            os.write(writing, random_hex(20).encode())
        finally:
            os._exit(0)
    os.close(writing)
    mine = random_hex(20)
    os.waitpid(child, 0)
    theirs = os.read(reading, 64).decode()
    os.close(reading)
    assert re.fullmatch(r"[0-9a-f]{20}", theirs)
    assert theirs != mine
