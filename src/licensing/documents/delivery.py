"""Delivering approved invoices and credit notes by e-mail (SPEC 8).

Approval queues one ``Delivery`` per document in its own transaction (``documents/queue.py``);
this module sends them, after that transaction has committed:

1. **Claim** one due delivery (pending, ``next_attempt_at <= now``, no live claim) in a short
   write transaction of its own: ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, so that
   concurrent senders take different rows; SQLite's write lock serialises the claims. The claim
   (``claimed_until``) is committed before anything is sent, and runs out after ``CLAIM_TIME``,
   so the mail of a sender that crashed is tried again, with the same ``Message-ID``: the first
   claim draws it at random (``new_message_id``) and stores it on the delivery, in the same
   transaction, and every later attempt reuses it. Random, not derived from the delivery's id
   and number, because every installation has a delivery 1 and an ``INV-2026-000001``.
2. **Build and send** outside any transaction: the document (read in a short read transaction),
   its PDF (with the EN 16931 XML embedded when ``licensing.documents.einvoice`` is there), the
   text and HTML bodies; then SMTP (``LICENSING_SMTP_URL``) or, with no SMTP configured, an
   ``.eml`` file in the outbox folder (``LICENSING_MAIL_OUTBOX``), named by the document's number
   and a token of the ``Message-ID`` (``INV-2026-000001.5f1c0e3a9b2d4c7e.eml``), so that two
   installations sharing a folder never overwrite each other's mails, and a mail written again
   after a crash replaces its first copy.
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

The recipient is the delivery's stored address, and only that: it is the SMTP envelope's one
recipient, and the ``To`` header is built from it and the account's name as a display name that
is quoted or encoded, never parsed (``MAIL_POLICY``), so a name such as ``Evil, x@evil.test``
cannot add an address.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import smtplib
import ssl
import tempfile
import threading
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.headerregistry import Address, AddressHeader, HeaderRegistry, UniqueAddressHeader
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.policy import EmailPolicy
from email.policy import default as DEFAULT_POLICY
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sqlmodel import col, select

from licensing import clock
from licensing.config import Settings, get_settings
from licensing.db import Database
from licensing.documents.context import credit_note_document, invoice_document
from licensing.documents.model import Document
from licensing.documents.models import Delivery, PaymentReminder
from licensing.documents.pdf import render_mail, render_pdf
from licensing.events import record_event, worker
from licensing.invoicing.models import CreditNote, Invoice

log = logging.getLogger("licensing.delivery")

# How long a sender has to build and send one mail before others may take the delivery over.
CLAIM_TIME = timedelta(minutes=10)
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)
SMTP_TIMEOUT_SECONDS = 30
PLACEHOLDER_ADDRESS = "invoices@example.invalid"
MESSAGE_ID_LENGTH = 200  # Delivery.message_id's column


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


def new_message_id(delivery_id: int, sender: str) -> str:
    """A ``Message-ID`` for a delivery's first claim, which stores it: every later attempt at
    the delivery reuses it, so that a mail sent twice reads as one. The random part keeps it
    apart from the same delivery number of every other installation."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    if len(domain) > MESSAGE_ID_LENGTH - 64:  # the column's size: room for the rest, and a very long id
        domain = "localhost"
    return f"<delivery-{delivery_id}.{uuid.uuid4().hex}@{domain}>"


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
    a time, through the delivery worker (``events.worker``: claim, build and send, record). A
    failed mail is counted and retried later."""
    settings = settings or get_settings()
    run = worker.work(database, mail_channel(database, settings, now=now), now=now, limit=limit, only=delivery_ids)
    return DeliveryRun(sent=run.done, failed=run.failed, retried=run.retried)


def mail_channel(database: Database, settings: Settings, *, now: datetime) -> worker.Channel:
    """Deliveries as the worker sends them: due in the order they became due; the first claim
    draws the Message-ID (committed before the mail can leave: every later attempt reuses it);
    sent mail is recorded with an ``invoice.sent`` event."""
    mail = MailSettings.of(settings)

    def prepare(_session, delivery: Delivery) -> Delivery:
        if delivery.message_id is None:
            delivery.message_id = new_message_id(delivery.id, mail.sender)
        return delivery

    def send(delivery: Delivery, _at: datetime) -> tuple[Document, str]:
        document, message = build_message(database, delivery, mail=mail, settings=settings, now=now)
        deliver(message, document, mail=mail, recipient=delivery.recipient)
        return document, message["Message-ID"]

    def on_done(session, delivery: Delivery, _job, sent: tuple[Document, str], at: datetime) -> None:
        document, message_id = sent
        delivery.sent_at, delivery.message_id = at, message_id
        record_event(
            session, "invoice.sent",
            {
                "document_type": delivery.document_type, "document_id": str(delivery.document_id), "number": document.number,
                "account_id": str(delivery.account_id), "recipient": delivery.recipient, "message_id": message_id,
            },
            at=at,
        )

    return worker.Channel(
        name="delivery", table=Delivery, done="sent", log=log, max_attempts=mail.max_attempts, retry_delay=retry_delay,
        # A claim is a lease in real time: late in a long run, the run's ``now`` would make
        # claims that have already run out for a sender that starts meanwhile.
        lease_until=lambda _at: max(now, clock.now()) + CLAIM_TIME,
        prepare=prepare, send=send, on_done=on_done, order=(Delivery.next_attempt_at,),
        describe_row=lambda delivery: f"{delivery.id} ({delivery.document_type} {delivery.document_id})",
    )


def reminder_channel(database: Database, settings: Settings, *, now: datetime) -> worker.Channel:
    """Payment reminders as the worker sends them (``documents.reminders``): the reminder mail
    with the invoice's PDF, only while the invoice is still open; sent with ``invoice.reminded``."""
    mail = MailSettings.of(settings)

    def prepare(_session, reminder: PaymentReminder) -> PaymentReminder:
        if reminder.message_id is None:
            reminder.message_id = new_message_id(reminder.id, mail.sender)
        return reminder

    def send(reminder: PaymentReminder, _at: datetime) -> tuple[Document, str]:
        document, message = build_message(database, reminder, mail=mail, settings=settings, now=now, reminder_days=reminder.stage_days)
        deliver(message, document, mail=mail, recipient=reminder.recipient, kind="reminder")
        return document, message["Message-ID"]

    def on_done(session, reminder: PaymentReminder, _job, sent: tuple[Document, str], at: datetime) -> None:
        document, message_id = sent
        reminder.sent_at, reminder.message_id = at, message_id
        record_event(
            session, "invoice.reminded",
            {
                "invoice_id": str(reminder.invoice_id), "number": document.number, "account_id": str(reminder.account_id),
                "days_overdue": reminder.stage_days, "recipient": reminder.recipient, "message_id": message_id,
            },
            at=at,
        )

    return worker.Channel(
        name="payment reminder", table=PaymentReminder, done="sent", log=log, max_attempts=mail.max_attempts, retry_delay=retry_delay,
        lease_until=lambda _at: max(now, clock.now()) + CLAIM_TIME, prepare=prepare, send=send, on_done=on_done,
        order=(PaymentReminder.next_attempt_at,),
        filters=(col(PaymentReminder.invoice_id).in_(select(Invoice.id).where(Invoice.status == "approved")),),
        describe_row=lambda reminder: f"{reminder.id} (invoice {reminder.invoice_id}, {reminder.stage_days} days)",
    )


def send_in_background(database: Database, delivery_ids: Iterable[int] | None = None, *, settings: Settings | None = None) -> threading.Thread:
    """Send what is due now (or only ``delivery_ids``) in a thread: at most one per database. A
    call while it works makes it go round once more (everything due), so that the mail of an
    approval committed meanwhile (one billing run commits a batch at a time) is not left for the
    scheduler. Returns the sender. Errors are logged, never raised: the scheduler's next run
    tries again."""
    ids = list(delivery_ids) if delivery_ids is not None else None

    def send(only: list[int] | None) -> None:
        try:
            result = send_due(database, now=clock.now(), settings=settings, delivery_ids=only)
            log.info("documents mailed: %s sent, %s to retry, %s failed", result.sent, result.retried, result.failed)
        except Exception:  # noqa: BLE001 - a background sender must not take anything down
            log.exception("mailing documents failed; the scheduler will try again")

    # Not a daemon: a process that ends (`licensing scheduler --once`, a stopping server) waits for
    # the mail in flight rather than tearing down the PDF renderer under it.
    thread, _started = worker.start(database, "delivery", lambda: send(ids), again=lambda: send(None), daemon=False)
    return thread


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


def build_message(
    database: Database, delivery: Delivery | PaymentReminder, *, mail: MailSettings, settings: Settings, now: datetime,
    reminder_days: int | None = None,
) -> tuple[Document, EmailMessage]:
    """The mail of one (claimed) delivery: text and HTML bodies, the PDF attached; with
    ``reminder_days``, the reminder of an invoice that many days overdue."""
    if delivery.message_id is None:
        raise ValueError(f"delivery {delivery.id} has no Message-ID yet: it draws one when it is first claimed")
    document = load_document(database, delivery, settings)
    message = EmailMessage(policy=MAIL_POLICY)
    if reminder_days is None:
        text, html = render_mail(document, settings)
        message["Subject"] = f"{document.title} {document.number} from {_one_line(document.seller.name)}"
    else:
        text, html = render_mail(document, settings, template="reminder", days_overdue=reminder_days)
        message["Subject"] = f"Reminder: invoice {document.number} from {_one_line(document.seller.name)} is {reminder_days} days overdue"
    message["From"] = mail.sender
    # An Address, never a string to parse: the name is only ever a display name. Address also
    # refuses a stored recipient that is anything but one address (the mail fails, and says so).
    message["To"] = Address(display_name=_display_name(document.buyer.name), addr_spec=delivery.recipient)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = delivery.message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    message.add_attachment(document_pdf(document, settings), maintype="application", subtype="pdf", filename=document.file_name)
    return document, message


def _one_line(text: str) -> str:
    """A name as a header can carry it (a line break would end the header)."""
    return " ".join(text.split())


def _display_name(name: str) -> str:
    """A name on one line, without control characters (or lone surrogates, which no charset
    encodes)."""
    return _one_line("".join(" " if unicodedata.category(character) in ("Cc", "Cs") else character for character in name))


# -- the address headers ----------------------------------------------------------------------
#
# Python 3.11's ``email`` folds an address header wrongly when a display name that needs quoting
# does not fit on one line: it drops the quotes around the pieces it wraps, so the name
# "Acme Coworking International Holdings Limited, Berlin Branch, attacker@evil.test" goes out as
# ``To: Acme Coworking International Holdings Limited, Berlin Branch,`` / `` attacker@evil.test
# <billing@acme.test>``: three addresses, one of them the attacker's. The ``From`` and ``To``
# headers of our mails are therefore folded here, by rules that cannot do that: the display
# name is atoms, one quoted string that fits on its line, or RFC 2047 encoded words (base64, so
# no special character is ever left bare), and the address stays whole.

_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
_LONGEST_QUOTED_NAME = 70  # quotes included: after "From: ", still within a 78-character line
_ENCODED_WORD_BYTES = 45  # base64 of 45 bytes is 60 characters: "=?utf-8?b?...?=" is 72


def _phrase(display_name: str) -> list[str]:
    """The display name as the words of a header's phrase, each of which a parser reads as
    part of the name (RFC 5322 atoms, a quoted string, RFC 2047 encoded words)."""
    if display_name.isascii() and display_name.isprintable() and "=?" not in display_name:
        atoms = display_name.split(" ")
        if all(atom and set(atom) <= _ATEXT for atom in atoms):
            return atoms
        quoted = '"' + display_name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(quoted) <= _LONGEST_QUOTED_NAME:
            return [quoted]
    return _encoded_words(display_name)


def _encoded_words(text: str) -> list[str]:
    """``text`` as UTF-8 base64 encoded words, split before a space where it can be (a decoder
    joins adjacent encoded words without the white space between them)."""
    chunks, chunk = [], ""
    for character in text:
        while chunk and len((chunk + character).encode()) > _ENCODED_WORD_BYTES:
            cut = chunk.rfind(" ")
            cut = cut if cut > 0 else len(chunk)
            chunks.append(chunk[:cut])
            chunk = chunk[cut:]
        chunk += character
    chunks.append(chunk)
    return [f"=?utf-8?b?{base64.b64encode(chunk.encode()).decode('ascii')}?=" for chunk in chunks]


class _SafelyFolded:
    """Folds a header of mailboxes by the rules above (a header with a group keeps the
    library's folding: our mails have none)."""

    def fold(self, *, policy: EmailPolicy) -> str:
        if any(group.display_name is not None for group in self.groups):
            return super().fold(policy=policy)
        label = f"{self.name}:"
        lines, longest = [label], policy.max_line_length or 78
        for index, address in enumerate(self.addresses):
            if not (address.addr_spec.isascii() or policy.utf8):
                raise ValueError(f"{address.addr_spec!r} is not an ASCII address: it needs a mail server that speaks SMTPUTF8")
            phrase = _phrase(address.display_name) if address.display_name else []
            words = [*phrase, f"<{address.addr_spec}>"] if phrase else [address.addr_spec]
            if index < len(self.addresses) - 1:
                words[-1] += ","
            for word in words:
                if lines[-1] == label or len(lines[-1]) + 1 + len(word) <= longest:
                    lines[-1] += " " + word
                else:
                    lines.append(" " + word)
        return policy.linesep.join(lines) + policy.linesep


class _FromHeader(_SafelyFolded, AddressHeader):
    pass


class _ToHeader(_SafelyFolded, UniqueAddressHeader):
    pass


def _header_registry() -> HeaderRegistry:
    registry = HeaderRegistry()
    registry.map_to_type("from", _FromHeader)
    registry.map_to_type("to", _ToHeader)
    return registry


# The policy of the mails built here: the default (as ``EmailMessage()`` has), with the
# ``From`` and ``To`` headers folded safely.
MAIL_POLICY = DEFAULT_POLICY.clone(header_factory=_header_registry())


# -- sending ----------------------------------------------------------------------------------


def deliver(message: EmailMessage, document: Document, *, mail: MailSettings, recipient: str, kind: str = "document") -> None:
    """Send the mail to ``recipient`` (the delivery's stored address: never read back from the
    ``To`` header), or write it to the outbox folder (a reminder's file name starts ``reminder-``)."""
    send_mail(message, mail=mail, recipient=recipient, stem=Path(document.file_name).stem, kind=kind)


def send_mail(message: EmailMessage, *, mail: MailSettings, recipient: str, stem: str, kind: str) -> None:
    """Send any mail (a document's, or one with none, such as the portal's sign-in link) to
    ``recipient`` by SMTP, or, with no SMTP configured, write it to the outbox folder as
    ``<kind>-<stem>.<token>.eml`` (a document's as ``<stem>.<token>.eml``)."""
    if mail.smtp_url:
        send_smtp(message, smtp_server(mail.smtp_url), recipients=[recipient])
    else:
        write_eml(message, stem, mail.outbox, prefix="" if kind == "document" else f"{kind}-")


def send_smtp(message: EmailMessage, server: SmtpServer, *, recipients: list[str]) -> None:
    sender = message["From"].addresses[0].addr_spec  # the header as built, not its text parsed again
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


def write_eml(message: EmailMessage, stem: str, outbox: Path, prefix: str = "") -> Path:
    """The mail as ``<stem>.<token>.eml`` in the outbox folder (a document's stem is its
    number), written whole or not at all. The token is a hash of the ``Message-ID``: unique to
    this installation's delivery (another database's ``INV-2026-000001`` gets a file of its
    own), and the same on every attempt (a mail written again after a crash replaces its first
    copy)."""
    if message["Message-ID"] is None:
        raise ValueError("a mail without a Message-ID has no name in the outbox")
    outbox.mkdir(parents=True, exist_ok=True)
    token = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:16]
    path = outbox / f"{prefix}{stem}.{token}.eml"
    descriptor, temporary = tempfile.mkstemp(dir=outbox, prefix=".", suffix=".eml.tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(message.as_bytes(policy=SMTP_POLICY))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
