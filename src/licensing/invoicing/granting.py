"""Credits of invoice lines: granted (on approval, or on payment for packs that say so) and
taken back (credit notes, voids, a payment reversal that reopens an invoice whose credits came
with its payment). One module for both, used by approval, credit notes and payments.

Grant dates, in the operator's time zone:

* recurring lines (monthly, weekly): ``valid_from`` = 00:00 on the line's start (its week's
  start for a weekly line); ``expires_at`` = 00:00 on (nominal start + lifetime), the months of
  a monthly line's lifetime landing on the licence's anchor day (anchor 31: Feb 28 + P1M =
  Mar 31). A partial first period starting Jan 16 with anchor 1 has nominal start Jan 1, so its
  P1M credits expire on Feb 1 like every other month's.
* one-off lines: ``valid_from`` = the later of 00:00 on the line's date and the moment of the
  grant (approval or payment); ``expires_at`` = 00:00 on (the date of ``valid_from`` + lifetime).
* a pack with no lifetime never expires.
"""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from sqlmodel import Session, col, select

from licensing.accounts.models import Account
from licensing.books.journal import post
from licensing.catalog.models import Product
from licensing.clock import local_date, start_of_day
from licensing.config import Settings
from licensing.credits import ledger
from licensing.credits.grants import NewGrant, create_grants
from licensing.credits.kinds import LedgerKind
from licensing.credits.models import Grant
from licensing.dates import Lifetime, parse_lifetime
from licensing.errors import CreditsAlreadyConsumed
from licensing.invoicing.journal import grant_value_entries
from licensing.invoicing.models import InvoiceLine
from licensing.licences.models import ContractService, Licence


def grant_window(
    line, lifetime: Lifetime | None, anchor_day: int | None, *, approved_at: datetime, settings: Settings
) -> tuple[datetime, datetime | None]:
    """(valid_from, expires_at) of the grant for a credit-pack line (a mapping of its columns)
    approved at ``approved_at``."""
    zone = settings.zone
    if line["schedule"] in ("monthly", "weekly"):
        valid_from = start_of_day(line["period_start"], zone)
        if lifetime is None:
            return valid_from, None
        anchor = anchor_day if line["schedule"] == "monthly" else None
        return valid_from, start_of_day(lifetime.end(line["nominal_start"], anchor_day=anchor), zone)
    valid_from = max(start_of_day(line["period_start"], zone), approved_at)
    if lifetime is None:
        return valid_from, None
    return valid_from, start_of_day(lifetime.end(local_date(valid_from, zone)), zone)


def grant_lines(
    session: Session,
    accounts: dict[int, Account],
    lines: list[dict],
    *,
    account_of: dict[int, int],
    licence_of: dict[int, int | None],
    at: datetime,
    actor: str,
    settings: Settings,
    on: str,
) -> None:
    """Grant the credits of ``lines`` (mappings of invoice line columns, credit packs only) whose
    product grants ``on`` approval or payment, at ``at``. ``accounts`` are locked by the caller."""
    products = {
        product_id: (parse_lifetime(lifetime) if lifetime else None, grant_on)
        for product_id, lifetime, grant_on in session.exec(
            select(Product.id, Product.lifetime, Product.grant_on).where(col(Product.id).in_({line["product_id"] for line in lines}))
        ).all()
    }
    lines = [line for line in lines if products[line["product_id"]][1] == on]
    if not lines:
        return
    anchors = dict(
        session.exec(select(Licence.id, Licence.billing_anchor_day).where(col(Licence.id).in_({lid for lid in licence_of.values() if lid}))).all()
    )
    service_ids = {line["contract_service_id"] for line in lines if line["contract_service_id"] is not None}
    caps = (
        dict(
            session.exec(
                select(ContractService.id, ContractService.max_rollover).where(
                    col(ContractService.id).in_(service_ids), col(ContractService.max_rollover).is_not(None)
                )
            ).all()
        )
        if service_ids
        else {}
    )
    new_grants = []
    windows: dict[tuple, tuple[datetime, datetime | None]] = {}  # licences share their dates
    for line in lines:
        anchor = anchors.get(licence_of[line["invoice_id"]])
        key = (line["schedule"], line["period_start"], line["nominal_start"], line["product_id"], anchor)
        if key not in windows:
            windows[key] = grant_window(line, products[line["product_id"]][0], anchor, approved_at=at, settings=settings)
        valid_from, expires_at = windows[key]
        new_grants.append(
            NewGrant(
                account_id=account_of[line["invoice_id"]], credits=line["credits"], value=line["net"],
                valid_from=valid_from, expires_at=expires_at, business_unit_id=line["business_unit_id"],
                source_type="invoice_line", source_id=str(line["id"]), contract_service_id=line["contract_service_id"],
                invoice_line_id=line["id"], rollover_cap=caps.get(line["contract_service_id"]),
            )
        )
    create_grants(session, accounts, new_grants, actor=actor, at=at)


def grant_on_payment(session: Session, invoice, account: Account, *, at: datetime, actor: str, settings: Settings) -> None:
    """An invoice just paid in full: grant its packs that grant on payment (once: a line that
    has a grant already is left as it is). The caller holds the account's lock."""
    granted = select(Grant.invoice_line_id).where(col(Grant.invoice_line_id).is_not(None))
    lines = [
        row._asdict()
        for row in session.exec(
            select(
                InvoiceLine.id, InvoiceLine.invoice_id, InvoiceLine.product_id, InvoiceLine.business_unit_id,
                InvoiceLine.contract_service_id, InvoiceLine.schedule, InvoiceLine.period_start, InvoiceLine.nominal_start,
                InvoiceLine.credits, InvoiceLine.net,
            )
            .join(Product, Product.id == InvoiceLine.product_id)
            .where(
                InvoiceLine.invoice_id == invoice.id, col(InvoiceLine.credits).is_not(None), Product.grant_on == "payment",
                col(InvoiceLine.id).not_in(granted),
            )
            .order_by(InvoiceLine.id)
        )
    ]
    if lines:
        grant_lines(
            session, {account.id: account}, lines, account_of={invoice.id: account.id}, licence_of={invoice.id: invoice.licence_id},
            at=at, actor=actor, settings=settings, on="payment",
        )
        post(session, grant_value_entries(session, invoice, kind="grant", source_type="invoice", source_id=invoice.id, at=at), at=at)


def take_back_on_reopening(session: Session, invoice, account: Account, *, source_id: int, at: datetime, actor: str) -> dict[int, Decimal]:
    """A payment reversal reopened an invoice: take back what remains of the credits its payment
    granted (packs that grant on payment; what was used stays used)."""
    line_ids = session.exec(
        select(InvoiceLine.id)
        .join(Product, Product.id == InvoiceLine.product_id)
        .where(InvoiceLine.invoice_id == invoice.id, col(InvoiceLine.credits).is_not(None), Product.grant_on == "payment")
    ).all()
    if not line_ids:
        return {}
    taken = take_back(
        session, account, [(line_id, Fraction(1)) for line_id in line_ids], policy="cap_to_remaining", source_type="payment_reversal",
        source_id=source_id, now=at, actor=actor,
    )
    post(session, grant_value_entries(session, invoice, kind="reopen", source_type="payment_reversal", source_id=source_id, at=at), at=at)
    return taken


def take_back(
    session: Session,
    account: Account,
    shares: list[tuple[int, Fraction]],
    *,
    policy: str,
    source_type: str,
    source_id: int,
    now: datetime,
    actor: str,
) -> dict[int, Decimal]:
    """Take back ``share`` of the grant of each invoice line (lines without a grant are plain
    services: nothing to take back). Refused with the remaining count when too few remain,
    unless the policy caps to what remains. Returns the credits taken back per invoice line."""
    grants = {
        grant.invoice_line_id: grant
        for grant in session.exec(
            select(Grant).where(col(Grant.invoice_line_id).in_([line_id for line_id, _ in shares])).order_by(Grant.id)
            .with_for_update().execution_options(populate_existing=True)
        ).all()
    }
    plan = []
    for line_id, share in shares:
        grant = grants.get(line_id)
        if grant is None:
            continue
        wanted = Decimal(math.floor(Fraction(grant.credits) * share * 100)) / 100  # rounded down to 2 places
        if wanted > grant.remaining and policy != "cap_to_remaining":
            raise CreditsAlreadyConsumed(
                f"{wanted:.2f} credits of grant {grant.id} would be taken back but only {grant.remaining:.2f} remain "
                f"(the others were used, held or have expired); approve with credit_policy cap_to_remaining to take back what remains",
                grant_id=str(grant.id), credits_to_take_back=f"{wanted:.2f}", credits_remaining=f"{grant.remaining:.2f}",
            )
        plan.append((line_id, grant, min(wanted, grant.remaining)))
    taken: dict[int, Decimal] = {}
    for line_id, grant, take in plan:
        taken[line_id] = take
        if take <= 0:
            continue
        ledger.move(
            session, account, grant, LedgerKind.CREDIT_NOTE_REVERSAL, -take, source_type=source_type,
            source_id=source_id, actor=actor, occurred_at=now, recorded_at=now,
        )
    return taken


