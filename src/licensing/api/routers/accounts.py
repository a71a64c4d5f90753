"""Accounts, business units, members; their credits, grants, ledger and consumptions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlmodel import func, or_, select
from starlette.concurrency import run_in_threadpool

from licensing import clock
from licensing.accounts import services as accounts
from licensing.accounts.models import Account, BusinessUnit, Member
from licensing.api import presenters
from licensing.api import responses as docs
from licensing.api.deps import (
    Billing,
    Bookings,
    DatabaseDep,
    IdempotencyKey,
    Pagination,
    ReadAny,
    check_account,
    in_scope,
    paginate,
    quick_read,
    write,
    write_soon,
)
from licensing.api.errors import Forbidden
from licensing.api.routers.invoices import present as present_invoice
from licensing.api.schemas import (
    AccountIn,
    AccountPatch,
    AdjustmentIn,
    BusinessUnitIn,
    ConsumptionIn,
    HoldIn,
    MemberIn,
    TopUpIn,
    credits_text,
)
from licensing.credits.adjustments import adjust
from licensing.credits.balance import account_with_remaining, credit_summary, remaining_of
from licensing.credits.consumption import consume
from licensing.credits.expiry import settle_expiries
from licensing.credits.holds import hold_draws, place_hold
from licensing.credits.kinds import LedgerKind
from licensing.credits.models import Grant, Hold, LedgerEntry
from licensing.credits.rollover import rollover_due
from licensing.db.repository import as_id, get_or_404
from licensing.errors import NotFound, ValidationFailed
from licensing.invoicing.top_ups import top_up

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])

LEDGER_KINDS = frozenset(kind.value for kind in LedgerKind)


@router.post(
    "", status_code=201,
    summary="Create an account",
    description="A customer account: `name`, `email`, `currency` (ISO 4217), `address`, `country`, `tax_id`, `tax_exempt`.",
    responses=docs.documented(docs.Account, "The account created.", *docs.AUTH, status=201),
)
def create_account(body: AccountIn, caller: Billing, database: DatabaseDep):
    return write(database, lambda s: (201, presenters.account(accounts.create_account(s, at=clock.now(), **body.model_dump()))))


@router.get(
    "",
    summary="List accounts",
    description=(
        "Accounts, with the credits remaining now and the debt of each; `?q=` finds accounts by name or e-mail. A key "
        "limited to some accounts sees those only."
    ),
    responses=docs.documented(docs.AccountPage, "A page of accounts.", *docs.AUTH),
)
def list_accounts(
    caller: ReadAny, database: DatabaseDep, page: Pagination,
    q: Annotated[str | None, Query(max_length=200, description="find accounts whose name or e-mail contains this (any case)")] = None,
):
    statement = in_scope(select(Account), caller, Account.id)
    if q is not None and q.strip():
        pattern = "%" + q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = statement.where(or_(func.lower(Account.name).like(pattern, escape="\\"), func.lower(Account.email).like(pattern, escape="\\")))
    rows: list[Account] = []
    with database.read() as session:
        result = paginate(session, statement, Account.id, page, lambda row: rows.append(row) or row.id)
        result["items"] = with_credits(database, session, rows)
    return result


@router.get(
    "/{account_id}",
    summary="Get an account",
    description="The account with its credits remaining now (`remaining_credits`) and its `debt`.",
    responses=docs.documented(docs.AccountWithCredits, "The account.", *docs.AUTH, "not_found"),
)
async def get_account(account_id: str, caller: ReadAny, database: DatabaseDep):
    check_account(caller, account_id)
    now = clock.now()
    # One statement (``quick_read``): the route is async so that SQLite answers it without a
    # hop to the thread pool.
    row = await quick_read(database, account_with_remaining, as_id(account_id, "account", NotFound), now)
    if row is None:
        raise NotFound(f"account {account_id} does not exist")
    if rollover_due(row, now):  # cuts to record first: the list's way records them, then reads again
        return await run_in_threadpool(_with_cuts_recorded, database, row.id)
    return presenters.account(row) | {"remaining_credits": credits_text(row.remaining_credits), "debt": credits_text(row.debt)}


def _with_cuts_recorded(database, account_id: int) -> dict:
    with database.read() as session:
        return with_credits(database, session, [get_or_404(session, Account, account_id, "account")])[0]


def with_credits(database, session, rows: list[Account]) -> list[dict]:
    """The accounts as the API shows them, with ``remaining_credits`` (as the credit summary's
    ``remaining`` now) and ``debt``, after recording the rollover cuts due on any of them.

    ``session`` is the read transaction the rows come from: the credits are read in it too,
    unless some account had cuts due (recorded in a write of their own, then read afresh)."""
    now = clock.now()
    if any(rollover_due(row, now) for row in rows):
        rows = [settle_expiries(database, row.id, now=now) if rollover_due(row, now) else row for row in rows]
        with database.read() as fresh:
            remaining = remaining_of(fresh, [row.id for row in rows], now)
    else:
        remaining = remaining_of(session, [row.id for row in rows], now)
    return [
        presenters.account(row) | {"remaining_credits": credits_text(remaining[row.id]), "debt": credits_text(row.debt)} for row in rows
    ]


@router.patch(
    "/{account_id}",
    summary="Update an account",
    description="Change the fields given; the currency of an account that holds credits cannot change (409 `conflict`).",
    responses=docs.documented(docs.Account, "The account as updated.", *docs.AUTH, "not_found", "conflict"),
)
def update_account(account_id: str, body: AccountPatch, caller: Billing, database: DatabaseDep):
    changes = body.model_dump(exclude_unset=True)
    return write(database, lambda s: (200, presenters.account(accounts.update_account(s, account_id, **changes))))


@router.post(
    "/{account_id}/business-units", status_code=201,
    summary="Create a business unit",
    description=(
        "A business unit of the account (credits may be restricted to it); names are unique per account (409 "
        "`conflict`)."
    ),
    responses=docs.documented(docs.BusinessUnit, "The business unit created.", *docs.AUTH, "not_found", "conflict", status=201),
)
def create_business_unit(account_id: str, body: BusinessUnitIn, caller: Billing, database: DatabaseDep):
    return write(database, lambda s: (201, presenters.business_unit(accounts.create_business_unit(s, account_id, name=body.name, at=clock.now()))))


@router.get(
    "/{account_id}/business-units",
    summary="List an account's business units",
    description="The account's business units, paginated.",
    responses=docs.documented(docs.BusinessUnitPage, "A page of business units.", *docs.AUTH, "not_found"),
)
def list_business_units(account_id: str, caller: ReadAny, database: DatabaseDep, page: Pagination):
    check_account(caller, account_id)
    with database.read() as session:
        account = get_or_404(session, Account, account_id, "account")
        return paginate(session, select(BusinessUnit).where(BusinessUnit.account_id == account.id), BusinessUnit.id, page, presenters.business_unit)


@router.post(
    "/{account_id}/members", status_code=201,
    summary="Create a member",
    description="A member (person) of the account, whom consumptions and holds may name.",
    responses=docs.documented(docs.Member, "The member created.", *docs.AUTH, "not_found", status=201),
)
def create_member(account_id: str, body: MemberIn, caller: Billing, database: DatabaseDep):
    return write(
        database, lambda s: (201, presenters.member(accounts.create_member(s, account_id, name=body.name, email=body.email, at=clock.now())))
    )


@router.get(
    "/{account_id}/members",
    summary="List an account's members",
    description="The account's members, paginated.",
    responses=docs.documented(docs.MemberPage, "A page of members.", *docs.AUTH, "not_found"),
)
def list_members(account_id: str, caller: ReadAny, database: DatabaseDep, page: Pagination):
    check_account(caller, account_id)
    with database.read() as session:
        account = get_or_404(session, Account, account_id, "account")
        return paginate(session, select(Member).where(Member.account_id == account.id), Member.id, page, presenters.member)


@router.get(
    "/{account_id}/credits",
    summary="Get an account's credit summary",
    description=(
        "The credit summary at a moment (`?at=`, an RFC 3339 instant; default now): granted, remaining, used, held, "
        "removed, debt, what expires when, what is pending, and the same figures for unrestricted credits and per "
        "business unit."
    ),
    responses=docs.documented(docs.CreditSummary, "The credit summary.", *docs.AUTH, "not_found"),
)
def get_credits(account_id: str, caller: ReadAny, database: DatabaseDep, at: Annotated[datetime | None, Query()] = None):
    check_account(caller, account_id)
    now = clock.now()
    if at is not None and at.tzinfo is None:
        raise ValidationFailed("at must be an instant with an offset (RFC 3339)", field="at")
    if at is not None:
        try:
            at = at.astimezone(UTC)
        except OverflowError:
            raise ValidationFailed("at is outside the calendar this engine can count with", field="at") from None
    account = settle_expiries(database, account_id, now=now)
    with database.read() as session:
        return presenters.summary(credit_summary(session, account, at or now, now=now))


@router.get(
    "/{account_id}/grants",
    summary="List an account's grants",
    description="Every grant of credits to the account, with what became of them (remaining, used, held, removed, expired).",
    responses=docs.documented(docs.GrantPage, "A page of grants.", *docs.AUTH, "not_found"),
)
def list_grants(account_id: str, caller: ReadAny, database: DatabaseDep, page: Pagination):
    check_account(caller, account_id)
    with database.read() as session:
        account = get_or_404(session, Account, account_id, "account")
        return paginate(session, select(Grant).where(Grant.account_id == account.id), Grant.id, page, presenters.grant)


@router.get(
    "/{account_id}/ledger",
    summary="List an account's ledger",
    description=(
        "Ledger entries, oldest first, filtered by `?kind=`, `?since=` and `?until=` (RFC 3339 instants); `?format=csv`"
        " answers every matching entry as one CSV file."
    ),
    responses=docs.documented(
        docs.LedgerPage,
        "A page of ledger entries (JSON), or CSV.",
        *docs.AUTH,
        "not_found",
        csv="Every matching row as one CSV file (`?format=csv`), not paginated.",
    ),
)
def list_ledger(
    account_id: str,
    caller: ReadAny,
    database: DatabaseDep,
    page: Pagination,
    kind: Annotated[str | None, Query(max_length=30)] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
    format: Annotated[str | None, Query(pattern="^(json|csv)$")] = None,
):
    check_account(caller, account_id)
    if kind is not None and kind not in LEDGER_KINDS:
        raise ValidationFailed(f"unknown ledger kind {kind!r}", field="kind")
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise ValidationFailed(f"{name} must be an instant with an offset (RFC 3339)", field=name)
        if value is not None:
            try:
                value.astimezone(UTC)
            except OverflowError:
                raise ValidationFailed(f"{name} is outside the calendar this engine can count with", field=name) from None
    account = settle_expiries(database, account_id, now=clock.now())
    statement = select(LedgerEntry).where(LedgerEntry.account_id == account.id)
    if kind:
        statement = statement.where(LedgerEntry.kind == kind)
    if since:
        statement = statement.where(LedgerEntry.occurred_at >= since)
    if until:
        statement = statement.where(LedgerEntry.occurred_at < until)
    with database.read() as session:
        if format == "csv":
            return _ledger_csv(session.exec(statement.order_by(LedgerEntry.id)).all(), account.id)
        return paginate(session, statement, LedgerEntry.id, page, presenters.ledger_entry)


@router.post(
    "/{account_id}/consumptions",
    status_code=201,
    summary="Consume credits",
    description=(
        "Use `credits`, or (`credit_price_id`, `quantity`), drawn from the grants that expire first; `allow_overdraft` "
        "(billing role) records a debt instead of refusing with 409 `insufficient_credits`. Idempotent with "
        "`Idempotency-Key`."
    ),
    responses=docs.documented(
        docs.Consumption,
        "The consumption, with the grants drawn from.",
        *docs.AUTH,
        "not_found",
        "unknown_reference",
        "insufficient_credits",
        "idempotency_conflict",
        status=201,
    ),
)
async def create_consumption(
    account_id: str, body: ConsumptionIn, caller: Bookings, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None
):
    check_account(caller, account_id)
    if body.allow_overdraft and caller.role not in ("admin", "billing"):
        raise Forbidden("allow_overdraft needs the billing role")

    def action(session):
        consumption, draws = consume(
            session, account_id, credits=body.credits, credit_price_id=body.credit_price_id, quantity=body.quantity,
            business_unit_id=body.business_unit_id, member_id=body.member_id, description=body.description,
            reference=body.reference, occurred_at=body.occurred_at, allow_overdraft=body.allow_overdraft, now=clock.now(),
            actor=caller.actor,
        )
        return 201, presenters.consumption(consumption, draws)

    return await write_soon(
        database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json")
    )


@router.post(
    "/{account_id}/holds",
    status_code=201,
    summary="Place a hold",
    description=(
        "Reserve `credits`, or (`credit_price_id`, `quantity`), for an event at `event_at`; capture or release it "
        "later. Idempotent with `Idempotency-Key`."
    ),
    responses=docs.documented(
        docs.Hold,
        "The hold, with the grants it reserves from.",
        *docs.AUTH,
        "not_found",
        "unknown_reference",
        "insufficient_credits",
        "idempotency_conflict",
        status=201,
    ),
)
async def create_hold(
    account_id: str, body: HoldIn, caller: Bookings, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None
):
    check_account(caller, account_id)
    def action(session):
        hold, draws = place_hold(
            session, account_id, event_at=body.event_at, deadline=body.deadline, credits=body.credits,
            credit_price_id=body.credit_price_id, quantity=body.quantity, business_unit_id=body.business_unit_id,
            member_id=body.member_id, description=body.description, reference=body.reference, now=clock.now(), actor=caller.actor,
        )
        return 201, presenters.hold(hold, draws)

    return await write_soon(
        database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json")
    )


@router.get(
    "/{account_id}/holds",
    summary="List an account's holds",
    description="The account's holds, optionally only those of a `?status=`.",
    responses=docs.documented(docs.HoldPage, "A page of holds.", *docs.AUTH, "not_found"),
)
def list_holds(
    account_id: str, caller: ReadAny, database: DatabaseDep, page: Pagination, status: Literal["open", "captured", "released"] | None = None
):
    check_account(caller, account_id)
    with database.read() as session:
        account = get_or_404(session, Account, account_id, "account")
        statement = select(Hold).where(Hold.account_id == account.id)
        if status is not None:
            statement = statement.where(Hold.status == status)
        return paginate(session, statement, Hold.id, page, lambda hold: presenters.hold(hold, hold_draws(session, hold.id)))


@router.post(
    "/{account_id}/top-ups",
    status_code=201,
    summary="Buy a credit pack",
    description=(
        "Invoice `quantity` of a credit pack (`product_id`) at once, approved (and its credits granted) when `approve` "
        "is true. Idempotent with `Idempotency-Key`."
    ),
    responses=docs.documented(
        docs.Invoice, "The invoice issued.", *docs.AUTH, "not_found", "unknown_reference", "currency_mismatch", "idempotency_conflict", status=201
    ),
)
def create_top_up(account_id: str, body: TopUpIn, caller: Billing, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None):
    def action(session):
        invoice = top_up(
            session, account_id, product_id=body.product_id, quantity=body.quantity, business_unit_id=body.business_unit_id,
            approve=body.approve, now=clock.now(), actor=caller.actor,
        )
        return 201, present_invoice(session, invoice)

    return write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json"))


@router.post(
    "/{account_id}/adjustments",
    status_code=201,
    summary="Adjust credits",
    description=(
        "Add credits (a new grant, with an optional `lifetime`) or deduct them, effective at once; a deduction past the"
        " available credits is 409 `insufficient_credits`. Idempotent with `Idempotency-Key`."
    ),
    responses=docs.documented(
        docs.Adjustment,
        "The adjustment, with the grants made or drawn from.",
        *docs.AUTH,
        "not_found",
        "unknown_reference",
        "insufficient_credits",
        "idempotency_conflict",
        status=201,
    ),
)
def create_adjustment(
    account_id: str, body: AdjustmentIn, caller: Billing, database: DatabaseDep, request: Request, idempotency_key: IdempotencyKey = None
):
    def action(session):
        adjustment, touched = adjust(
            session, account_id, kind=body.kind, credits=body.credits, reason=body.reason, lifetime=body.lifetime,
            business_unit_id=body.business_unit_id, now=clock.now(), actor=caller.actor,
        )
        return 201, presenters.adjustment(adjustment, touched)

    return write(database, action, caller=caller, request=request, idempotency_key=idempotency_key, body=body.model_dump(mode="json"))


def _ledger_csv(entries: list[LedgerEntry], account_id: int) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["id", "kind", "credits", "balance_after", "grant_id", "business_unit_id", "source_type", "source_id", "actor", "occurred_at", "recorded_at"]
    )
    for entry in entries:
        row = presenters.ledger_entry(entry)
        writer.writerow([row["id"], row["kind"], row["credits"], row["balance_after"], row["grant_id"] or "", row["business_unit_id"] or "",
                         entry.source_type, entry.source_id, entry.actor, row["occurred_at"], row["recorded_at"]])
    return Response(buffer.getvalue(), media_type="text/csv", headers={"Content-Disposition": f'attachment; filename="ledger-{account_id}.csv"'})
