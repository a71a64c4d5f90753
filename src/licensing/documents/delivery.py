"""Delivering approved invoices and credit notes by e-mail (SPEC 8).

Approval queues one ``Delivery`` per document in its own transaction (``documents/queue.py``);
this module sends them, after that transaction has committed:

1. **Claim** one due delivery (pending, ``next_attempt_at <= now``, no live claim) in a short
   write transaction of its own: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that
   concurrent senders take different rows; SQLite's write lock serialises the claims. The claim
   (``claimed_until``) is committed before anything is sent, and runs out after ``CLAIM_TIME``,
   so the mail of a sender that crashed is tried again, with the same ``Message-ID``.
2. **Build and send** outside any transaction: the document (read in a short read transaction),
   its PDF (with the EN 16931 XML embedded when ``licensing.documents.einvoice`` is there), the
   text and HTML bodies; then SMTP (``LICENSING_SMTP_URL``) or, with no SMTP configured, an
   ``.eml`` file in the outbox folder (``LICENSING_MAIL_OUTBOX``).
3. **Record** the outcome in a second transaction: ``sent`` with an ``invoice.sent`` event, or a
   failure counted, its error kept and the next attempt pushed back (1, 2, 4 ... minutes, at
   most an hour); after ``LICENSING_MAIL_MAX_ATTEMPTS`` failures the delivery is ``failed``.

A delivery that is ``sent`` is never claimed again, and the unique key on the document keeps a
document from being queued twice: each document is mailed once. (Once, as far as a database and
a mail server can agree: a sender that dies between the server's "250 OK" and step 3 leaves the
mail to be sent again when its claim runs out; the same ``Message-ID`` lets mail clients fold
the two.)

``smtp_url`` examples: ``smtp://user:password@host:587?starttls=true`` (STARTTLS, then login),
``smtps://user:password@host:465`` (TLS from the first byte), ``smtp://localhost:25`` (neither).
Certificates are verified against the system's trusted CAs (``SSL_CERT_FILE`` adds others).
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sqlmodel import col, or_, select

from licensing import clock
from licensing.attempts import count_failure, describe
from licensing.config import Settings, get_settings
from licensing.db import Database
from licensing.documents.context import credit_note_document, invoice_document
from licensing.documents.model import Document
from licensing.documents.models import Delivery
from licensing.documents.pdf import render_mail, render_pdf
from licensing.invoicing.models import CreditNote, Invoice
from licensing.outbox import record_event
from licensing.repository import lock

log = logging.getLogger("licensing.delivery")

# How long a sender has to build and send one mail before others may take the delivery over.
CLAIM_TIME = timedelta(minutes=10)
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)
SMTP_TIMEOUT_SECONDS = 30
PLACEHOLDER_ADDRESS = "invoices@example.invalid"


@dataclass(frozen=True, slots=True)
class DeliveryRun:
    sent: int = 0  # mails sent (or written to the outbox)
    failed: int = 0  # deliveries given up on this run (status ``failed``)
    retried: int = 0  # deliveries that failed this run and will be tried again


@dataclass(frozen=True, slots=True)
class MailSettings:
    smtp_url: str  # empty: no SMTP, mails go to the outbox folder
    sender: str  # the From header
    outbox: Path
    max_attempts: int

    @classmethod
    def of(cls, settings: Settings) -> MailSettings:
        # getattr: tolerates a Settings without the mail fields (they are optional to configure).
        sender = getattr(settings, "mail_from", "") or formataddr((settings.operator_name, settings.operator_email or PLACEHOLDER_ADDRESS))
        return cls(
            smtp_url=getattr(settings, "smtp_url", "") or "",
            sender=sender,
            outbox=Path(getattr(settings, "mail_outbox", "") or "./outbox"),
            max_attempts=max(1, int(getattr(settings, "mail_max_attempts", 10))),
        )


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool  # smtps://
    starttls: bool
    username: str | None
    password: str | None


def smtp_server(url: str) -> SmtpServer:
    """The server an ``smtp://`` or ``smtps://`` URL names. Errors never repeat the URL (it
    holds a password)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("the SMTP URL must look like smtp://user:password@host:587?starttls=true or smtps://user:password@host:465")
    query = parse_qs(parts.query)
    starttls = (query.get("starttls") or ["false"])[-1].strip().lower() in ("1", "true", "yes", "on")
    implicit_tls = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if implicit_tls else 25)
    except ValueError:
        raise ValueError("the SMTP URL's port is not a number") from None
    return SmtpServer(
        host=parts.hostname, port=port, implicit_tls=implicit_tls, starttls=starttls and not implicit_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 1 minute, then doubling (2, 4, 8 ...),
    never more than an hour."""
    if attempts >= 7:  # 2**6 minutes is already past the hour
        return LAST_RETRY
    return min(FIRST_RETRY * 2 ** (attempts - 1), LAST_RETRY)


def message_id(delivery_id: int, document: Document, sender: str) -> str:
    """The same for every attempt at one delivery, so that a mail sent twice reads as one."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<delivery-{delivery_id}.{document.number or document.id}@{domain}>"


# -- the run ----------------------------------------------------------------------------------


def send_due(
    database: Database,
    *,
    now: datetime,
    settings: Settings | None = None,
    limit: int = 100,
    delivery_ids: Iterable[int] | None = None,
) -> DeliveryRun:
    """Send up to ``limit`` due deliveries (only those of ``delivery_ids`` when given), one at
    a time: claim, build and send, record. A failed mail is counted and retried later."""
    settings = settings or get_settings()
    mail = MailSettings.of(settings)
    only = sorted(set(delivery_ids)) if delivery_ids is not None else None
    if only == []:
        return DeliveryRun()
    sent = failed = retried = 0
    for _ in range(limit):
        claim = _claim(database, now=now, only=only)
        if claim is None:
            break
        delivery, claimed_until = claim
        try:
            document, message = build_message(database, delivery, mail=mail, settings=settings, now=now)
            deliver(message, document, mail=mail)
        except Exception as error:  # noqa: BLE001 - any failure is recorded and retried
            log.warning("delivery %s (%s %s) failed: %s", delivery.id, delivery.document_type, delivery.document_id, describe(error))
            outcome = _record_failure(database, delivery.id, error=describe(error), now=now, claimed_until=claimed_until, max_attempts=mail.max_attempts)
            failed += outcome == "failed"
            retried += outcome == "pending"
            continue
        if _record_sent(database, delivery.id, document=document, message_id=message["Message-ID"], now=now):
            sent += 1
    return DeliveryRun(sent=sent, failed=failed, retried=retried)


def send_in_background(database: Database, delivery_ids: Iterable[int] | None = None, *, settings: Settings | None = None) -> threading.Thread:
    """Send what is due now in a thread of its own (the API calls this once an approval has
    committed). Errors are logged, never raised: the scheduler's next run tries again."""
    ids = list(delivery_ids) if delivery_ids is not None else None

    def run() -> None:
        try:
            result = send_due(database, now=clock.now(), settings=settings, delivery_ids=ids)
            log.info("documents mailed: %s sent, %s to retry, %s failed", result.sent, result.retried, result.failed)
        except Exception:  # noqa: BLE001 - a background sender must not take anything down
            log.exception("mailing documents failed; the scheduler will try again")

    thread = threading.Thread(target=run, name="licensing-delivery", daemon=True)
    thread.start()
    return thread


def _claim(database: Database, *, now: datetime, only: list[int] | None) -> tuple[Delivery, datetime] | None:
    # A claim is a lease in real time: late in a long run, ``now`` (the run's start) would make
    # claims that have already run out for a sender that starts meanwhile.
    claimed_until = max(now, clock.now()) + CLAIM_TIME
    with database.write() as session:
        statement = (
            select(Delivery)
            .where(
                Delivery.status == "pending",
                Delivery.next_attempt_at <= now,
                or_(col(Delivery.claimed_until).is_(None), col(Delivery.claimed_until) <= now),
            )
            .order_by(Delivery.next_attempt_at, Delivery.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if only is not None:
            statement = statement.where(col(Delivery.id).in_(only))
        delivery = session.exec(statement).first()
        if delivery is None:
            return None
        delivery.claimed_until = claimed_until
        session.add(delivery)
    return delivery, claimed_until


def _record_sent(database: Database, delivery_id: int, *, document: Document, message_id: str, now: datetime) -> bool:
    with database.write() as session:
        delivery = lock(session, Delivery, delivery_id, "delivery")
        if delivery.status == "sent":  # another sender took it over after our claim ran out, and sent it
            return False
        delivery.status, delivery.sent_at, delivery.message_id = "sent", now, message_id
        delivery.attempts += 1
        delivery.claimed_until = None
        session.add(delivery)
        record_event(
            session, "invoice.sent",
            {
                "document_type": delivery.document_type, "document_id": str(delivery.document_id), "number": document.number,
                "account_id": str(delivery.account_id), "recipient": delivery.recipient, "message_id": message_id,
            },
            at=now,
        )
    return True


def _record_failure(database: Database, delivery_id: int, *, error: str, now: datetime, claimed_until: datetime, max_attempts: int) -> str | None:
    """The delivery's status after the failure, or None when it is no longer ours to count."""
    with database.write() as session:
        delivery = lock(session, Delivery, delivery_id, "delivery")
        if delivery.status != "pending" or delivery.claimed_until != claimed_until:
            return None
        status = count_failure(delivery, error=error, now=now, max_attempts=max_attempts, retry_delay=retry_delay)
        session.add(delivery)
        return status


# -- building ---------------------------------------------------------------------------------


def load_document(database: Database, delivery: Delivery, settings: Settings) -> Document:
    with database.read() as session:
        if delivery.document_type == "invoice":
            invoice = session.get(Invoice, delivery.document_id)
            if invoice is None:
                raise LookupError(f"invoice {delivery.document_id} does not exist")
            return invoice_document(session, invoice, settings)
        note = session.get(CreditNote, delivery.document_id)
        if note is None:
            raise LookupError(f"credit note {delivery.document_id} does not exist")
        return credit_note_document(session, note, settings)


def document_pdf(document: Document, settings: Settings) -> bytes:
    """The PDF, with the e-invoice embedded when the e-invoice module is there and the
    document has been approved (it has a number). A document the e-invoice refuses (an account
    without a country, say) is still mailed, as a plain PDF: SPEC 8 wants every approved
    document sent, and the PDF is the document; the e-invoice is its machine-readable twin."""
    return render_pdf(document, xml=_einvoice_of(document), settings=settings)


def _einvoice_of(document: Document) -> bytes | None:
    if document.number is None:
        return None
    try:
        from licensing.documents.einvoice import build_xml
    except ImportError:
        return None
    try:
        return build_xml(document)
    except ValueError as refusal:
        log.warning("%s %s is mailed without its e-invoice: %s", document.title.lower(), document.number, refusal)
        return None


def build_message(database: Database, delivery: Delivery, *, mail: MailSettings, settings: Settings, now: datetime) -> tuple[Document, EmailMessage]:
    """The mail of one delivery: text and HTML bodies, the PDF attached."""
    document = load_document(database, delivery, settings)
    text, html = render_mail(document, settings)
    message = EmailMessage()
    message["Subject"] = f"{document.title} {document.number} from {_one_line(document.seller.name)}"
    message["From"] = mail.sender
    message["To"] = formataddr((_one_line(document.buyer.name), delivery.recipient))
    message["Date"] = format_datetime(now)
    message["Message-ID"] = message_id(delivery.id, document, mail.sender)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    message.add_attachment(document_pdf(document, settings), maintype="application", subtype="pdf", filename=document.file_name)
    return document, message


def _one_line(text: str) -> str:
    """A name as a header can carry it (a line break would end the header)."""
    return " ".join(text.split())


# -- sending ----------------------------------------------------------------------------------


def deliver(message: EmailMessage, document: Document, *, mail: MailSettings) -> None:
    if mail.smtp_url:
        send_smtp(message, smtp_server(mail.smtp_url))
    else:
        write_eml(message, document, mail.outbox)


def send_smtp(message: EmailMessage, server: SmtpServer) -> None:
    sender = parseaddr(message["From"])[1]
    recipients = [parseaddr(message["To"])[1]]
    context = ssl.create_default_context()
    if server.implicit_tls:
        connection = smtplib.SMTP_SSL(server.host, server.port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
    else:
        connection = smtplib.SMTP(server.host, server.port, timeout=SMTP_TIMEOUT_SECONDS)
    try:
        if server.starttls:
            connection.starttls(context=context)
            connection.ehlo()
        if server.username:
            connection.login(server.username, server.password or "")
        connection.send_message(message, from_addr=sender, to_addrs=recipients)
    except BaseException:
        connection.close()
        raise
    # The server has the mail: a failed goodbye must not make it look unsent.
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def write_eml(message: EmailMessage, document: Document, outbox: Path) -> Path:
    """The mail as ``<number>.eml`` in the outbox folder, written whole or not at all."""
    outbox.mkdir(parents=True, exist_ok=True)
    path = outbox / f"{Path(document.file_name).stem}.eml"
    descriptor, temporary = tempfile.mkstemp(dir=outbox, prefix=".", suffix=".eml.tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(message.as_bytes(policy=SMTP_POLICY))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
