"""Bank statements (camt.053, ISO 20022 "BankToCustomerStatement"): credit entries matched to
invoices and recorded as payments (SPEC 12).

Each booked credit entry (``CdtDbtInd`` CRDT) is matched, in this order, by

1. its structured creditor reference (``Strd/CdtrRefInf/Ref``, or a reference anywhere in the
   remittance text) when it is a valid ISO 11649 RF reference of an invoice;
2. an invoice number (``INV-2027-000001``, dashes optional) in its remittance text (``Ustrd``).

A matched entry becomes a payment of the invoice (``bank_transfer``, received on the booking
date, an overpayment kept as unapplied cash: the money has arrived). An entry that names no
invoice, or one that cannot take it (a draft or void invoice, another currency), is kept as
``unmatched`` with the reason, for the operator to settle by hand. Every entry is recorded once,
by its key (the bank's ``AcctSvcrRef`` of the entry or its transaction, else the statement's id
and the entry's ``NtryRef`` or place): importing a statement again, or the next statement that
repeats an entry, records nothing twice. A file is imported whole or not at all: the caller's
unit of work commits it.

The XML is parsed without network access, DTDs or entity expansion (lxml ``XMLParser`` with
``resolve_entities=False``, ``no_network=True``, ``load_dtd=False``). Any camt.053 version
(001.02 to 001.13) is read: elements are found by their local names under the document's own
camt.053 namespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from lxml import etree
from sqlmodel import Session, col, select

from licensing.clock import start_of_day
from licensing.config import get_settings
from licensing.errors import LicensingError
from licensing.events import record_event
from licensing.invoicing.models import Invoice, StatementEntry
from licensing.invoicing.payments import record_payment
from licensing.invoicing.references import is_creditor_reference
from licensing.money import minor_unit

CAMT_053 = "urn:iso:std:iso:20022:tech:xsd:camt.053."
MAX_STATEMENT_BYTES = 20 * 1024 * 1024
_NUMBER = re.compile(r"\b([A-Z]{2,10})-?(\d{4})-?(\d{6})\b")
_RF = re.compile(r"\bRF\d{2}(?: ?[0-9A-Z]{1,4}){1,6}\b")


class InvalidStatement(LicensingError):
    code = "invalid_statement"
    title = "Not a camt.053 bank statement"


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    statement_id: str
    account_iban: str | None
    amount: Decimal
    currency: str
    booked_on: date
    reference: str | None
    remittance: str | None
    debtor_name: str | None


@dataclass(slots=True)
class ImportResult:
    matched: list[StatementEntry] = field(default_factory=list)
    unmatched: list[StatementEntry] = field(default_factory=list)
    already_imported: int = 0  # entries recorded by an earlier import


def parse(content: bytes) -> list[Entry]:
    """The booked credit entries of a camt.053 file, in document order; ``InvalidStatement`` for
    anything else (not XML, another message, an entry without an amount, a currency or a date)."""
    if len(content) > MAX_STATEMENT_BYTES:
        raise InvalidStatement(f"the statement is larger than {MAX_STATEMENT_BYTES // (1024 * 1024)} MiB")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as error:
        raise InvalidStatement(f"the statement is not well-formed XML: {error}") from None
    namespace = etree.QName(root).namespace or ""
    if not namespace.startswith(CAMT_053) or etree.QName(root).localname != "Document":
        raise InvalidStatement(f"the XML is not a camt.053 statement (root {etree.QName(root).localname!r} in {namespace or 'no namespace'!r})")
    ns = {"c": namespace}
    statements = root.findall("c:BkToCstmrStmt/c:Stmt", ns)
    if not statements:
        raise InvalidStatement("the camt.053 document holds no statement (BkToCstmrStmt/Stmt)")
    entries = []
    for statement in statements:
        statement_id = _text(statement, "c:Id", ns)
        if not statement_id:
            raise InvalidStatement("a statement has no Id")
        iban = _text(statement, "c:Acct/c:Id/c:IBAN", ns)
        for place, entry in enumerate(statement.findall("c:Ntry", ns), start=1):
            if _text(entry, "c:CdtDbtInd", ns) != "CRDT":
                continue
            status = _text(entry, "c:Sts/c:Cd", ns) or _text(entry, "c:Sts", ns)
            if status not in (None, "BOOK"):
                continue  # pending or informational: not money in yet
            entries.append(_entry(entry, ns, statement_id, iban, place))
    return entries


def _entry(entry, ns: dict, statement_id: str, iban: str | None, place: int) -> Entry:
    amount_element = entry.find("c:Amt", ns)
    if amount_element is None or not amount_element.get("Ccy"):
        raise InvalidStatement(f"entry {place} of statement {statement_id} has no amount with a currency")
    try:
        amount = Decimal((amount_element.text or "").strip())
    except InvalidOperation:
        raise InvalidStatement(f"entry {place} of statement {statement_id} has an amount that is not a number") from None
    booked = _text(entry, "c:BookgDt/c:Dt", ns) or (_text(entry, "c:BookgDt/c:DtTm", ns) or "")[:10] or _text(entry, "c:ValDt/c:Dt", ns)
    try:
        booked_on = date.fromisoformat(booked or "")
    except ValueError:
        raise InvalidStatement(f"entry {place} of statement {statement_id} has no booking date") from None
    details = entry.find("c:NtryDtls/c:TxDtls", ns)
    scope = details if details is not None else entry
    references = [text.strip() for text in scope.xpath(".//c:RmtInf/c:Strd/c:CdtrRefInf/c:Ref/text()", namespaces=ns)]
    remittance = " ".join(text.strip() for text in scope.xpath(".//c:RmtInf/c:Ustrd/text()", namespaces=ns) if text.strip()) or None
    bank_reference = _text(scope, "c:Refs/c:AcctSvcrRef", ns) or _text(entry, "c:AcctSvcrRef", ns)
    key = f"bank:{bank_reference}" if bank_reference else f"{statement_id}:{_text(entry, 'c:NtryRef', ns) or place}"
    debtor = scope.xpath(".//c:RltdPties/c:Dbtr/c:Nm/text() | .//c:RltdPties/c:Dbtr/c:Pty/c:Nm/text()", namespaces=ns)
    return Entry(
        key=f"{iban or ''}|{key}"[:400], statement_id=statement_id[:200], account_iban=iban, amount=amount,
        currency=amount_element.get("Ccy"), booked_on=booked_on, reference=(references[0] if references else None),
        remittance=remittance, debtor_name=(debtor[0].strip()[:200] if debtor else None),
    )


def _text(element, path: str, ns: dict) -> str | None:
    found = element.find(path, ns)
    return found.text.strip() if found is not None and found.text and found.text.strip() else None


def import_statement(session: Session, content: bytes, *, now: datetime, actor: str) -> ImportResult:
    """Record the credit entries of a camt.053 file not recorded before, matching each to an
    invoice. In the caller's transaction: a failure leaves nothing of the file."""
    entries = parse(content)
    result = ImportResult()
    known = set(session.exec(select(StatementEntry.entry_key).where(col(StatementEntry.entry_key).in_([e.key for e in entries]))).all())
    seen: set[str] = set()
    for entry in entries:
        if entry.key in known or entry.key in seen:
            result.already_imported += 1
            continue
        seen.add(entry.key)
        invoice, reason = _match(session, entry)
        row = StatementEntry(
            entry_key=entry.key, statement_id=entry.statement_id, account_iban=entry.account_iban, amount=entry.amount, currency=entry.currency,
            booked_on=entry.booked_on, reference=(entry.reference or "")[:200] or None, remittance=entry.remittance,
            debtor_name=entry.debtor_name, status="unmatched", created_at=now,
        )
        if invoice is not None:
            reason = _refusal(invoice, entry)
        if invoice is not None and reason is None:
            payment = record_payment(
                session, invoice.id, amount=entry.amount, currency=entry.currency, method="bank_transfer",
                received_at=start_of_day(entry.booked_on, get_settings().zone),
                reference=f"statement {entry.statement_id}"[:200], allow_overpayment=True, now=now, actor=actor,
            )
            row.status, row.invoice_id, row.payment_id = "matched", invoice.id, payment.id
            result.matched.append(row)
        else:
            row.invoice_id, row.reason = (invoice.id if invoice is not None else None), reason
            result.unmatched.append(row)
        session.add(row)
    session.flush()
    record_event(
        session, "bank_statement.imported",
        {"matched": len(result.matched), "unmatched": len(result.unmatched), "already_imported": result.already_imported},
        at=now,
    )
    return result


def _match(session: Session, entry: Entry) -> tuple[Invoice | None, str | None]:
    """The invoice an entry names (by RF reference, then by number in the text), or why none."""
    candidates = [entry.reference] if entry.reference else []
    candidates += _RF.findall(entry.remittance or "")
    for reference in candidates:
        if is_creditor_reference(reference):
            number = _number_in("".join(reference.split()).upper()[4:])
            invoice = _invoice(session, number)
            if invoice is not None:
                return invoice, None
    for match in _NUMBER.finditer((entry.remittance or "").upper()):
        invoice = _invoice(session, f"{match.group(1)}-{match.group(2)}-{match.group(3)}")
        if invoice is not None:
            return invoice, None
    return None, "no invoice named by the reference or the remittance text"


def _number_in(reference_body: str) -> str | None:
    match = _NUMBER.fullmatch(reference_body)
    return f"{match.group(1)}-{match.group(2)}-{match.group(3)}" if match else None


def _invoice(session: Session, number: str | None) -> Invoice | None:
    if number is None:
        return None
    return session.exec(select(Invoice).where(Invoice.number == number)).first()


def _refusal(invoice: Invoice, entry: Entry) -> str | None:
    if invoice.status not in ("approved", "paid"):
        return f"invoice {invoice.number} is {invoice.status}"
    if invoice.currency != entry.currency:
        return f"invoice {invoice.number} is in {invoice.currency}, the entry in {entry.currency}"
    if entry.amount <= 0 or entry.amount != entry.amount.quantize(Decimal(1).scaleb(-minor_unit(entry.currency))):
        return f"the amount {entry.amount} is not one {entry.currency} can hold"
    return None
