"""Mailing approved invoices and credit notes (SPEC 8; ``documents/delivery.py``).

A real SMTP server (aiosmtpd) listens on 127.0.0.1 for each test that needs one. The standard
case, worked out by hand: "Acme Ltd" (billing@acme.test) rents a dedicated desk at 310.00 a
month, tax 20 %, from 2027-01-01; January is billed and approved on 2027-01-01 at 00:00 UTC, so
``INV-2027-000001`` is issued on 1 Jan 2027, due on 15 Jan 2027 (14 days), net 310.00 + tax
62.00 = 372.00 EUR. The operator keeps the demo settings ("Licensing Demo Workspace", no
operator e-mail), so the mail comes from ``Licensing Demo Workspace <invoices@example.invalid>``.

Back-off after the n-th failed attempt: 1 minute x 2^(n-1), at most an hour.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import sys
import threading
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult
from facturx import get_xml_from_pdf
from sqlmodel import select

from licensing.documents import delivery as delivery_module
from licensing.documents.delivery import (
    DeliveryRun,
    retry_delay,
    send_due,
    send_in_background,
    smtp_server,
)
from licensing.documents.models import Delivery
from licensing.events import Event
from licensing.invoicing.billing import run_billing
from licensing.invoicing.credit_notes import approve_credit_note, create_credit_note
from tests import factories
from tests.support.mail import (
    SOON,
    MailServer,
    customer,
    deliveries,
    free_port,
    january_invoice,
    outbox_mail,
    outbox_numbers,
)
from tests.support.use_cases import ACTOR, bill_and_approve, instant

JANUARY_1 = instant("2027-01-01 00:00")  # January is billed and approved: the mail is queued
CORRECTED = instant("2027-01-12 09:00")  # a credit note is approved
SENDER = "Licensing Demo Workspace <invoices@example.invalid>"
TEXT_SENTENCE = "please find attached invoice INV-2027-000001 of 1 Jan 2027: 372.00 EUR, due by 15 Jan 2027."


# ---------------------------------------------------------------------------------------------
# A real SMTP server on 127.0.0.1.
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def mail_server():
    """``mail_server(port=None, **aiosmtpd options)``: a server, not yet started."""
    servers: list[MailServer] = []

    def make(port: int | None = None, **options) -> MailServer:
        server = MailServer(port or free_port(), **options)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def accept_ada(server, session, envelope, mechanism, auth_data) -> AuthResult:
    """The only login the test servers know: ada / s3cret."""
    # handled=False: aiosmtpd answers a refusal itself (535)
    return AuthResult(success=(auth_data.login, auth_data.password) == (b"ada", b"s3cret"), handled=False, auth_data=auth_data)


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert file, key file): made with the
    ``cryptography`` package when it is installed, else with the ``openssl`` command."""
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    try:
        _certificate_with_cryptography(cert, key)
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl command is here to make a test certificate")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=30,
        )
    return cert, key


def _certificate_with_cryptography(cert: Path, key: Path) -> None:
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    today = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(private_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(today - dt.timedelta(days=1)).not_valid_after(today + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False)
        .sign(private_key, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def server_tls(certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def trusting(monkeypatch):
    """``trusting(cert)``: the sender trusts this certificate (as an operator with a private CA
    would, through SSL_CERT_FILE)."""
    def trust(cert: Path) -> None:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))

    return trust


# ---------------------------------------------------------------------------------------------
# Helpers: the documents, the deliveries, what arrived.
# ---------------------------------------------------------------------------------------------


def january_invoices(database, count: int, year: int = 2027) -> None:
    """``count`` customers, one desk each, billed and approved in one run on Jan 1."""
    desk = factories.plain_service(database, price="310.00")
    for index in range(1, count + 1):
        account = customer(database, f"Customer {index}", f"billing@customer{index}.test")
        licence = factories.licence(database, account.id, date(year, 1, 1), date(year, 12, 31))
        factories.service(database, licence.id, desk.id, from_date=date(year, 1, 1), to_date=date(year, 12, 31))
    result = run_billing(database, as_of=date(year, 1, 1), now=instant(f"{year}-01-01 00:00"), actor=ACTOR, approve_all=True)
    assert (result.invoices_created, result.invoices_approved) == (count, count)


def delivery_state(row: Delivery) -> tuple:
    return (row.status, row.attempts, row.last_error, row.next_attempt_at, row.claimed_until, row.message_id, row.sent_at)


def sent_events(database) -> list[dict]:
    with database.read() as session:
        return [json.loads(event.data) for event in session.exec(select(Event).where(Event.type == "invoice.sent").order_by(Event.id))]


def pdf_of(message: EmailMessage) -> tuple[str, bytes]:
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    return attachment.get_filename(), attachment.get_content()


def bodies_of(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML bodies, with the wire's CRLF line ends read as newlines."""
    text, html = (message.get_body((subtype,)).get_content() for subtype in ("plain", "html"))
    return text.replace("\r\n", "\n"), html.replace("\r\n", "\n")


def einvoice_in(pdf: bytes) -> bytes | None:
    """The Factur-X XML embedded in the PDF, if there is one."""
    _name, xml = get_xml_from_pdf(pdf, check_xsd=False)
    return xml or None  # (False, False) when there is none


def expected_message_id(row: Delivery, domain: str = "example.invalid") -> str:
    """The Message-ID the delivery drew at its first claim (and keeps): ``<delivery-<id>.<32 random
    hex digits>@<the sender's domain>>``."""
    assert re.fullmatch(rf"<delivery-{row.id}\.[0-9a-f]{{32}}@{re.escape(domain)}>", row.message_id or ""), row.message_id
    return row.message_id


# ---------------------------------------------------------------------------------------------
# Sending over SMTP.
# ---------------------------------------------------------------------------------------------


def test_an_approved_invoice_is_mailed_once_to_the_accounts_address_with_its_pdf(database, mail_server, set_operator_setting):
    server = mail_server().start()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    account, invoice = january_invoice(database, email="accounts@acme.test")
    (queued,) = deliveries(database)
    assert (queued.document_type, queued.document_id, queued.recipient, queued.status, queued.next_attempt_at) == (
        "invoice", invoice.id, "accounts@acme.test", "pending", JANUARY_1
    )

    assert send_due(database, now=SOON) == DeliveryRun(sent=1, failed=0, retried=0)

    (received,) = server.received
    assert (received.envelope_from, received.recipients, received.tls, received.login) == (
        "invoices@example.invalid", ["accounts@acme.test"], False, None
    )
    message = received.message
    assert message["Subject"] == "Invoice INV-2027-000001 from Licensing Demo Workspace"
    assert message["From"] == SENDER
    assert parseaddr(message["To"]) == ("Acme Ltd", "accounts@acme.test")
    assert message["Message-ID"] == expected_message_id(deliveries(database)[0])
    file_name, pdf = pdf_of(message)
    assert file_name == "INV-2027-000001.pdf"
    assert pdf.startswith(b"%PDF-")
    assert b"<ram:ID>INV-2027-000001</ram:ID>" in einvoice_in(pdf)  # the e-invoice travels inside
    text, html = bodies_of(message)
    assert text.startswith(f"Hello Acme Ltd,\n\n{TEXT_SENTENCE}\n")
    assert "- Dedicated desk: 310.00" in text
    assert "<strong>INV-2027-000001</strong>" in html
    assert "<strong>372.00 EUR</strong>, due by 15 Jan 2027" in html

    (sent,) = deliveries(database)
    assert delivery_state(sent) == ("sent", 1, None, JANUARY_1, None, expected_message_id(sent), SOON)
    assert sent_events(database) == [{
        "document_type": "invoice", "document_id": str(invoice.id), "number": "INV-2027-000001", "account_id": str(account.id),
        "recipient": "accounts@acme.test", "message_id": expected_message_id(sent),
    }]

    # running again, even much later, sends nothing more
    assert send_due(database, now=SOON) == DeliveryRun()
    assert send_due(database, now=instant("2027-03-01 00:00")) == DeliveryRun()
    assert len(server.received) == 1
    assert delivery_state(deliveries(database)[0]) == delivery_state(sent)
    assert len(sent_events(database)) == 1


def test_an_account_without_a_country_still_gets_its_invoice_as_a_pdf_without_the_einvoice(database, mail_server, set_operator_setting):
    # EN 16931 needs the buyer's country; the invoice itself does not
    server = mail_server().start()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    january_invoice(database, country=None)

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    (received,) = server.received
    file_name, pdf = pdf_of(received.message)
    assert (file_name, pdf[:5]) == ("INV-2027-000001.pdf", b"%PDF-")
    assert einvoice_in(pdf) is None
    assert TEXT_SENTENCE in bodies_of(received.message)[0]


def test_without_the_einvoice_module_the_pdf_is_mailed_alone(database, mail_server, set_operator_setting, monkeypatch):
    server = mail_server().start()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    monkeypatch.setitem(sys.modules, "licensing.documents.einvoice", None)  # importing it fails
    january_invoice(database)

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    (received,) = server.received
    _file_name, pdf = pdf_of(received.message)
    assert pdf.startswith(b"%PDF-")
    assert einvoice_in(pdf) is None


def test_a_line_break_in_the_account_name_does_not_break_the_mail_headers(database, tmp_path, set_operator_setting):
    set_operator_setting("mail_outbox", str(tmp_path))
    january_invoice(database, name="Acme\r\nBcc: everyone@example.test")

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    message = outbox_mail(tmp_path, "INV-2027-000001")
    assert parseaddr(message["To"]) == ("Acme Bcc: everyone@example.test", "billing@acme.test")
    assert message["Bcc"] is None


def test_the_text_body_shows_each_line_on_a_line_of_its_own(database, tmp_path, set_operator_setting):
    # a desk at 310.00 and a pack of 10 credits at 100.00, both +20 %: net 410.00 + tax 82.00
    set_operator_setting("mail_outbox", str(tmp_path))
    account = customer(database)
    desk = factories.plain_service(database, price="310.00")
    pack = factories.credit_pack(database, credits="10", lifetime="P1M", price="100.00")
    licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
    for product in (desk, pack):
        factories.service(database, licence.id, product.id, from_date=date(2027, 1, 1), to_date=date(2027, 12, 31))
    bill_and_approve(database, licence.id, as_of=date(2027, 1, 1), now=JANUARY_1)

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    text, _html = bodies_of(outbox_mail(tmp_path, "INV-2027-000001"))
    assert text == (
        "Hello Acme Ltd,\n"
        "\n"
        "please find attached invoice INV-2027-000001 of 1 Jan 2027: 492.00 EUR, due by 15 Jan 2027.\n"
        "\n"
        "- Dedicated desk: 310.00\n"
        "- 10 credits (P1M): 100.00 (10.00 credits)\n"
        "\n"
        "Payment due within 14 days of the issue date, by 15 Jan 2027.\n"
        "\n"
        "Licensing Demo Workspace\n"
    )


def test_a_delivery_is_not_sent_before_it_is_due(database, mail_server, set_operator_setting):
    server = mail_server().start()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    january_invoice(database)

    assert send_due(database, now=JANUARY_1 - timedelta(seconds=1)) == DeliveryRun()
    assert server.received == []
    assert deliveries(database)[0].status == "pending"
    assert send_due(database, now=JANUARY_1) == DeliveryRun(sent=1)


def test_while_the_mail_server_is_down_the_mail_waits_with_growing_pauses_and_arrives_once_when_it_is_back(
    database, mail_server, set_operator_setting
):
    port = free_port()  # nothing listens there yet
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{port}")
    january_invoice(database)

    # first attempt at 00:05 fails: next attempt 1 minute later (the Message-ID drawn at this
    # first claim is kept for every attempt)
    assert send_due(database, now=SOON) == DeliveryRun(retried=1)
    (row,) = deliveries(database)
    assert (row.status, row.attempts, row.next_attempt_at, row.claimed_until, row.message_id, row.sent_at) == (
        "pending", 1, instant("2027-01-01 00:06"), None, expected_message_id(row), None
    )
    first_message_id = row.message_id
    assert row.last_error.startswith("ConnectionRefusedError: ")
    assert sent_events(database) == []

    # not due yet at 00:05:59: nothing is tried, nothing changes
    before = delivery_state(row)
    assert send_due(database, now=instant("2027-01-01 00:05:59")) == DeliveryRun()
    assert delivery_state(deliveries(database)[0]) == before

    # second attempt at 00:06 fails: next attempt 2 minutes later
    assert send_due(database, now=instant("2027-01-01 00:06")) == DeliveryRun(retried=1)
    (row,) = deliveries(database)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 2, instant("2027-01-01 00:08"))

    # the server is back; at 00:07 the mail is still waiting, at 00:08 it goes
    server = mail_server(port).start()
    assert send_due(database, now=instant("2027-01-01 00:07")) == DeliveryRun()
    assert server.received == []
    assert send_due(database, now=instant("2027-01-01 00:08")) == DeliveryRun(sent=1)
    assert send_due(database, now=instant("2027-01-01 00:30")) == DeliveryRun()

    (received,) = server.received
    assert received.message["Subject"] == "Invoice INV-2027-000001 from Licensing Demo Workspace"
    assert received.message["Message-ID"] == first_message_id
    (row,) = deliveries(database)
    assert (row.status, row.attempts, row.sent_at, row.claimed_until, row.message_id) == (
        "sent", 3, instant("2027-01-01 00:08"), None, first_message_id
    )
    assert row.last_error.startswith("ConnectionRefusedError: ")  # the last error stays for the record
    assert len(sent_events(database)) == 1


def test_the_pause_after_each_failure_doubles_from_a_minute_up_to_an_hour():
    assert [retry_delay(attempts) for attempts in range(1, 10)] == [
        timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=8), timedelta(minutes=16),
        timedelta(minutes=32), timedelta(hours=1), timedelta(hours=1), timedelta(hours=1),
    ]
    assert retry_delay(10_000) == timedelta(hours=1)


def test_after_the_last_allowed_attempt_the_delivery_is_failed_and_never_tried_again(database, mail_server, set_operator_setting):
    port = free_port()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{port}")
    set_operator_setting("mail_max_attempts", "3")
    january_invoice(database)

    assert send_due(database, now=instant("2027-01-01 00:05")) == DeliveryRun(retried=1)
    assert send_due(database, now=instant("2027-01-01 00:06")) == DeliveryRun(retried=1)
    assert send_due(database, now=instant("2027-01-01 00:08")) == DeliveryRun(failed=1)
    (row,) = deliveries(database)
    assert (row.status, row.attempts, row.claimed_until, row.sent_at) == ("failed", 3, None, None)
    assert row.last_error.startswith("ConnectionRefusedError: ")

    server = mail_server(port).start()
    assert send_due(database, now=instant("2027-01-02 00:00")) == DeliveryRun()
    assert server.received == []
    assert delivery_state(deliveries(database)[0]) == delivery_state(row)
    assert sent_events(database) == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_a_mail_server_that_refuses_the_mail_counts_as_a_failed_attempt(database, mail_server, set_operator_setting):
    # the server wants a login the operator did not configure
    server = mail_server(authenticator=accept_ada, auth_required=True, auth_require_tls=False).start()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    january_invoice(database)

    assert send_due(database, now=SOON) == DeliveryRun(retried=1)
    (row,) = deliveries(database)
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, instant("2027-01-01 00:06"))
    assert row.last_error.startswith("SMTPSenderRefused: (530")
    assert server.received == []


def test_starttls_and_login_are_used_when_the_url_asks_for_them(database, mail_server, set_operator_setting, certificate, trusting):
    cert, _key = certificate
    server = mail_server(tls_context=server_tls(certificate), require_starttls=True, authenticator=accept_ada, auth_required=True).start()
    trusting(cert)
    set_operator_setting("smtp_url", f"smtp://ada:s3cret@127.0.0.1:{server.port}?starttls=true")
    january_invoice(database)

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    (received,) = server.received
    assert (received.tls, received.login, received.recipients) == (True, "ada", ["billing@acme.test"])
    assert pdf_of(received.message)[0] == "INV-2027-000001.pdf"


def test_a_wrong_password_is_a_failed_attempt_and_its_error_does_not_show_the_password(
    database, mail_server, set_operator_setting, certificate, trusting
):
    cert, _key = certificate
    server = mail_server(tls_context=server_tls(certificate), require_starttls=True, authenticator=accept_ada, auth_required=True).start()
    trusting(cert)
    set_operator_setting("smtp_url", f"smtp://ada:not-the-password@127.0.0.1:{server.port}?starttls=true")
    january_invoice(database)

    assert send_due(database, now=SOON) == DeliveryRun(retried=1)
    (row,) = deliveries(database)
    assert row.last_error.startswith("SMTPAuthenticationError: (535")
    assert "not-the-password" not in row.last_error
    assert server.received == []


def test_a_server_certificate_the_sender_does_not_trust_is_refused_and_nothing_is_sent(
    database, mail_server, set_operator_setting, certificate
):
    server = mail_server(tls_context=server_tls(certificate), require_starttls=True, authenticator=accept_ada, auth_required=True).start()
    set_operator_setting("smtp_url", f"smtp://ada:s3cret@127.0.0.1:{server.port}?starttls=true")
    january_invoice(database)

    assert send_due(database, now=SOON) == DeliveryRun(retried=1)
    (row,) = deliveries(database)
    assert row.last_error.startswith("SSLCertVerificationError: ")
    assert (row.status, row.attempts) == ("pending", 1)
    assert server.received == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtps_speaks_tls_from_the_first_byte(database, mail_server, set_operator_setting, certificate, trusting):
    cert, _key = certificate
    # (auth_require_tls=False: aiosmtpd counts only STARTTLS as TLS when it decides to offer AUTH)
    server = mail_server(ssl_context=server_tls(certificate), authenticator=accept_ada, auth_required=True, auth_require_tls=False).start()
    trusting(cert)
    set_operator_setting("smtp_url", f"smtps://ada:s3cret@127.0.0.1:{server.port}")
    january_invoice(database)

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    (received,) = server.received
    assert (received.tls, received.login) == (True, "ada")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_a_login_without_tls_is_used_when_the_server_allows_it(database, mail_server, set_operator_setting):
    server = mail_server(authenticator=accept_ada, auth_required=True, auth_require_tls=False).start()
    set_operator_setting("smtp_url", f"smtp://ada:s3cret@127.0.0.1:{server.port}")
    january_invoice(database)

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    (received,) = server.received
    assert (received.tls, received.login) == (False, "ada")


def test_the_smtp_url_gives_the_server_the_login_and_the_kind_of_tls():
    assert smtp_server("smtp://user%40space.test:p%3Ass@mail.space.test:587?starttls=true") == delivery_module.SmtpServer(
        host="mail.space.test", port=587, implicit_tls=False, starttls=True, username="user@space.test", password="p:ss"
    )
    assert smtp_server("smtps://user:secret@mail.space.test") == delivery_module.SmtpServer(
        host="mail.space.test", port=465, implicit_tls=True, starttls=False, username="user", password="secret"
    )
    assert smtp_server("smtp://localhost") == delivery_module.SmtpServer(
        host="localhost", port=25, implicit_tls=False, starttls=False, username=None, password=None
    )
    with pytest.raises(ValueError) as refusal:
        smtp_server("http://user:hunter2@mail.space.test")
    assert "hunter2" not in str(refusal.value)


def test_the_operators_from_address_is_used(database, mail_server, set_operator_setting):
    server = mail_server().start()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    set_operator_setting("mail_from", "Space Billing <billing@space.test>")
    january_invoice(database)

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    (received,) = server.received
    assert (received.envelope_from, received.message["From"]) == ("billing@space.test", "Space Billing <billing@space.test>")
    assert received.message["Message-ID"] == expected_message_id(deliveries(database)[0], "space.test")


def test_without_a_from_address_the_operators_name_and_email_are_used(database, mail_server, set_operator_setting):
    server = mail_server().start()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    set_operator_setting("operator_name", "Hub Coworking")
    set_operator_setting("operator_email", "accounts@hub.test")
    january_invoice(database)

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    (received,) = server.received
    assert received.message["From"] == "Hub Coworking <accounts@hub.test>"
    assert received.message["Subject"] == "Invoice INV-2027-000001 from Hub Coworking"


# ---------------------------------------------------------------------------------------------
# The outbox folder (no SMTP configured).
# ---------------------------------------------------------------------------------------------


def test_without_smtp_each_mail_is_written_to_the_outbox_folder_as_an_eml_file(database, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default outbox is ./outbox
    january_invoices(database, 2)

    assert send_due(database, now=SOON) == DeliveryRun(sent=2)

    outbox = tmp_path / "outbox"
    assert outbox_numbers(outbox) == ["INV-2027-000001", "INV-2027-000002"]
    for number, recipient in (("INV-2027-000001", "billing@customer1.test"), ("INV-2027-000002", "billing@customer2.test")):
        message = outbox_mail(outbox, number)
        assert message["Subject"] == f"Invoice {number} from Licensing Demo Workspace"
        assert parseaddr(message["To"])[1] == recipient
        file_name, pdf = pdf_of(message)
        assert (file_name, pdf[:5]) == (f"{number}.pdf", b"%PDF-")
        text, _html = bodies_of(message)
        assert f"please find attached invoice {number} of 1 Jan 2027: 372.00 EUR, due by 15 Jan 2027." in text
    assert [row.status for row in deliveries(database)] == ["sent", "sent"]
    assert [event["number"] for event in sent_events(database)] == ["INV-2027-000001", "INV-2027-000002"]

    assert send_due(database, now=SOON) == DeliveryRun()
    assert len(list(outbox.iterdir())) == 2


def test_the_outbox_folder_is_a_setting(database, tmp_path, set_operator_setting):
    set_operator_setting("mail_outbox", str(tmp_path / "mail" / "out"))
    january_invoice(database)

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    assert outbox_numbers(tmp_path / "mail" / "out") == ["INV-2027-000001"]
    message = outbox_mail(tmp_path / "mail" / "out", "INV-2027-000001")
    assert TEXT_SENTENCE in bodies_of(message)[0]


# ---------------------------------------------------------------------------------------------
# Credit notes, claims, limits, concurrency, the background sender.
# ---------------------------------------------------------------------------------------------


def test_an_approved_credit_note_is_mailed_too(database, mail_server, set_operator_setting):
    server = mail_server().start()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    account, invoice = january_invoice(database)
    assert send_due(database, now=SOON) == DeliveryRun(sent=1)

    # the whole invoice is credited on Jan 12: CN-2027-000001 of 372.00
    with database.write() as session:
        note = create_credit_note(session, invoice_id=invoice.id, reason="desk never used", now=CORRECTED, actor=ACTOR)
    assert send_due(database, now=CORRECTED) == DeliveryRun()  # a draft is not mailed
    with database.write() as session:
        approve_credit_note(session, note.id, now=CORRECTED, actor=ACTOR)
    assert send_due(database, now=CORRECTED + timedelta(minutes=1)) == DeliveryRun(sent=1)

    invoice_mail, note_mail = server.received
    assert note_mail.recipients == ["billing@acme.test"]
    message = note_mail.message
    assert message["Subject"] == "Credit note CN-2027-000001 from Licensing Demo Workspace"
    file_name, pdf = pdf_of(message)
    assert (file_name, pdf[:5]) == ("CN-2027-000001.pdf", b"%PDF-")
    assert b"<ram:TypeCode>381</ram:TypeCode>" in einvoice_in(pdf)  # a credit note's e-invoice
    text, html = bodies_of(message)
    assert "please find attached credit note CN-2027-000001 of 12 Jan 2027, crediting invoice INV-2027-000001: 372.00 EUR." in text
    assert "<strong>CN-2027-000001</strong>" in html
    assert "<strong>372.00 EUR</strong>" in html

    invoice_row, note_row = deliveries(database)
    assert (note_row.document_type, note_row.document_id, note_row.status, note_row.sent_at) == (
        "credit_note", note.id, "sent", CORRECTED + timedelta(minutes=1)
    )
    assert sent_events(database)[1] == {
        "document_type": "credit_note", "document_id": str(note.id), "number": "CN-2027-000001", "account_id": str(account.id),
        "recipient": "billing@acme.test", "message_id": expected_message_id(note_row),
    }
    assert note_mail.message["Message-ID"] == expected_message_id(note_row)
    assert invoice_mail.message["Message-ID"] == expected_message_id(invoice_row)


def test_a_delivery_claimed_by_another_sender_is_left_alone_until_the_claim_runs_out(database, mail_server, set_operator_setting):
    server = mail_server().start()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    january_invoice(database)
    # another sender claimed it at 00:05 and has not reported back
    with database.write() as session:
        row = session.exec(select(Delivery)).one()
        row.claimed_until = SOON + delivery_module.CLAIM_TIME
        session.add(row)

    assert send_due(database, now=SOON + timedelta(minutes=1)) == DeliveryRun()
    assert server.received == []
    assert send_due(database, now=SOON + delivery_module.CLAIM_TIME) == DeliveryRun(sent=1)
    (received,) = server.received
    (row,) = deliveries(database)
    assert (row.status, row.attempts, row.claimed_until) == ("sent", 1, None)
    assert received.message["Message-ID"] == expected_message_id(row)


def test_a_run_sends_at_most_its_limit_and_the_next_run_sends_the_rest(database, tmp_path, set_operator_setting):
    set_operator_setting("mail_outbox", str(tmp_path / "outbox"))
    january_invoices(database, 3)

    assert send_due(database, now=SOON, limit=2) == DeliveryRun(sent=2)
    assert [row.status for row in deliveries(database)] == ["sent", "sent", "pending"]
    assert send_due(database, now=SOON, limit=2) == DeliveryRun(sent=1)
    assert outbox_numbers(tmp_path / "outbox") == ["INV-2027-000001", "INV-2027-000002", "INV-2027-000003"]


def test_two_senders_running_at_once_send_each_mail_once(database, mail_server, set_operator_setting):
    server = mail_server().start()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    january_invoices(database, 4)

    start = threading.Barrier(2)
    runs: list[DeliveryRun] = []
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            start.wait(timeout=10)
            runs.append(send_due(database, now=SOON))
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            errors.append(error)

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert sum(run.sent for run in runs) == 4
    assert sum(run.retried + run.failed for run in runs) == 0
    assert sorted(received.message["Subject"].split()[1] for received in server.received) == [
        "INV-2027-000001", "INV-2027-000002", "INV-2027-000003", "INV-2027-000004"
    ]
    assert [(row.status, row.attempts) for row in deliveries(database)] == [("sent", 1)] * 4
    assert sorted(event["number"] for event in sent_events(database)) == [
        "INV-2027-000001", "INV-2027-000002", "INV-2027-000003", "INV-2027-000004"
    ]


def test_the_background_sender_mails_what_is_due(database, mail_server, set_operator_setting):
    server = mail_server().start()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    # the background sender reads the wall clock: the invoice was approved before it
    january_invoice(database, year=2025)

    send_in_background(database).join(timeout=30)

    (received,) = server.received
    assert received.message["Subject"] == "Invoice INV-2025-000001 from Licensing Demo Workspace"
    assert deliveries(database)[0].status == "sent"


def test_the_background_sender_sends_only_the_deliveries_it_is_given(database, tmp_path, set_operator_setting):
    set_operator_setting("mail_outbox", str(tmp_path / "outbox"))
    january_invoices(database, 2, year=2025)  # before the wall clock's now
    _first, second = deliveries(database)

    send_in_background(database, [second.id]).join(timeout=30)

    assert outbox_numbers(tmp_path / "outbox") == ["INV-2025-000002"]
    assert [row.status for row in deliveries(database)] == ["pending", "sent"]


def test_the_background_sender_logs_an_error_instead_of_raising_it(database, monkeypatch, caplog):
    def broken(*_args, **_kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(delivery_module, "send_due", broken)
    with caplog.at_level("ERROR", logger="licensing.delivery"):
        send_in_background(database).join(timeout=30)

    (record,) = [record for record in caplog.records if record.name == "licensing.delivery"]
    assert record.levelname == "ERROR"
    assert "database gone" in record.exc_text


def test_approving_over_http_mails_the_invoice_once_the_approval_has_committed(client, database, set_operator_setting, tmp_path):
    """With ``mail_on_approval`` (the default outside the test suite), the approve route starts
    the sender after its transaction commits: the .eml is in the outbox without any scheduler."""
    import time

    set_operator_setting("mail_on_approval", "true")
    set_operator_setting("mail_outbox", str(tmp_path))
    customer(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    licence = factories.licence(database, 1, date(2027, 1, 1))
    factories.service(database, licence.id, pack.id, from_date=date(2027, 1, 1))
    run_billing(database, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"), actor=ACTOR)

    response = client.post("/api/v1/invoices/1/approve")
    assert response.status_code == 200, response.text
    number = response.json()["number"]

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not list(tmp_path.glob("*.eml")):
        time.sleep(0.1)
    assert outbox_numbers(tmp_path) == [number]
    while time.monotonic() < deadline and deliveries(database)[0].status != "sent":
        time.sleep(0.1)
    assert [(d.document_type, d.status, d.attempts) for d in deliveries(database)] == [("invoice", "sent", 1)]


def _wait_for_outbox(folder, count: int) -> list[str]:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(list(folder.glob("*.eml"))) < count:
        time.sleep(0.1)
    return outbox_numbers(folder)


def test_every_approval_path_mails_once_the_approval_has_committed(database, set_operator_setting, tmp_path):
    """The mail of an approved document is started by an after-commit hook of the approving
    transaction, whichever path approved: a billing run (the scheduler's and the CLI's path), a
    top-up approved at once, a credit note, and not before the commit (a rolled-back approval
    queues and sends nothing). No scheduler job runs here."""
    from licensing.invoicing.top_ups import top_up

    set_operator_setting("mail_on_approval", "true")
    set_operator_setting("mail_outbox", str(tmp_path))
    account = customer(database)
    pack = factories.credit_pack(database, credits="10", lifetime="P1M")
    licence = factories.licence(database, account.id, date(2025, 1, 1))
    factories.service(database, licence.id, pack.id, from_date=date(2025, 1, 1))

    run_billing(database, as_of=date(2025, 1, 1), now=instant("2025-01-01 00:00"), actor=ACTOR, approve_all=True)
    assert _wait_for_outbox(tmp_path, 1) == ["INV-2025-000001"]

    with database.write() as session:
        top_up(session, account.id, product_id=pack.id, approve=True, now=instant("2025-01-02 09:00"), actor=ACTOR)
    assert _wait_for_outbox(tmp_path, 2) == ["INV-2025-000001", "INV-2025-000002"]

    with database.write() as session:
        note = create_credit_note(session, invoice_id=2, reason="Bought twice", now=instant("2025-01-02 10:00"), actor=ACTOR)
        approve_credit_note(session, note.id, now=instant("2025-01-02 10:00"), actor=ACTOR)
    assert len(_wait_for_outbox(tmp_path, 3)) == 3

    class Abandoned(Exception):
        pass

    try:
        with database.write() as session:
            top_up(session, account.id, product_id=pack.id, approve=True, now=instant("2025-01-03 09:00"), actor=ACTOR)
            raise Abandoned
    except Abandoned:
        pass
    background_sender_done = send_in_background(database)
    background_sender_done.join(timeout=30)
    assert len(list(tmp_path.glob("*.eml"))) == 3
    assert [(row.document_type, row.status) for row in deliveries(database)] == [("invoice", "sent"), ("invoice", "sent"), ("credit_note", "sent")]
