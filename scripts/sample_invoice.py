"""Render the sample invoice shown in the README: docs/sample-invoice.pdf and .png (page 1).

Run with `.venv/bin/python scripts/sample_invoice.py`; it builds a small account in a temporary
SQLite database through the real use cases, so the sample is what the engine sends.
With `--void` the same invoice is voided (with a reason) and page 1 of its PDF is written to
docs/void-invoice.png instead.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The sample's bank details (a well-known example account, not a real operator's), so that the
# invoice shows its payment instructions and EPC QR code; the environment may say otherwise.
SAMPLE_BANK = {"LICENSING_OPERATOR_IBAN": "FR1420041010050500013M02606", "LICENSING_OPERATOR_BIC": "PSSTFRPPPAR"}

from licensing.accounts.services import create_account, create_business_unit  # noqa: E402
from licensing.catalog.services import create_product  # noqa: E402
from licensing.db import Database  # noqa: E402
from licensing.documents.service import load_document, pdf_of  # noqa: E402
from licensing.invoicing.billing import run_billing  # noqa: E402
from licensing.invoicing.credit_notes import void_invoice  # noqa: E402
from licensing.licences.services import add_service, create_licence  # noqa: E402
from licensing.migrate import upgrade  # noqa: E402

AT = datetime(2027, 3, 16, 8, 0, tzinfo=UTC)
VOID_REASON = "Issued to the wrong department: replaced by invoice INV-2027-000002."


def bill_sample(database: Database, *, void: bool = False) -> None:
    """The sample space in the migrated ``database``: St. Mary's Hospital with desks, a mailbox
    and meeting credits for Cardiology; invoice 1 is its first month, approved (void when asked).
    ``scripts/benchmark.py`` renders the same invoice."""
    with database.write() as session:
        account = create_account(
            session, name="St. Mary's Hospital", email="accounts@stmarys.example", currency="EUR",
            address="Finance department\n12 Harbour Road\n75011 Paris", country="FR", tax_id="FR40123456824", at=AT,
        )
        cardiology = create_business_unit(session, account.id, name="Cardiology", at=AT)
        desk = create_product(
            session, kind="service", name="Dedicated desk, 2nd floor", price=Decimal("310.00"), currency="EUR", tax_rate=Decimal(20), at=AT
        )
        mailbox = create_product(
            session, kind="service", name="Business address and mailbox", price=Decimal("45.00"), currency="EUR", tax_rate=Decimal(20), at=AT
        )
        pack = create_product(
            session,
            kind="credit_pack",
            name="Meeting room credits",
            price=Decimal("100.00"),
            currency="EUR",
            tax_rate=Decimal(20),
            credits=Decimal(10),
            lifetime="P2M",
            at=AT,
        )
        licence = create_licence(session, account_id=account.id, start_date=date(2027, 3, 16), end_date=date(2028, 3, 15), auto_renew=True, at=AT)
        add_service(session, licence.id, product_id=desk.id, schedule="monthly", quantity=Decimal(2), at=AT)
        add_service(session, licence.id, product_id=mailbox.id, schedule="monthly", quantity=Decimal(1), at=AT)
        add_service(session, licence.id, product_id=pack.id, schedule="monthly", quantity=Decimal(3), business_unit_id=cardiology.id, at=AT)
    run_billing(database, as_of=date(2027, 3, 16), now=AT, actor="operator", approve_all=True)
    if void:
        with database.write() as session:
            void_invoice(session, 1, reason=VOID_REASON, now=AT + timedelta(days=2), actor="operator")


def main(void: bool = False) -> None:
    from licensing.config import get_settings
    from tests.pdf_pages import page_png

    for name, value in SAMPLE_BANK.items():
        os.environ.setdefault(name, value)
    get_settings.cache_clear()

    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{directory}/sample.db"
        upgrade(url)
        database = Database(url)
        bill_sample(database, void=void)
        pdf = pdf_of(load_document(database, "invoice", 1))
        database.dispose()
    if void:
        page_png(pdf, ROOT / "docs" / "void-invoice.png", resolution=70)
        print("wrote docs/void-invoice.png")
        return
    (ROOT / "docs" / "sample-invoice.pdf").write_bytes(pdf)
    page_png(pdf, ROOT / "docs" / "sample-invoice.png", resolution=90)
    print("wrote docs/sample-invoice.pdf and docs/sample-invoice.png")


if __name__ == "__main__":
    main(void="--void" in sys.argv[1:])
