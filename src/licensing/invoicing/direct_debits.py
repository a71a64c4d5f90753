"""SEPA direct debit (SPEC 12): mandates, and collections written as pain.008 files.

A **mandate** is an EUR account's permission to collect from a bank account: IBAN (checked with
schwifty), BIC (optional: taken from the IBAN's bank when schwifty knows it), the mandate
reference (generated when absent: ``LIC-<account>-<mandate>``), the day it was signed, the scheme
(``CORE`` for consumers, ``B2B`` for businesses) and its status (``active`` until revoked).

A **collection** (``create_direct_debit``) covers every approved, unpaid EUR invoice of an account
with an active mandate, each invoice once ever (a unique key on the invoice), for the amount
still due, under the account's most recently signed active mandate of the collection's scheme.
It writes one pain.008.001.02 file (``sepaxml``, checked against the ISO 20022 XSD that sepaxml
ships) with the operator's creditor identifier, IBAN and BIC, and records each invoice's collection as a ``direct_debit`` payment received on the
collection date. A returned debit is that payment's reversal (``POST /payments/{id}/reverse``),
which reopens the invoice: a later collection does not take it again (it is collected once);
it is paid another way.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlmodel import Session, col, select

from licensing.accounts.models import Account
from licensing.clock import local_date, start_of_day
from licensing.config import Settings, get_settings
from licensing.db.repository import get_or_404, lock
from licensing.errors import Conflict, CurrencyMismatch, ValidationFailed
from licensing.events import record_event
from licensing.invoicing.models import DirectDebit, DirectDebitItem, Invoice, Mandate
from licensing.invoicing.payments import amount_due, record_payment
from licensing.money import round_money

SCHEMES = ("CORE", "B2B")
SCHEMA = "pain.008.001.02"


class DirectDebitUnavailable(Conflict):
    code = "direct_debit_unavailable"
    title = "Direct debit is not set up"


class NothingToCollect(Conflict):
    code = "nothing_to_collect"
    title = "No invoice to collect"


class MandateRevoked(Conflict):
    code = "mandate_revoked"
    title = "Mandate already revoked"


def create_mandate(
    session: Session, account_id: int | str, *, iban: str, bic: str | None = None, mandate_reference: str | None = None,
    signed_on: date, scheme: str = "CORE", now: datetime,
) -> Mandate:
    from schwifty import BIC, IBAN
    from schwifty.exceptions import SchwiftyException

    account = lock(session, Account, account_id, "account")
    if account.currency != "EUR":
        raise CurrencyMismatch(
            f"account {account.id} is billed in {account.currency}: SEPA direct debit collects EUR only", account_currency=account.currency
        )
    if scheme not in SCHEMES:
        raise ValidationFailed("scheme must be CORE or B2B", field="scheme")
    try:
        checked_iban = IBAN(iban)
    except SchwiftyException as error:
        raise ValidationFailed(f"iban is not a valid IBAN ({error})", field="iban") from None
    try:
        checked_bic = BIC(bic).compact if bic else (checked_iban.bic.compact if checked_iban.bic else None)
    except SchwiftyException as error:
        raise ValidationFailed(f"bic is not a valid BIC ({error})", field="bic") from None
    if signed_on > local_date(now, get_settings().zone):
        raise ValidationFailed("signed_on is in the future", field="signed_on")
    if mandate_reference is not None and session.exec(select(Mandate.id).where(Mandate.mandate_reference == mandate_reference)).first():
        raise Conflict(f"mandate reference {mandate_reference!r} is taken", field="mandate_reference")
    mandate = Mandate(
        account_id=account.id, iban=checked_iban.compact, bic=checked_bic, debtor_name=account.name[:200],
        mandate_reference=mandate_reference or f"PENDING-{uuid.uuid4().hex[:20]}", signed_on=signed_on, scheme=scheme, created_at=now,
    )
    session.add(mandate)
    session.flush()
    if mandate_reference is None:
        mandate.mandate_reference = f"LIC-{account.id}-{mandate.id}"
        session.add(mandate)
    record_event(session, "mandate.created", {"mandate_id": str(mandate.id), "account_id": str(account.id), "scheme": scheme}, at=now)
    session.flush()
    return mandate


def revoke_mandate(session: Session, mandate_id: int | str, *, now: datetime) -> Mandate:
    mandate = get_or_404(session, Mandate, mandate_id, "mandate")
    mandate = lock(session, Mandate, mandate.id, "mandate")
    if mandate.status == "revoked":
        raise MandateRevoked(f"mandate {mandate.id} was revoked at {mandate.revoked_at.isoformat()}")
    mandate.status, mandate.revoked_at = "revoked", now
    session.add(mandate)
    record_event(session, "mandate.revoked", {"mandate_id": str(mandate.id), "account_id": str(mandate.account_id)}, at=now)
    session.flush()
    return mandate


def create_direct_debit(
    session: Session, *, collection_date: date, scheme: str = "CORE", now: datetime, actor: str, settings: Settings | None = None
) -> DirectDebit:
    """Collect every approved, unpaid EUR invoice of an account with an active mandate of
    ``scheme`` (each invoice once): the pain.008 file and one direct-debit payment per invoice.
    CORE and B2B collections are separate files (banks take them separately)."""
    from sepaxml import SepaDD

    settings = settings or get_settings()
    if not (settings.operator_creditor_id and settings.operator_iban and settings.operator_bic):
        raise DirectDebitUnavailable(
            "collecting by direct debit needs LICENSING_OPERATOR_CREDITOR_ID, LICENSING_OPERATOR_IBAN and LICENSING_OPERATOR_BIC"
        )
    if scheme not in SCHEMES:
        raise ValidationFailed("scheme must be CORE or B2B", field="scheme")
    if collection_date <= local_date(now, settings.zone):
        raise ValidationFailed("collection_date must be after today", field="collection_date")
    mandates = {
        mandate.account_id: mandate
        for mandate in session.exec(
            select(Mandate)
            .where(Mandate.status == "active", Mandate.scheme == scheme)
            .order_by(col(Mandate.account_id), col(Mandate.signed_on), col(Mandate.id))
        )
    }
    collected = select(DirectDebitItem.invoice_id)
    invoices = session.exec(
        select(Invoice)
        .where(
            Invoice.status == "approved", Invoice.currency == "EUR", col(Invoice.account_id).in_(list(mandates)),
            col(Invoice.id).not_in(collected),
        )
        .order_by(Invoice.id)
        .with_for_update()
    ).all() if mandates else []
    invoices = [invoice for invoice in invoices if amount_due(invoice) > 0]
    if not invoices:
        raise NothingToCollect(f"no approved, unpaid EUR invoice of an account with an active {scheme} mandate is left to collect")

    file = SepaDD(
        {
            "name": settings.operator_name, "IBAN": settings.operator_iban, "BIC": settings.operator_bic, "batch": True,
            "creditor_id": settings.operator_creditor_id, "currency": "EUR", "instrument": scheme,
        },
        schema=SCHEMA, clean=True,
    )
    debit = DirectDebit(
        collection_date=collection_date, message_id=file.msg_id[:35], count=0, total=Decimal(0), xml="", created_at=now, created_by=actor
    )
    session.add(debit)
    session.flush()
    received_at = start_of_day(collection_date, settings.zone)
    items, total = [], Decimal(0)
    for invoice in invoices:
        mandate = mandates[invoice.account_id]
        due = amount_due(invoice)
        sequence = "RCUR" if mandate.first_collected_on is not None else "FRST"
        end_to_end = f"{invoice.number}"[:35]
        payment = record_payment(
            session, invoice.id, amount=due, currency="EUR", method="direct_debit", received_at=received_at,
            reference=f"direct debit {debit.id}, mandate {mandate.mandate_reference}"[:200], now=now, actor=actor,
        )
        items.append(DirectDebitItem(
            direct_debit_id=debit.id, invoice_id=invoice.id, mandate_id=mandate.id, payment_id=payment.id, amount=due, sequence=sequence,
            end_to_end_id=end_to_end,
        ))
        file.add_payment({
            "name": mandate.debtor_name, "IBAN": mandate.iban, "amount": int(round_money(due, "EUR") * 100), "type": sequence,
            "collection_date": collection_date, "mandate_id": mandate.mandate_reference, "mandate_date": mandate.signed_on,
            "description": f"Invoice {invoice.number}", "endtoend_id": end_to_end,
        } | ({"BIC": mandate.bic} if mandate.bic else {}))
        if mandate.first_collected_on is None:
            mandate.first_collected_on = collection_date
            session.add(mandate)
        total += due
    debit.xml = file.export(validate=True, pretty_print=True).decode()
    debit.count, debit.total = len(items), total
    session.add_all([debit, *items])
    record_event(
        session, "direct_debit.created",
        {
            "direct_debit_id": str(debit.id), "collection_date": collection_date.isoformat(), "count": debit.count,
            "total": str(round_money(total, "EUR")),
        },
        at=now,
    )
    session.flush()
    return debit

