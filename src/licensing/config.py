"""Settings, read from the environment (prefix ``LICENSING_``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LICENSING_", extra="ignore")

    database_url: str = "sqlite:///./licensing.db"
    timezone: str = "UTC"
    invoice_lead_days: int = 0
    payment_terms_days: int = 14
    # Holds not captured or released by their deadline (event_at + these hours, unless the hold
    # names its own) are released, or captured, as this policy says.
    hold_deadline_hours: int = 24
    hold_deadline_policy: Literal["release", "capture"] = "release"
    # The seller on invoices and e-invoices (EN 16931 needs name, address, country and VAT id):
    # demo values until the operator sets their own.
    operator_name: str = "Licensing Demo Workspace"
    operator_address: str = "1 Example Street\n75001 Paris"
    operator_country: str = "FR"
    operator_tax_id: str = "FR00123456789"
    operator_email: str = ""
    operator_logo: str = ""  # path of a PNG or SVG logo shown on documents
    # Mail of approved documents: smtp://user:password@host:587?starttls=true or
    # smtps://user:password@host:465; empty: no SMTP, each mail is written as <number>.eml to
    # mail_outbox.
    smtp_url: str = ""
    mail_from: str = ""  # the From header; empty: "<operator_name> <operator_email or invoices@example.invalid>"
    mail_outbox: str = "./outbox"  # where mails go when smtp_url is empty
    mail_max_attempts: int = 10  # failed attempts before a delivery is given up (status failed)
    webhook_max_attempts: int = 10  # failed attempts before a webhook delivery is given up (status failed)
    # Mail approved documents as soon as the approval commits (else only the scheduler's
    # deliveries job sends them, every minute).
    mail_on_approval: bool = True
    # Expiry notices: a credits.expiring event this many days before credits expire.
    expiry_notice_days: list[int] = [30, 7]
    # Scheduled jobs: cron expressions (operator's time zone) replacing the defaults, as JSON,
    # e.g. LICENSING_SCHEDULE='{"billing-run": "0 2 * * *"}' (see licensing.scheduler.JOBS).
    schedule: dict[str, str] = {}
    # Where the document templates are (default: the project's templates/ folder).
    templates_dir: str = ""
    # Reverse charge (VAT category AE) for business buyers with a VAT id in another EU country.
    reverse_charge: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@lru_cache
def get_settings() -> Settings:
    return Settings()
