"""Holds: capture (the event happened) or release (the booking was cancelled)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from licensing import clock
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import Bookings, DatabaseDep, IdempotencyKey, ReadAny, check_owner, get_owned, write_soon
from licensing.credits.holds import capture_hold, hold_draws, release_hold
from licensing.credits.models import Hold

router = APIRouter(prefix="/api/v1/holds", tags=["holds"])


@router.get(
    "/{hold_id}",
    summary="Get a hold",
    description="One hold with the grants it reserves from.",
    responses=docs.documented(docs.Hold, "The hold.", *docs.AUTH, "not_found"),
)
def get_hold(hold_id: str, caller: ReadAny, database: DatabaseDep):
    with database.read() as session:
        hold = get_owned(session, caller, Hold, hold_id, "hold")
        return presenters.hold(hold, hold_draws(session, hold.id))


@router.post(
    "/{hold_id}/capture",
    summary="Capture a hold",
    description=(
        "The event happened: turn the hold into a consumption (`consumption_id`); a hold that is not open is 409 "
        "`hold_not_open`. Idempotent with `Idempotency-Key`."
    ),
    responses=docs.documented(docs.Hold, "The hold, captured.", *docs.AUTH, "not_found", "hold_not_open", "idempotency_conflict"),
)
async def capture(hold_id: str, caller: Bookings, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None):
    def action(session):
        check_owner(session, caller, Hold, hold_id, "hold")
        hold, draws = capture_hold(session, hold_id, now=clock.now(), actor=caller.actor)
        return 200, presenters.hold(hold, draws)

    return await write_soon(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body={})


@router.post(
    "/{hold_id}/release",
    summary="Release a hold",
    description=(
        "The booking was cancelled: free the reserved credits; a hold that is not open is 409 `hold_not_open`. "
        "Idempotent with `Idempotency-Key`."
    ),
    responses=docs.documented(docs.Hold, "The hold, released.", *docs.AUTH, "not_found", "hold_not_open", "idempotency_conflict"),
)
async def release(hold_id: str, caller: Bookings, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None):
    def action(session):
        check_owner(session, caller, Hold, hold_id, "hold")
        hold, draws = release_hold(session, hold_id, now=clock.now(), actor=caller.actor)
        return 200, presenters.hold(hold, draws)

    return await write_soon(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body={})
