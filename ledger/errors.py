"""Typed ledger failures; each message says what went wrong and with which id."""


class LedgerError(Exception):
    """Base class of every ledger failure."""


class LedgerUnavailable(LedgerError):
    """The store cannot be reached; callers must fail closed."""


class LedgerSchemaTooNew(LedgerUnavailable):
    """The store was written by a newer gateway: this one cannot know what it holds."""

    def __init__(self, store_version: int, gateway_version: int) -> None:
        super().__init__(
            f"the ledger is at schema {store_version}, newer than this gateway's"
            f" {gateway_version}: a newer SPU Gateway wrote it"
        )
        self.store_version = store_version
        self.gateway_version = gateway_version


class AccountNotFound(LedgerError):
    def __init__(self, org_id: str) -> None:
        super().__init__(f"no account for org {org_id!r}")
        self.org_id = org_id


class HoldNotFound(LedgerError):
    def __init__(self, request_id: str) -> None:
        super().__init__(f"no hold for request {request_id!r}")
        self.request_id = request_id


class HoldNotOpen(LedgerError):
    """The hold already ended another way (released or expired) and cannot be settled."""

    def __init__(self, request_id: str, state: str) -> None:
        super().__init__(f"hold for request {request_id!r} is {state}, not open")
        self.request_id = request_id
        self.state = state


class IdempotencyConflict(LedgerError):
    """An id was reused with different content; nothing was changed."""

    def __init__(self, kind: str, key: str, detail: str) -> None:
        super().__init__(f"{kind} {key!r} was already used with different content: {detail}")
        self.kind = kind
        self.key = key
