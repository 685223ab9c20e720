"""What the gateway keeps in memory: encodings without their Python rank tables, no stripe
unless Stripe billing is configured."""

import json
import os
import subprocess
import sys
from pathlib import Path

import tiktoken.registry

from pricing.tokens import CL100K_BASE, O200K_BASE, drop_idle_encodings, get_encoding

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_loaded_encodings_keep_no_python_rank_table_and_count_decode_and_encode() -> None:
    for name in (CL100K_BASE, O200K_BASE):
        encoding = get_encoding(name)
        assert not hasattr(encoding, "_mergeable_ranks")
        assert tiktoken.registry.ENCODINGS.get(name) is not encoding
        tokens = encoding.encode_ordinary("hello world")
        assert len(tokens) == 2
        assert encoding.decode(tokens) == "hello world"
        assert encoding.encode("<|endoftext|>", allowed_special="all") == [encoding.eot_token]


def test_an_encoding_is_kept_while_used_and_dropped_once_idle() -> None:
    drop_idle_encodings(0)
    first = get_encoding(CL100K_BASE)
    assert get_encoding(CL100K_BASE) is first
    assert drop_idle_encodings(3600) == []
    assert get_encoding(CL100K_BASE) is first
    assert drop_idle_encodings(0) == [CL100K_BASE]
    again = get_encoding(CL100K_BASE)
    assert again is not first
    assert len(again.encode_ordinary("hello world")) == 2


IDLE_DROP_PROBE = """
import json
from pathlib import Path
from pricing.tokens import O200K_BASE, drop_idle_encodings, get_encoding

def resident_mb():
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

before = resident_mb()
assert len(get_encoding(O200K_BASE).encode_ordinary("hello world")) == 2
loaded = resident_mb()
dropped = drop_idle_encodings(0)
print(json.dumps({"before": before, "loaded": loaded, "after": resident_mb(), "dropped": dropped}))
"""


def test_dropping_an_idle_encoding_gives_its_memory_back() -> None:
    """o200k_base holds about 40 MB once loaded; a gateway whose counts are rare is not
    made to keep it by the one count that loaded it."""
    result = subprocess.run(
        [sys.executable, "-c", IDLE_DROP_PROBE],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["dropped"] == [O200K_BASE]
    assert probe["loaded"] - probe["before"] > 30
    assert probe["after"] - probe["before"] < 8


LOCAL_ONLY_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from proxy.app import create_app

with TestClient(create_app()) as client:
    status = client.post("/billing/checkout/credits", json={"spus": 1}).status_code
print(json.dumps({"status": status, "stripe_imported": "stripe" in sys.modules}))
"""


def test_local_only_mode_never_imports_stripe_and_billing_answers_503(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SPU_"))}
    env |= {
        "PYTHONPATH": str(REPO_ROOT),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "SPU_LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-c", LOCAL_ONLY_PROBE],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe == {"status": 503, "stripe_imported": False}
