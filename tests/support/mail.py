"""Mail helpers shared by ``tests/test_delivery.py`` and ``tests/test_mail_hardening.py``: a real
SMTP server (aiosmtpd) on 127.0.0.1, the standard mailed invoice and the outbox folder.

The standard case: "Acme Ltd" (billing@acme.test) rents a dedicated desk at 310.00 a month, tax
20 %, from 2027-01-01; January is billed and approved on 2027-01-01 at 00:00 UTC, so
``INV-2027-000001`` is issued on 1 Jan 2027, net 310.00 + tax 62.00 = 372.00 EUR."""

from __future__ import annotations

import re
import socket
import threading
from dataclasses import dataclass
from datetime import date
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlmodel import select

from licensing.accounts.services import create_account
from licensing.documents.models import Delivery
from tests import factories
from tests.support.use_cases import bill_and_approve, instant

SOON = instant("2027-01-01 00:05")  # the sender's first run


# ---------------------------------------------------------------------------------------------
# A real SMTP server on 127.0.0.1.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    envelope_from: str
    recipients: list[str]
    message: EmailMessage
    tls: bool
    login: str | None


class Recorder:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        received = Received(
            envelope_from=envelope.mail_from, recipients=list(envelope.rcpt_tos),
            message=message_from_bytes(envelope.content, policy=default_policy),
            tls=server.transport.get_extra_info("ssl_object") is not None,
            login=session.auth_data.login.decode() if session.authenticated else None,
        )
        with self.lock:
            self.received.append(received)
        return "250 2.0.0 Message accepted for delivery"


def free_port() -> int:
    """A port nothing listens on (until a test starts a server there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class MailServer:
    def __init__(self, port: int, **options) -> None:
        self.port, self.options = port, options
        self.recorder = Recorder()
        self.controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        return list(self.recorder.received)

    def start(self) -> MailServer:
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port, server_hostname="mail.test", **self.options)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


# ---------------------------------------------------------------------------------------------
# The standard invoice, the deliveries, the outbox folder.
# ---------------------------------------------------------------------------------------------


def customer(database, name: str = "Acme Ltd", email: str = "billing@acme.test", country: str | None = "FR"):
    with database.write() as session:
        return create_account(session, name=name, email=email, currency="EUR", country=country, at=factories.SETUP_TIME)


def january_invoice(database, name: str = "Acme Ltd", email: str = "billing@acme.test", year: int = 2027, country: str | None = "FR"):
    """The standard case: a desk at 310.00 (+20 % tax) billed and approved on Jan 1."""
    account = customer(database, name, email, country)
    desk = factories.plain_service(database, price="310.00")
    licence = factories.licence(database, account.id, date(year, 1, 1), date(year, 12, 31))
    factories.service(database, licence.id, desk.id, from_date=date(year, 1, 1), to_date=date(year, 12, 31))
    return account, bill_and_approve(database, licence.id, as_of=date(year, 1, 1), now=instant(f"{year}-01-01 00:00"))


def deliveries(database) -> list[Delivery]:
    with database.read() as session:
        return list(session.exec(select(Delivery).order_by(Delivery.id)).all())


def read_eml(path: Path) -> EmailMessage:
    return message_from_bytes(path.read_bytes(), policy=default_policy)


def outbox_numbers(folder: Path) -> list[str]:
    """The document numbers of the mails in an outbox folder, whose files are named
    ``<number>.<16 hex digits of the Message-ID's hash>.eml``."""
    names = sorted(path.name for path in folder.glob("*.eml"))
    assert all(re.fullmatch(r"(INV|CN)-\d{4}-\d{6}\.[0-9a-f]{16}\.eml", name) for name in names), names
    return [name.partition(".")[0] for name in names]


def outbox_mail(folder: Path, number: str) -> EmailMessage:
    (path,) = folder.glob(f"{number}.*.eml")
    return read_eml(path)
