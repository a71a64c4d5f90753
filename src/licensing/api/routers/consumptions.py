"""Reversing consumptions (a cancelled booking)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from licensing import clock
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import Bookings, DatabaseDep, IdempotencyKey, ReadAny, check_owner, get_owned, write_soon
from licensing.credits.consumption import draws_of, reverse_consumption
from licensing.credits.models import Consumption

router = APIRouter(prefix="/api/v1/consumptions", tags=["consumptions"])


@router.get(
    "/{consumption_id}",
    summary="Get a consumption",
    description="One consumption with the grants it drew from.",
    responses=docs.documented(docs.Consumption, "The consumption.", *docs.AUTH, "not_found"),
)
def get_consumption(consumption_id: str, caller: ReadAny, database: DatabaseDep):
    with database.read() as session:
        consumption = get_owned(session, caller, Consumption, consumption_id, "consumption")
        return presenters.consumption(consumption, draws_of(session, consumption.id))


@router.post(
    "/{consumption_id}/reverse",
    summary="Reverse a consumption",
    description=(
        "Return the credits to the grants they came from (a cancelled booking); reversing a reversed consumption "
        "answers it unchanged. Idempotent with `Idempotency-Key`."
    ),
    responses=docs.documented(docs.Consumption, "The consumption, reversed.", *docs.AUTH, "not_found", "conflict", "idempotency_conflict"),
)
async def reverse(consumption_id: str, caller: Bookings, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None):
    def action(session):
        check_owner(session, caller, Consumption, consumption_id, "consumption")
        consumption, draws = reverse_consumption(session, consumption_id, now=clock.now(), actor=caller.actor)
        return 200, presenters.consumption(consumption, draws)

    return await write_soon(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body={})
