"""Every table, imported in one place so that ``SQLModel.metadata`` knows them all (Alembic)."""

from licensing.accounts.models import Account, BusinessUnit, Member
from licensing.auth.models import ApiKey, IdempotencyRecord
from licensing.books.models import BooksSettings, JournalEntry, JournalPosting
from licensing.catalog.models import CreditPrice, Product
from licensing.credits.models import (
    Adjustment,
    Consumption,
    ExpiryNotice,
    Grant,
    Hold,
    LedgerEntry,
    Transfer,
)
from licensing.documents.models import Delivery, PaymentReminder
from licensing.events import Event, OutboxCursor
from licensing.invoicing.models import (
    CreditNote,
    CreditNoteLine,
    DirectDebit,
    DirectDebitItem,
    Invoice,
    InvoiceLine,
    Mandate,
    NumberSeries,
    Payment,
    PaymentAllocation,
    StatementEntry,
)
from licensing.licences.models import ContractService, Licence
from licensing.scheduler.models import JobRun
from licensing.web.models import BrowserSession, ConsoleUser, SignInLink
from licensing.webhooks.models import Webhook, WebhookDelivery

__all__ = [
    "Account",
    "Adjustment",
    "ApiKey",
    "BooksSettings",
    "BrowserSession",
    "BusinessUnit",
    "ConsoleUser",
    "Consumption",
    "ContractService",
    "CreditNote",
    "CreditNoteLine",
    "CreditPrice",
    "Delivery",
    "DirectDebit",
    "DirectDebitItem",
    "Event",
    "ExpiryNotice",
    "Grant",
    "Hold",
    "IdempotencyRecord",
    "Invoice",
    "InvoiceLine",
    "JobRun",
    "JournalEntry",
    "JournalPosting",
    "LedgerEntry",
    "Licence",
    "Mandate",
    "Member",
    "NumberSeries",
    "OutboxCursor",
    "Payment",
    "PaymentAllocation",
    "PaymentReminder",
    "Product",
    "SignInLink",
    "StatementEntry",
    "Transfer",
    "Webhook",
    "WebhookDelivery",
]
