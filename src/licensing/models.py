"""Every table, imported in one place so that ``SQLModel.metadata`` knows them all (Alembic)."""

from licensing.accounts.models import Account, BusinessUnit, Member
from licensing.auth.models import ApiKey, IdempotencyRecord
from licensing.catalog.models import CreditPrice, Product
from licensing.credits.models import Consumption, Grant, LedgerEntry
from licensing.invoicing.models import Invoice, InvoiceLine, NumberSeries
from licensing.licences.models import ContractService, Licence
from licensing.outbox import Event

__all__ = [
    "Account", "ApiKey", "BusinessUnit", "Consumption", "ContractService", "CreditPrice", "Event",
    "Grant", "IdempotencyRecord", "Invoice", "InvoiceLine", "LedgerEntry", "Licence", "Member",
    "NumberSeries", "Product",
]
