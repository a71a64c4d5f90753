"""Business failures, one class per failure, each with a stable machine-readable code.

The API maps ``code`` to an HTTP status in one handler; the services never know about HTTP.
"""

from __future__ import annotations

from typing import Any


class LicensingError(Exception):
    code = "licensing_error"
    title = "Request refused"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class ValidationFailed(LicensingError):
    code = "validation_error"
    title = "Invalid input"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        errors = extra.pop("errors", None) or ([{"field": field, "message": detail}] if field else [])
        super().__init__(detail, errors=errors, **extra)


class NotFound(LicensingError):
    code = "not_found"
    title = "Not found"


class UnknownReference(LicensingError):
    code = "unknown_reference"
    title = "Unknown reference"


class InsufficientCredits(LicensingError):
    code = "insufficient_credits"
    title = "Insufficient credits"


class InvoiceNotDraft(LicensingError):
    code = "invoice_not_draft"
    title = "Invoice is not in the required state"


class CurrencyMismatch(LicensingError):
    code = "currency_mismatch"
    title = "Currency mismatch"


class IdempotencyConflict(LicensingError):
    code = "idempotency_conflict"
    title = "Idempotency key reused with another request"


class ConsumptionReversed(LicensingError):
    code = "consumption_reversed"
    title = "Consumption already reversed"


class Conflict(LicensingError):
    code = "conflict"
    title = "Conflict"


class HoldNotOpen(LicensingError):
    code = "hold_not_open"
    title = "Hold already captured or released"


class CreditsAlreadyConsumed(LicensingError):
    code = "credits_already_consumed"
    title = "Credits already consumed"


class CreditNoteNotDraft(LicensingError):
    code = "credit_note_not_draft"
    title = "Credit note is not in the required state"


class EInvoiceUnavailable(LicensingError):
    code = "einvoice_unavailable"
    title = "The document cannot be an EN 16931 e-invoice"


class WebhookUrlForbidden(LicensingError):
    code = "webhook_url_forbidden"
    title = "The webhook URL may not be reached from here"


class LicenceAlreadyBilled(LicensingError):
    code = "licence_already_billed"
    title = "The licence has billed periods that this change would bill again"


class ServiceAlreadyBilled(LicensingError):
    code = "service_already_billed"
    title = "The contract service has billed lines that this change would bill again"


class AccountOverdue(LicensingError):
    code = "account_overdue"
    title = "The account has an invoice too far overdue"


class DatabaseUnavailable(LicensingError):
    code = "database_unavailable"
    title = "The database cannot be reached"
