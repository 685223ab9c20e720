"""A ledger that can be taken down mid-test, as a lost database connection would be."""

from collections.abc import Awaitable, Callable
from typing import Any

from ledger import LedgerStore, LedgerUnavailable


class SwitchableLedger:
    """Wraps a real store; while ``down`` is True every call raises ``LedgerUnavailable``.

    ``open`` and ``close`` always pass through, so the app's lifecycle is unaffected.
    """

    def __init__(self, inner: LedgerStore) -> None:
        self.inner = inner
        self.down = False

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self.inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise LedgerUnavailable(f"the test took the ledger down ({name})")
            return await method(*args, **kwargs)

        return call
