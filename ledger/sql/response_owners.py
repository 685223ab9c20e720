"""Who owns which stored response (``ResponseOwners``), as routines both SQL backends run.

One row per response id; the primary key makes a second owner impossible, so
two workers recording the same id race harmlessly: the first insert wins and
the other reads who won.
"""

from ledger.clock import from_ms
from ledger.models import ResponseOwner
from ledger.sql.reads import load_account
from ledger.sql.routine import Query, Routine

_COLUMNS = "response_id, org_id, model, created_at_ms"
_INSERT_SQL = Query(
    f"INSERT INTO response_owners ({_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT DO NOTHING RETURNING org_id"
)
_OWNER_SQL = Query(f"SELECT {_COLUMNS} FROM response_owners WHERE response_id = ?1")
_FORGET_SQL = Query(
    "DELETE FROM response_owners WHERE response_id = ?1 AND org_id = ?2 RETURNING response_id"
)
_FORGET_BEFORE_SQL = Query(
    "DELETE FROM response_owners WHERE response_id IN (SELECT response_id FROM response_owners"
    " WHERE created_at_ms < ?1 ORDER BY created_at_ms LIMIT ?2) RETURNING response_id"
)


def record(response_id: str, org_id: str, model: str, now_ms: int) -> Routine[bool]:
    yield from load_account(org_id)
    inserted = yield _INSERT_SQL, (response_id, org_id, model, now_ms)
    if inserted:
        return True
    owner = yield from find(response_id)
    return owner is not None and owner.org_id == org_id


def find(response_id: str) -> Routine[ResponseOwner | None]:
    rows = yield _OWNER_SQL, (response_id,)
    if not rows:
        return None
    response, org_id, model, created_at_ms = rows[0]
    return ResponseOwner(str(response), str(org_id), str(model), from_ms(int(created_at_ms)))


def forget(response_id: str, org_id: str) -> Routine[bool]:
    return bool((yield _FORGET_SQL, (response_id, org_id)))


def forget_before(cutoff_ms: int, limit: int) -> Routine[int]:
    return len((yield _FORGET_BEFORE_SQL, (cutoff_ms, limit)))
