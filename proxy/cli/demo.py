"""``spu demo``: a demo org and token, and a call to paste, so a fresh install shows metering.

Tokens are stored only as hashes, so the demo token is kept in a local file
(mode 0600) to print it again on later runs instead of issuing a new one
each time the run script starts the gateway. ``spu serve --demo`` (what the
run script starts) does the same once it has its port, so the printed calls
name the address it really serves on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from proxy.cli.common import console, load_settings, run

if TYPE_CHECKING:
    from ledger import LedgerStore
    from proxy.settings import Settings

DEMO_ORG_ID = "demo"
DEMO_KEY_NAME = "demo"


@dataclass(frozen=True, slots=True)
class DemoAccess:
    token: str
    token_file: Path
    org_created: bool
    token_created: bool
    available_spus: str


def default_token_file(ledger_url: str) -> Path:
    """Next to an SQLite ledger file; under ./data for any other store."""
    from ledger.location import locate

    ledger_file = locate(ledger_url).file
    return Path("data") / "demo-token" if ledger_file is None else ledger_file.parent / "demo-token"


def _saved_token(token_file: Path) -> str | None:
    return token_file.read_text().strip() if token_file.is_file() else None


async def _still_valid(store: LedgerStore, org_id: str, token: str | None) -> str | None:
    """The saved token if it still opens ``org_id`` in this ledger and was never revoked."""
    from proxy.auth import hash_token

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


def seed_demo(
    settings: Settings, org: str, token_file: Path | None, *, say_where: bool = True
) -> DemoAccess:
    """The demo org (created once, with the free grant) and a valid token for it."""
    from ledger import format_spus, spus_to_units
    from proxy.auth import issue_token
    from proxy.org_admin import create_organization

    path = token_file or default_token_file(settings.ledger_url)
    saved = _saved_token(path)

    async def seed(store: LedgerStore) -> DemoAccess:
        _, org_created = await create_organization(
            store, org, free_grant_units=spus_to_units(settings.free_grant_spus)
        )
        token = await _still_valid(store, org, saved)
        token_created = token is None
        if token is None:
            token, _ = await issue_token(store, org, name=DEMO_KEY_NAME)
        balance = await store.balance(org)
        return DemoAccess(
            token, path, org_created, token_created, format_spus(balance.available_units)
        )

    access = run(settings, seed, may_create_ledger=True, say_where=say_where)
    if access.token_created:
        _save_token(path, access.token)
    return access


def print_banner(settings: Settings, org: str, access: DemoAccess) -> None:
    from proxy.model_registry import DEMO_MODEL

    base_url = settings.public_url.rstrip("/")
    out = console()
    out.print(
        f"Organization {org} {'created' if access.org_created else 'ready'}:"
        f" {access.available_spus} SPUs available."
    )
    out.print(
        f"Access token {'issued' if access.token_created else 'reused'}"
        f" (kept in {access.token_file}): {access.token}"
    )
    if not settings.demo_model:
        out.print("The demo model is off (SPU_DEMO_MODEL=false): use one of yours.", style="yellow")
    out.print(f"\nTry it once the gateway runs ({base_url}):\n")
    out.print(snippets(base_url, access.token, DEMO_MODEL.model_name))
    out.print(f"\nUsage page: {base_url}/usage (paste the token when asked)")


def demo(
    org: Annotated[str, typer.Option(help="Id of the demo organization.")] = DEMO_ORG_ID,
    token_file: Annotated[
        Path | None,
        typer.Option(help="Where the demo token is kept (default: next to the SQLite ledger)."),
    ] = None,
) -> None:
    """Seed a demo org and access token (idempotent) and print a ready-to-paste call."""
    settings = load_settings()
    print_banner(settings, org, seed_demo(settings, org, token_file))
