"""``spu keys``: issue (shown once), list and revoke an organization's access tokens."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Column, Table

from ledger import AccessKey, LedgerStore
from proxy.auth import issue_token
from proxy.cli.common import console, fail, run, when
from proxy.settings import Settings

app = typer.Typer(help="Issue, list and revoke access tokens.", no_args_is_help=True)

OrgId = Annotated[str, typer.Argument(help="The organization's id.")]


@app.command("create")
def create(
    org_id: OrgId,
    name: Annotated[str | None, typer.Option(help="A label, e.g. the app using it.")] = None,
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, help="Expire after this many days (default: never).")
    ] = None,
) -> None:
    """Issue an access token. It is printed this once: only its hash is stored."""
    expires_at = None
    if expires_in_days is not None:
        expires_at = datetime.now(UTC) + timedelta(days=expires_in_days)

    async def work(store: LedgerStore) -> tuple[str, AccessKey]:
        await store.get_account(org_id)
        return await issue_token(store, org_id, name=name, expires_at=expires_at)

    token, key = run(Settings(), work)
    console.print(f"Issued {key.key_id} for {org_id}. The token is shown only now:")
    console.print(token)


@app.command("list")
def list_(org_id: OrgId) -> None:
    """An organization's keys: id, prefix, name, created, expiry and revocation."""

    async def work(store: LedgerStore) -> list[AccessKey]:
        await store.get_account(org_id)
        return await store.list_access_keys(org_id)

    keys = run(Settings(), work)
    table = Table(
        Column("key", no_wrap=True),
        Column("prefix", no_wrap=True),
        "name",
        Column("created", no_wrap=True),
        "expires",
        "revoked",
    )
    for key in keys:
        table.add_row(
            key.key_id,
            key.prefix + "…",
            key.name or "",
            when(key.created_at),
            when(key.expires_at),
            when(key.revoked_at),
        )
    console.print(table)


@app.command("revoke")
def revoke(org_id: OrgId, key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key. Running gateways stop accepting it within SPU_TOKEN_CACHE_TTL_S."""
    settings = Settings()

    async def work(store: LedgerStore) -> AccessKey | None:
        return await store.revoke_access_key(org_id, key_id)

    key = run(settings, work)
    if key is None:
        fail(f"no key '{key_id}' for organization '{org_id}'")
    console.print(
        f"Revoked {key.key_id} ({key.prefix}…) at {when(key.revoked_at)} UTC; running gateways"
        f" refuse it within {settings.token_cache_ttl_s:g} s."
    )
