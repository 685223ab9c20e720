"""``spu keys``: issue (shown once), list and revoke an organization's access tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from proxy.cli.common import command_group, console, fail, load_settings, run, when

if TYPE_CHECKING:
    from ledger import AccessKey, LedgerStore

app = command_group("Issue, list and revoke access tokens.")

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
    from proxy.auth import issue_token

    expires_at = None
    if expires_in_days is not None:
        expires_at = datetime.now(UTC) + timedelta(days=expires_in_days)

    async def work(store: LedgerStore) -> tuple[str, AccessKey]:
        await store.get_account(org_id)
        return await issue_token(store, org_id, name=name, expires_at=expires_at)

    token, key = run(load_settings(), work)
    console().print(f"Issued {key.key_id} for {org_id}. The token is shown only now:")
    console().print(token)


@app.command("list")
def list_(org_id: OrgId) -> None:
    """An organization's keys: id, prefix, name, created, expiry and revocation."""
    from rich.table import Column, Table

    async def work(store: LedgerStore) -> list[AccessKey]:
        await store.get_account(org_id)
        return await store.list_access_keys(org_id)

    keys = run(load_settings(), work)
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
    console().print(table)


@app.command("revoke")
def revoke(org_id: OrgId, key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key. Running gateways stop accepting it within SPU_TOKEN_CACHE_TTL_S."""
    settings = load_settings()

    async def work(store: LedgerStore) -> AccessKey | None:
        return await store.revoke_access_key(org_id, key_id)

    key = run(settings, work)
    if key is None:
        fail(f"no key '{key_id}' for organization '{org_id}'")
    console().print(
        f"Revoked {key.key_id} ({key.prefix}…) at {when(key.revoked_at)} UTC; running gateways"
        f" refuse it within {settings.token_cache_ttl_s:g} s."
    )
