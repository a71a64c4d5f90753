"""Mail hardening (issue 11; ``documents/delivery.py``): an account's name is only ever a
display name, two installations sharing an outbox folder keep each other's mails, and a
Message-ID is unique to its installation yet the same on every attempt at one delivery.

The mails are the standard case of ``tests/test_delivery.py``: a desk at 310.00 (+20 % tax)
billed and approved on 2027-01-01 at 00:00 UTC, so each database's first invoice is
``INV-2027-000001`` and its first delivery is delivery 1.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from datetime import date
from email.utils import getaddresses

import pytest
from sqlalchemy import create_engine, text

from licensing.config import get_settings
from licensing.db import Database
from licensing.documents import delivery as delivery_module
from licensing.documents.delivery import DeliveryRun, MailSettings, build_message, send_due
from licensing.events import worker
from licensing.invoicing.billing import run_billing
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
    read_eml,
)
from tests.support.use_cases import ACTOR, instant

# Account names that try to add a recipient, each with the address the invoice must go to.
NASTY_NAMES = [
    "Evil, attacker@evil.test",
    '"Bob" <attacker@evil.test>, Mallory',
    "Mallory <attacker@evil.test>",
    # too long for one line: Python's own folding drops the quotes and makes three addresses
    "Acme Coworking International Holdings Limited, Berlin Branch, attacker@evil.test",
    "Acme\r\nBcc: attacker@evil.test",
    "Acme\rCc: attacker@evil.test",
    "Acme\nTo: attacker@evil.test",
    "Zoë Müller, attacker@evil.test",
    "東京コワーキング株式会社 <attacker@evil.test>, 経理",
    "Müller & Söhne Coworking Gesellschaft mit beschränkter Haftung, Niederlassung Berlin, attacker@evil.test",
    "=?utf-8?q?attacker=40evil.test=2C?= Mallory",  # an encoded word's look-alike is shown as it is
    'Back\\slash "quoted", attacker@evil.test',
]


@pytest.fixture
def mail_server():
    servers: list[MailServer] = []

    def start() -> MailServer:
        server = MailServer(free_port()).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def other_database(database_url, request, tmp_path):
    """A second installation: a database of its own, migrated, on the same kind of server as
    ``database``."""
    if database_url.startswith("sqlite"):
        path = tmp_path / "other-installation.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        other = Database(f"sqlite:///{path}")
        yield other
        other.dispose()
        return
    template = request.getfixturevalue("postgres_template")
    server_url = os.environ["LICENSING_TEST_POSTGRES_URL"].replace("postgresql://", "postgresql+psycopg://")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
    other = Database(f"{server_url.rpartition('/')[0]}/{name}")
    try:
        yield other
    finally:
        other.dispose()
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def invoices_for(database, names: list[str]) -> dict[str, str]:
    """One customer per name, one desk each, billed and approved on Jan 1: {address: name}."""
    desk = factories.plain_service(database, price="310.00")
    addresses = {}
    for index, name in enumerate(names, start=1):
        address = f"billing@customer{index}.test"
        account = customer(database, name, address)
        licence = factories.licence(database, account.id, date(2027, 1, 1), date(2027, 12, 31))
        factories.service(database, licence.id, desk.id, from_date=date(2027, 1, 1), to_date=date(2027, 12, 31))
        addresses[address] = name
    result = run_billing(database, as_of=date(2027, 1, 1), now=instant("2027-01-01 00:00"), actor=ACTOR, approve_all=True)
    assert result.invoices_approved == len(names)
    return addresses


def all_recipients(message) -> list[tuple[str, str]]:
    """Every (name, address) of every recipient header, as a mail client reads them."""
    return getaddresses([str(value) for header in ("To", "Cc", "Bcc") for value in message.get_all(header, [])])


def one_line(name: str) -> str:
    return " ".join(name.split())


class Crash(BaseException):
    """A sender dying (not an error it could record) between the mail leaving and step 3."""


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["smtp", "outbox"])
def test_a_display_name_never_adds_a_recipient(database, mail_server, tmp_path, set_operator_setting, transport):
    if transport == "smtp":
        server = mail_server()
        set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    else:
        set_operator_setting("mail_outbox", str(tmp_path / "outbox"))
    names_by_address = invoices_for(database, NASTY_NAMES)

    assert send_due(database, now=SOON) == DeliveryRun(sent=len(NASTY_NAMES))

    if transport == "smtp":
        mails = [(received.recipients, received.message) for received in server.received]
    else:
        mails = [(None, read_eml(path)) for path in sorted((tmp_path / "outbox").glob("*.eml"))]
    assert len(mails) == len(NASTY_NAMES)
    for envelope_recipients, message in mails:
        ((name, address),) = all_recipients(message)
        assert address in names_by_address, address
        if envelope_recipients is not None:
            assert envelope_recipients == [address]  # the delivery's stored address, only
        (header_address,) = message["To"].addresses
        assert header_address.addr_spec == address
        # the whole name, on one line (Python's parser puts a space between encoded words)
        assert one_line(name) == one_line(header_address.display_name) == one_line(names_by_address[address])
    assert sorted(names_by_address) == sorted(message["To"].addresses[0].addr_spec for _recipients, message in mails)


def test_an_operator_name_with_a_comma_stays_one_sender(database, mail_server, set_operator_setting):
    server = mail_server()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    set_operator_setting("operator_name", "Café Work, Berlin")
    set_operator_setting("operator_email", "invoices@cafe.test")
    january_invoice(database)

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    (received,) = server.received
    assert received.envelope_from == "invoices@cafe.test"
    assert getaddresses([str(received.message["From"])]) == [("Café Work, Berlin", "invoices@cafe.test")]
    assert received.message["Subject"] == "Invoice INV-2027-000001 from Café Work, Berlin"


def test_two_installations_sharing_an_outbox_folder_keep_both_mails(database, other_database, tmp_path, set_operator_setting):
    outbox = tmp_path / "outbox"
    set_operator_setting("mail_outbox", str(outbox))
    january_invoice(database, name="Acme Ltd", email="billing@acme.test")
    january_invoice(other_database, name="Beta GmbH", email="billing@beta.test")

    assert send_due(database, now=SOON) == DeliveryRun(sent=1)
    assert send_due(other_database, now=SOON) == DeliveryRun(sent=1)

    assert outbox_numbers(outbox) == ["INV-2027-000001", "INV-2027-000001"]
    mails = [read_eml(path) for path in outbox.glob("*.eml")]
    assert sorted(message["To"].addresses[0].addr_spec for message in mails) == ["billing@acme.test", "billing@beta.test"]
    # each file is named by a hash of its Message-ID: stable for the delivery, unique to it
    for path in outbox.glob("*.eml"):
        token = hashlib.sha256(read_eml(path)["Message-ID"].encode()).hexdigest()[:16]
        assert path.name == f"INV-2027-000001.{token}.eml"


def test_each_installation_draws_its_own_message_id_and_keeps_it_when_the_mail_is_sent_again(
    database, other_database, tmp_path, set_operator_setting, monkeypatch
):
    outbox = tmp_path / "outbox"
    set_operator_setting("mail_outbox", str(outbox))
    january_invoice(database)
    january_invoice(other_database)

    # the first sender writes the mail, then dies before it can record it as sent (the delivery worker's step 3)
    record_done = worker._record_done

    def die(*_args, **_kwargs):
        raise Crash

    monkeypatch.setattr(worker, "_record_done", die)
    with pytest.raises(Crash):
        send_due(database, now=SOON)
    (claimed,) = deliveries(database)
    assert (claimed.id, claimed.status, claimed.claimed_until is not None) == (1, "pending", True)
    first_copy = outbox_mail(outbox, "INV-2027-000001")
    assert first_copy["Message-ID"] == claimed.message_id

    # building the mail again gives the same Message-ID
    mail = MailSettings.of(get_settings())
    _document, rebuilt = build_message(database, claimed, mail=mail, settings=get_settings(), now=SOON)
    assert rebuilt["Message-ID"] == claimed.message_id

    # its claim runs out; the next sender sends it again: same Message-ID, same file replaced
    monkeypatch.setattr(worker, "_record_done", record_done)
    assert send_due(database, now=SOON + delivery_module.CLAIM_TIME) == DeliveryRun(sent=1)
    (sent,) = deliveries(database)
    assert (sent.status, sent.message_id) == ("sent", claimed.message_id)
    assert outbox_numbers(outbox) == ["INV-2027-000001"]
    assert outbox_mail(outbox, "INV-2027-000001")["Message-ID"] == claimed.message_id

    # the other installation's delivery 1 of INV-2027-000001 has a Message-ID of its own
    assert send_due(other_database, now=SOON) == DeliveryRun(sent=1)
    (other,) = deliveries(other_database)
    assert other.id == 1
    assert other.message_id != sent.message_id
    assert sorted(read_eml(path)["Message-ID"] for path in outbox.glob("*.eml")) == sorted([sent.message_id, other.message_id])


def test_a_delivery_that_was_never_claimed_has_no_mail_to_build(database):
    january_invoice(database)
    (pending,) = deliveries(database)

    with pytest.raises(ValueError, match="no Message-ID yet"):
        build_message(database, pending, mail=MailSettings.of(get_settings()), settings=get_settings(), now=SOON)


def test_a_stored_recipient_that_is_more_than_one_address_is_refused_not_mailed(database, mail_server, set_operator_setting):
    server = mail_server()
    set_operator_setting("smtp_url", f"smtp://127.0.0.1:{server.port}")
    january_invoice(database, email="billing@acme.test, attacker@evil.test")

    assert send_due(database, now=SOON) == DeliveryRun(retried=1)
    (row,) = deliveries(database)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "addr_spec" in row.last_error
    assert server.received == []
