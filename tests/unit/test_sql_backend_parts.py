"""Small parts of the SQL backends that need no server: URL parameters, holds placed here."""

from datetime import UTC, datetime

import pytest

from ledger.models import HoldPlaced
from ledger.postgres.store import split_pool_size
from ledger.sql.holds_here import HoldsHere


def test_the_pool_size_is_read_from_the_url_and_kept_from_the_driver() -> None:
    url, size = split_pool_size("postgresql://u:p@db:5432/spu?sslmode=require&pool_max_size=4")
    assert (url, size) == ("postgresql://u:p@db:5432/spu?sslmode=require", 4)
    assert split_pool_size("postgres://db/spu") == ("postgres://db/spu", 10)
    with pytest.raises(ValueError, match="pool_max_size"):
        split_pool_size("postgresql://db/spu?pool_max_size=0")


def test_holds_here_forgets_only_expired_holds() -> None:
    holds = HoldsHere()
    holds.placed(HoldPlaced("r1", "org-1", 5, datetime.fromtimestamp(10, tz=UTC)))
    holds.placed(HoldPlaced("r2", "org-2", 5, datetime.fromtimestamp(20, tz=UTC)))
    holds.forget_expired(15_000)
    assert (holds.org_of("r1"), holds.org_of("r2"), len(holds)) == (None, "org-2", 1)
