"""``spu demo``: a demo org and token, and a call to paste, so a fresh install shows metering.

Tokens are stored only as hashes, so the demo token is kept in a local file
(mode 0600) to print it again on later runs instead of issuing a new one
each time the run script starts the gateway.
"""

from pathlib import Path
from typing import Annotated

import typer

from ledger import LedgerStore, format_spus, spus_to_units
from proxy.auth import hash_token, issue_token
from proxy.cli.common import console, run
from proxy.model_registry import DEMO_MODEL
from proxy.org_admin import create_organization
from proxy.settings import Settings

DEMO_ORG_ID = "demo"
DEMO_KEY_NAME = "demo"


def default_token_file(ledger_url: str) -> Path:
    """Next to an SQLite ledger file; under ./data for any other store."""
    if ledger_url.startswith("sqlite:///"):
        return Path(ledger_url.removeprefix("sqlite:///")).parent / "demo-token"
    return Path("data") / "demo-token"


def _saved_token(token_file: Path) -> str | None:
    return token_file.read_text().strip() if token_file.is_file() else None


async def _still_valid(store: LedgerStore, org_id: str, token: str | None) -> str | None:
    """The saved token if it still opens ``org_id`` in this ledger and was never revoked."""
    if not token:
        return None
    key = await store.access_key_by_hash(hash_token(token))
    if key is None or key.org_id != org_id or key.revoked_at is not None:
        return None
    return token


def _save_token(token_file: Path, token: str) -> None:
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.touch(mode=0o600, exist_ok=True)
    token_file.chmod(0o600)
    token_file.write_text(token + "\n")


def snippets(base_url: str, token: str, model: str) -> str:
    return f"""\
curl {base_url}/v1/chat/completions \\
  -H "Authorization: Bearer {token}" \\
  -H "Content-Type: application/json" \\
  -d '{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello!"}}]}}'

# Python, with the official OpenAI SDK (pip install openai)
from openai import OpenAI

client = OpenAI(base_url="{base_url}/v1", api_key="{token}")
reply = client.chat.completions.create(
    model="{model}", messages=[{{"role": "user", "content": "Hello!"}}]
)
print(reply.choices[0].message.content)"""


def demo(
    org: Annotated[str, typer.Option(help="Id of the demo organization.")] = DEMO_ORG_ID,
    token_file: Annotated[
        Path | None,
        typer.Option(help="Where the demo token is kept (default: next to the SQLite ledger)."),
    ] = None,
) -> None:
    """Seed a demo org and access token (idempotent) and print a ready-to-paste call."""
    settings = Settings()
    path = token_file or default_token_file(settings.ledger_url)
    saved = _saved_token(path)

    async def seed(store: LedgerStore) -> tuple[str, bool, bool, str]:
        _, org_created = await create_organization(
            store, org, free_grant_units=spus_to_units(settings.free_grant_spus)
        )
        token = await _still_valid(store, org, saved)
        token_created = token is None
        if token is None:
            token, _ = await issue_token(store, org, name=DEMO_KEY_NAME)
        balance = await store.balance(org)
        return token, org_created, token_created, format_spus(balance.available_units)

    token, org_created, token_created, available = run(settings, seed)
    if token_created:
        _save_token(path, token)
    base_url = settings.public_url.rstrip("/")
    console.print(
        f"Organization {org} {'created' if org_created else 'ready'}: {available} SPUs available."
    )
    console.print(
        f"Access token {'issued' if token_created else 'reused'} (kept in {path}): {token}"
    )
    if not settings.demo_model:
        console.print(
            "The demo model is off (SPU_DEMO_MODEL=false): use one of yours.", style="yellow"
        )
    console.print(f"\nTry it once the gateway runs ({base_url}):\n")
    console.print(snippets(base_url, token, DEMO_MODEL.model_name))
    console.print(f"\nUsage page: {base_url}/usage (paste the token when asked)")
