"""Rows and results shaped as the JSON of API.md (ids as strings, decimals as strings)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

from licensing.accounts.models import Account, BusinessUnit, Member
from licensing.api.schemas import credits_text, instant_text
from licensing.auth.models import ApiKey
from licensing.auth.services import scope_of, status_of
from licensing.books.chart import ROLES, Chart
from licensing.books.reading import BalanceLine
from licensing.books.views import EntryView
from licensing.catalog.models import CreditPrice, Product
from licensing.credits.balance import Figures, Summary
from licensing.credits.consumption import Draw
from licensing.credits.models import (
    Adjustment,
    Consumption,
    Grant,
    Hold,
    LedgerEntry,
    Transfer,
)
from licensing.invoicing.models import (
    CreditNote,
    CreditNoteLine,
    DirectDebit,
    DirectDebitItem,
    Invoice,
    InvoiceLine,
    Mandate,
    Payment,
    StatementEntry,
)
from licensing.invoicing.payments import due_of
from licensing.invoicing.references import invoice_reference
from licensing.licences.models import ContractService, Licence
from licensing.money import minor_unit, round_credits, round_money
from licensing.reports import LiabilityReport, Month, RevenueReport, totals
from licensing.reports.receivables import BUCKETS, Receivables


def sid(value: int | None) -> str | None:
    return None if value is None else str(value)


def money_text(value: Decimal | None, currency: str) -> str | None:
    """At least the currency's minor unit of places ("120.00", "1000" JPY), more only if needed."""
    if value is None:
        return None
    places = minor_unit(currency)
    quantised = value.quantize(Decimal(1).scaleb(-places))
    if quantised == value:
        return f"{quantised:f}"
    return f"{value.normalize():f}"


def plain_text(value: Decimal | None) -> str | None:
    if value is None:
        return None
    text = f"{value.normalize():f}"
    return text if "." in text else f"{text}"


def account(row: Account) -> dict:
    return {
        "id": sid(row.id), "name": row.name, "email": row.email, "currency": row.currency, "address": row.address,
        "country": row.country, "tax_id": row.tax_id, "tax_exempt": row.tax_exempt,
        "created_at": instant_text(row.created_at),
    }


def business_unit(row: BusinessUnit) -> dict:
    return {"id": sid(row.id), "account_id": sid(row.account_id), "name": row.name, "created_at": instant_text(row.created_at)}


def member(row: Member) -> dict:
    return {"id": sid(row.id), "account_id": sid(row.account_id), "name": row.name, "email": row.email, "created_at": instant_text(row.created_at)}


def product(row: Product) -> dict:
    return {
        "id": sid(row.id), "kind": row.kind, "name": row.name, "price": money_text(row.price, row.currency),
        "currency": row.currency, "tax_rate": f"{row.tax_rate:.2f}", "credits": credits_text(row.credits),
        "lifetime": row.lifetime, "grant_on": row.grant_on, "active": row.active, "created_at": instant_text(row.created_at),
    }


def credit_price(row: CreditPrice) -> dict:
    return {"id": sid(row.id), "name": row.name, "credits_per_unit": plain_text(row.credits_per_unit), "created_at": instant_text(row.created_at)}


def licence(row: Licence) -> dict:
    return {
        "id": sid(row.id), "account_id": sid(row.account_id), "start_date": row.start_date.isoformat(),
        "end_date": row.end_date.isoformat() if row.end_date else None, "auto_renew": row.auto_renew,
        "renewal_term": row.renewal_term, "billing_anchor_day": row.billing_anchor_day, "auto_approve": row.auto_approve,
        "status": row.status, "terminated_on": row.terminated_on.isoformat() if row.terminated_on else None,
        "created_at": instant_text(row.created_at),
    }


def service(row: ContractService, currency: str) -> dict:
    return {
        "id": sid(row.id), "licence_id": sid(row.licence_id), "product_id": sid(row.product_id),
        "quantity": plain_text(row.quantity), "unit_price": money_text(row.unit_price, currency),
        "schedule": row.schedule, "from_date": row.from_date.isoformat(),
        "to_date": row.to_date.isoformat() if row.to_date else None, "business_unit_id": sid(row.business_unit_id),
        "max_rollover": credits_text(row.max_rollover), "prorate": row.prorate, "prorate_credits": row.prorate_credits,
        "created_at": instant_text(row.created_at),
    }


def invoice_line(row: InvoiceLine, currency: str, grant: Grant | None = None) -> dict:
    return {
        "id": sid(row.id), "description": row.description, "contract_service_id": sid(row.contract_service_id),
        "product_id": sid(row.product_id), "period_start": row.period_start.isoformat(), "period_end": row.period_end.isoformat(),
        "quantity": plain_text(row.quantity), "unit_price": money_text(row.unit_price, currency),
        "tax_rate": f"{row.tax_rate:.2f}", "net": money_text(row.net, currency), "tax": money_text(row.tax, currency),
        "credits": credits_text(row.credits), "grant_id": sid(grant.id) if grant else None,
        "credits_valid_from": instant_text(grant.valid_from) if grant else None,
        "credits_expire_at": instant_text(grant.expires_at) if grant else None,
    }


def invoice(row: Invoice, lines: list[InvoiceLine], grants: dict[int, Grant] | None = None, *, today: date) -> dict:
    """The invoice with its lines, and what is due on it at ``today`` (the operator's date)."""
    grants = grants or {}  # by invoice line id
    due = due_of(row, today)
    return {
        "id": sid(row.id), "number": row.number, "status": row.status, "kind": row.kind,
        "account_id": sid(row.account_id), "licence_id": sid(row.licence_id),
        "issue_date": row.issue_date.isoformat(), "due_date": row.due_date.isoformat(),
        "period_start": row.period_start.isoformat() if row.period_start else None,
        "period_end": row.period_end.isoformat() if row.period_end else None,
        "lines": [invoice_line(line, row.currency, grants.get(line.id)) for line in lines],
        "net": money_text(row.net, row.currency), "tax": money_text(row.tax, row.currency),
        "gross": money_text(row.gross, row.currency), "currency": row.currency,
        "approved_at": instant_text(row.approved_at), "created_at": instant_text(row.created_at),
        "voided_at": instant_text(row.voided_at), "void_reason": row.void_reason,
        "amount_paid": money_text(row.amount_paid, row.currency), "amount_credited": money_text(row.amount_credited, row.currency),
        "amount_due": money_text(due.amount_due, row.currency), "payment_status": due.payment_status, "days_overdue": due.days_overdue,
        "payment_reference": invoice_reference(row.number),
    }


def mandate(row: Mandate) -> dict:
    return {
        "id": sid(row.id), "account_id": sid(row.account_id), "iban": row.iban, "bic": row.bic, "debtor_name": row.debtor_name,
        "mandate_reference": row.mandate_reference, "signed_on": row.signed_on.isoformat(), "scheme": row.scheme, "status": row.status,
        "first_collected_on": row.first_collected_on.isoformat() if row.first_collected_on else None,
        "revoked_at": instant_text(row.revoked_at), "created_at": instant_text(row.created_at),
    }


def direct_debit(row: DirectDebit, items: list[DirectDebitItem]) -> dict:
    return {
        "id": sid(row.id), "collection_date": row.collection_date.isoformat(), "message_id": row.message_id, "count": row.count,
        "total": money_text(row.total, "EUR"), "currency": "EUR",
        "items": [
            {
                "invoice_id": sid(item.invoice_id), "mandate_id": sid(item.mandate_id), "payment_id": sid(item.payment_id),
                "amount": money_text(item.amount, "EUR"), "sequence": item.sequence, "end_to_end_id": item.end_to_end_id,
            }
            for item in items
        ],
        "created_at": instant_text(row.created_at), "created_by": row.created_by,
    }


def statement_entry(row: StatementEntry) -> dict:
    return {
        "id": sid(row.id), "status": row.status, "statement_id": row.statement_id, "account_iban": row.account_iban,
        "amount": money_text(row.amount, row.currency), "currency": row.currency, "booked_on": row.booked_on.isoformat(),
        "reference": row.reference, "remittance": row.remittance, "debtor_name": row.debtor_name,
        "invoice_id": sid(row.invoice_id), "payment_id": sid(row.payment_id), "reason": row.reason, "created_at": instant_text(row.created_at),
    }


def payment(row: Payment, held: dict[int | None, Decimal]) -> dict:
    """A payment, with what each invoice holds of it (``held``: invoice id or None for the
    unapplied rest -> amount)."""
    return {
        "id": sid(row.id), "account_id": sid(row.account_id), "invoice_id": sid(row.invoice_id),
        "amount": money_text(row.amount, row.currency), "currency": row.currency, "method": row.method,
        "received_at": instant_text(row.received_at), "reference": row.reference, "status": row.status,
        "applied": [
            {"invoice_id": sid(invoice_id), "amount": money_text(amount, row.currency)} for invoice_id, amount in sorted(
                ((invoice_id, amount) for invoice_id, amount in held.items() if invoice_id is not None)
            )
        ],
        "unapplied": money_text(held.get(None, Decimal(0)), row.currency),
        "reversed_at": instant_text(row.reversed_at), "reversal_reason": row.reversal_reason, "recorded_by": row.recorded_by,
        "created_at": instant_text(row.created_at),
    }


def grant(row: Grant) -> dict:
    return {
        "id": sid(row.id), "account_id": sid(row.account_id), "business_unit_id": sid(row.business_unit_id),
        "credits": credits_text(row.credits), "remaining": credits_text(row.remaining), "used": credits_text(row.used),
        "held": credits_text(row.held), "removed": credits_text(row.removed), "expired": credits_text(row.expired),
        "valid_from": instant_text(row.valid_from), "expires_at": instant_text(row.expires_at),
        "value": money_text(row.value, row.currency), "currency": row.currency,
        "value_per_credit": f"{(row.value / row.credits).quantize(Decimal('0.000001'))}",
        "source": {"type": row.source_type, "id": row.source_id}, "created_at": instant_text(row.created_at),
    }


def ledger_entry(row: LedgerEntry) -> dict:
    return {
        "id": sid(row.id), "kind": row.kind, "credits": credits_text(row.credits), "balance_after": credits_text(row.balance_after),
        "grant_id": sid(row.grant_id), "business_unit_id": sid(row.business_unit_id),
        "source": {"type": row.source_type, "id": row.source_id}, "actor": row.actor,
        "occurred_at": instant_text(row.occurred_at), "recorded_at": instant_text(row.recorded_at),
    }


def consumption(row: Consumption, draws: list[Draw]) -> dict:
    return {
        "id": sid(row.id), "account_id": sid(row.account_id), "credits": credits_text(row.credits),
        "business_unit_id": sid(row.business_unit_id), "member_id": sid(row.member_id),
        "credit_price_id": sid(row.credit_price_id), "quantity": plain_text(row.quantity),
        "description": row.description, "reference": row.reference, "occurred_at": instant_text(row.occurred_at),
        "created_at": instant_text(row.created_at), "reversed_at": instant_text(row.reversed_at),
        "status": "reversed" if row.reversed_at else "consumed", "debt": credits_text(row.debt), "hold_id": sid(row.hold_id),
        "draws": [{"grant_id": sid(draw.grant_id), "credits": credits_text(draw.credits)} for draw in draws],
    }


def figures(values: Figures) -> dict:
    return {
        "granted": credits_text(values.granted), "remaining": credits_text(values.remaining), "used": credits_text(values.used),
        "held": credits_text(values.held), "removed": credits_text(values.removed), "debt": credits_text(values.debt),
    }


def summary(result: Summary) -> dict:
    return {
        "account_id": sid(result.account_id),
        "at": instant_text(result.at),
        **figures(result.total),
        "expiring": [{"credits": credits_text(credits), "expires_at": instant_text(at)} for credits, at in result.expiring],
        "pending": [
            {"grant_id": sid(grant_id), "credits": credits_text(credits), "valid_from": instant_text(at)} for grant_id, credits, at in result.pending
        ],
        "unrestricted": figures(result.unrestricted),
        "business_units": [{"business_unit_id": sid(unit_id), "name": name, **figures(values)} for unit_id, name, values in result.business_units],
    }


def hold(row: Hold, draws: list[Draw]) -> dict:
    return {
        "id": sid(row.id), "account_id": sid(row.account_id), "status": row.status, "credits": credits_text(row.credits),
        "business_unit_id": sid(row.business_unit_id), "member_id": sid(row.member_id),
        "credit_price_id": sid(row.credit_price_id), "quantity": plain_text(row.quantity),
        "description": row.description, "reference": row.reference, "event_at": instant_text(row.event_at),
        "deadline": instant_text(row.deadline), "consumption_id": sid(row.consumption_id),
        "created_at": instant_text(row.created_at), "closed_at": instant_text(row.closed_at),
        "draws": [{"grant_id": sid(draw.grant_id), "credits": credits_text(draw.credits)} for draw in draws],
    }


def adjustment(row: Adjustment, touched: list[tuple[int, Decimal]]) -> dict:
    return {
        "id": sid(row.id), "account_id": sid(row.account_id), "kind": row.kind, "credits": credits_text(row.credits),
        "reason": row.reason, "lifetime": row.lifetime, "business_unit_id": sid(row.business_unit_id), "actor": row.actor,
        "created_at": instant_text(row.created_at),
        "grants": [{"grant_id": sid(grant_id), "credits": credits_text(credits)} for grant_id, credits in touched],
    }


def transfer(row: Transfer, moves: list[tuple[int, int, Decimal]]) -> dict:
    return {
        "id": sid(row.id), "from_account_id": sid(row.from_account_id), "to_account_id": sid(row.to_account_id),
        "from_business_unit_id": sid(row.from_business_unit_id), "to_business_unit_id": sid(row.to_business_unit_id),
        "credits": credits_text(row.credits), "reason": row.reason, "actor": row.actor, "created_at": instant_text(row.created_at),
        "moves": [{"from_grant_id": sid(origin), "to_grant_id": sid(new), "credits": credits_text(credits)} for origin, new, credits in moves],
    }


def credit_note(row: CreditNote, lines: list[CreditNoteLine], invoice_number: str | None = None, refund: Decimal = Decimal(0)) -> dict:
    """``refund``: what is still to be paid back for it (``payments.refund_due``)."""
    return {
        "id": sid(row.id), "number": row.number, "status": row.status, "invoice_id": sid(row.invoice_id),
        "invoice_number": invoice_number, "account_id": sid(row.account_id), "reason": row.reason,
        "credit_policy": row.credit_policy, "issue_date": row.issue_date.isoformat(), "currency": row.currency,
        "lines": [
            {
                "id": sid(line.id), "invoice_line_id": sid(line.invoice_line_id), "description": line.description,
                "quantity": plain_text(line.quantity), "unit_price": money_text(line.unit_price, row.currency),
                "tax_rate": f"{line.tax_rate:.2f}", "net": money_text(line.net, row.currency), "tax": money_text(line.tax, row.currency),
                "credits_taken_back": credits_text(line.credits_taken_back),
            }
            for line in lines
        ],
        "net": money_text(row.net, row.currency), "tax": money_text(row.tax, row.currency), "gross": money_text(row.gross, row.currency),
        "approved_at": instant_text(row.approved_at), "created_at": instant_text(row.created_at),
        # Money in, as for invoices, seen from the member: what is owed back to them.
        "amount_paid": money_text(Decimal(0), row.currency), "amount_due": money_text(refund, row.currency),
        "payment_status": "unpaid" if refund > 0 else "paid", "days_overdue": 0, "payment_reference": None,
    }


def rounded(value: Fraction, currency: str) -> str:
    """An exact figure shown at the currency's minor unit, half-up."""
    return money_text(round_money(Decimal(value.numerator) / Decimal(value.denominator), currency), currency)


def exact_credits(value: Fraction) -> str:
    return credits_text(round_credits(Decimal(value.numerator) / Decimal(value.denominator)))


def liability_report(report: LiabilityReport, names: dict[int, str] | None = None) -> dict:
    """``names``: the accounts' names, shown beside their ids."""
    names = names or {}
    return {
        "as_of": instant_text(report.as_of),
        "currencies": [
            {
                "currency": currency, "credits": exact_credits(total.credits), "value": rounded(total.value, currency),
                "accounts": [
                    {
                        "account_id": sid(account_id), "account_name": names.get(account_id), "credits": exact_credits(item.credits),
                        "value": rounded(item.value, currency),
                    }
                    for account_id, item in sorted(accounts.items())
                ],
            }
            for currency, (total, accounts) in sorted(report.currencies.items())
        ],
    }


def receivables_report(report: Receivables, names: dict[int, str]) -> dict:
    currencies = []
    for currency, accounts in sorted(report.currencies.items()):
        totals = dict.fromkeys(BUCKETS, Decimal(0))
        rows = []
        for account_id, buckets in sorted(accounts.items()):
            for bucket, amount in buckets.items():
                totals[bucket] += amount
            rows.append({
                "account_id": sid(account_id), "account_name": names.get(account_id),
                "total": money_text(sum(buckets.values(), Decimal(0)), currency),
                "buckets": {bucket: money_text(amount, currency) for bucket, amount in buckets.items()},
            })
        currencies.append({
            "currency": currency, "total": money_text(sum(totals.values(), Decimal(0)), currency),
            "buckets": {bucket: money_text(amount, currency) for bucket, amount in totals.items()}, "accounts": rows,
        })
    return {"as_of": report.as_of.isoformat(), "currencies": currencies}


def _month(month: Month, currency: str) -> dict:
    return {
        "month": month.month,
        "consumed_credits": exact_credits(month.consumed.credits), "consumed_value": rounded(month.consumed.value, currency),
        "expired_credits": exact_credits(month.expired.credits), "expired_value": rounded(month.expired.value, currency),
        "recognised_value": rounded(month.recognised, currency),
        "sold_credits": exact_credits(month.sold.credits), "sold_value": rounded(month.sold.value, currency),
        "taken_back_credits": exact_credits(month.taken_back.credits), "taken_back_value": rounded(month.taken_back.value, currency),
    }


def revenue_report(report: RevenueReport) -> dict:
    return {
        "from": report.start.isoformat(), "to": report.end.isoformat(),
        "currencies": [
            {"currency": currency, "months": [_month(month, currency) for month in months.values()], "total": _month(totals(months), currency)}
            for currency, months in sorted(report.currencies.items())
        ],
    }


def api_key(row: ApiKey, at: datetime, secret: str | None = None) -> dict:
    """A key as the API shows it: never its hash; the secret only in the answer that creates it."""
    scope = scope_of(row)
    body = {
        "id": sid(row.id), "name": row.name, "role": row.role, "status": status_of(row, at),
        "account_ids": None if scope is None else [str(account_id) for account_id in sorted(scope)],
        "created_at": instant_text(row.created_at), "expires_at": instant_text(row.expires_at),
        "revoked_at": instant_text(row.revoked_at),
    }
    if secret is not None:
        body["key"] = secret
    return body


def journal_entry(entry: EntryView) -> dict:
    return {
        "id": str(entry.id), "date": entry.date.isoformat(), "event": entry.event, "source": {"type": entry.source_type, "id": entry.source_id},
        "description": entry.description, "document": entry.document,
        "account_id": None if entry.account_id is None else str(entry.account_id), "currency": entry.currency,
        "postings": [
            {
                "account": posting.account, "account_name": posting.account_name, "role": posting.role,
                "debit": money_text(posting.debit, entry.currency), "credit": money_text(posting.credit, entry.currency),
                "currency": entry.currency, "tax_rate": None if posting.tax_rate is None else f"{posting.tax_rate:.2f}",
            }
            for posting in entry.postings
        ],
    }


def trial_balance(as_of: date, lines: list[BalanceLine]) -> dict:
    totals_of: dict[str, list[Decimal]] = {}
    for line in lines:
        total = totals_of.setdefault(line.currency, [Decimal(0), Decimal(0)])
        total[0] += line.debit
        total[1] += line.credit
    return {
        "as_of": as_of.isoformat(),
        "lines": [
            {"account": line.account, "account_name": line.account_name, "currency": line.currency,
             "debit": money_text(line.debit, line.currency), "credit": money_text(line.credit, line.currency)}
            for line in lines
        ],
        "totals": [
            {"currency": currency, "debit": money_text(debit, currency), "credit": money_text(credit, currency)}
            for currency, (debit, credit) in sorted(totals_of.items())
        ],
    }


def chart_of_accounts(chart: Chart) -> dict:
    return chart.as_dict() | {"roles": dict(ROLES)}
