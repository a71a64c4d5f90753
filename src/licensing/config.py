"""Settings, read from the environment (prefix ``LICENSING_``)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


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
    # Where members pay (printed on invoices with each invoice's RF payment reference, and for EUR
    # as an EPC QR code); empty: documents carry no payment instructions. Checked with schwifty.
    operator_iban: str = ""
    operator_bic: str = ""
    # SEPA creditor identifier (e.g. DE98ZZZ09999999999): needed, with the IBAN and BIC, to collect
    # invoices by direct debit (pain.008).
    operator_creditor_id: str = ""
    # Mail of approved documents: smtp://user:password@host:587?starttls=true or
    # smtps://user:password@host:465; empty: no SMTP, each mail is written as <number>.<hash>.eml to
    # mail_outbox.
    smtp_url: str = ""
    mail_from: str = ""  # the From header; empty: "<operator_name> <operator_email or invoices@example.invalid>"
    mail_outbox: str = "./outbox"  # where mails go when smtp_url is empty
    # In the browser: the address members reach the portal at (the sign-in links mailed to them
    # start with it), and whether session cookies are Secure (sent over HTTPS only; browsers also
    # send them to http://127.0.0.1 and http://localhost). Set false only to try the console over
    # plain HTTP on another host of a private network.
    public_url: str = "http://127.0.0.1:8000"
    secure_cookies: bool = True
    mail_max_attempts: int = 10  # failed attempts before a delivery is given up (status failed)
    webhook_max_attempts: int = 10  # failed attempts before a webhook delivery is given up (status failed)
    # Webhook URLs may not reach loopback, private, link-local, unique-local, unspecified or
    # multicast addresses unless they fall in one of these networks (comma-separated CIDRs).
    webhook_allowed_networks: str = ""
    # The hard wall-clock deadline of one webhook delivery (connect, send, read the answer).
    webhook_deadline_seconds: Decimal = Decimal(10)
    # Mail approved documents as soon as the approval commits (else only the scheduler's
    # deliveries job sends them, every minute).
    mail_on_approval: bool = True
    # Expiry notices: a credits.expiring event this many days before credits expire.
    expiry_notice_days: list[int] = [30, 7]
    # Payment reminders: the payment-reminders job mails an overdue invoice once at each of these
    # days past its due date (JSON list, e.g. LICENSING_REMINDER_DAYS='[7, 14, 30]'; [] mails none).
    reminder_days: list[int] = [7, 14, 30]
    # Refuse consumptions and holds (409 account_overdue) for an account with an invoice this many
    # days past its due date with something still due; unset: never.
    block_consumption_after_days: int | None = None
    # Scheduled jobs: cron expressions (operator's time zone) replacing the defaults, as JSON,
    # e.g. LICENSING_SCHEDULE='{"billing-run": "0 2 * * *"}' (see licensing.scheduler.JOBS).
    schedule: dict[str, str] = {}
    # Where the document templates are (default: the package's own, licensing/templates/).
    templates_dir: str = ""
    # The DATEV export of the journal (Buchungsstapel header): the tax adviser's number
    # (Beraternummer), the client's number (Mandantennummer), the first month of the fiscal year.
    datev_consultant_number: str = "1001"
    datev_client_number: str = "1"
    fiscal_year_start_month: int = 1
    # Reverse charge (VAT category AE) for business buyers with a VAT id in another EU country.
    reverse_charge: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    # Every setting is checked when it is read, so that a command refuses to start on a bad one
    # (with the setting named) instead of failing later, in the middle of a billing run.

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if not value or value != value.strip() or value.startswith(("/", ".")) or ".." in value or "\\" in value:
            raise ValueError(f"{value!r} is not a time zone name (an IANA name such as Europe/Berlin or UTC)")
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"{value!r} is not a time zone name (an IANA name such as Europe/Berlin or UTC)") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            backend = make_url(value.replace("postgres://", "postgresql://", 1)).get_backend_name()
        except ArgumentError:
            raise ValueError(f"{value!r} is not a database URL (sqlite:///path or postgresql://user@host/name)") from None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError(f"{backend!r} databases are not supported: use sqlite:///path or postgresql://user@host/name")
        return value

    @field_validator("invoice_lead_days", "payment_terms_days")
    @classmethod
    def _days(cls, value: int) -> int:
        if not 0 <= value <= 3650:
            raise ValueError("must be a number of days from 0 to 3650")
        return value

    @field_validator("hold_deadline_hours")
    @classmethod
    def _hours(cls, value: int) -> int:
        if not 0 <= value <= 24 * 366:
            raise ValueError("must be a number of hours from 0 to 8784")
        return value

    @field_validator("mail_max_attempts", "webhook_max_attempts")
    @classmethod
    def _attempts(cls, value: int) -> int:
        if not 1 <= value <= 1000:
            raise ValueError("must be from 1 to 1000")
        return value

    @field_validator("fiscal_year_start_month")
    @classmethod
    def _month(cls, value: int) -> int:
        if not 1 <= value <= 12:
            raise ValueError("must be a month from 1 to 12")
        return value

    @field_validator("datev_consultant_number")
    @classmethod
    def _datev_consultant(cls, value: str) -> str:
        if not (value.isascii() and value.isdigit()) or len(value) > 7:
            raise ValueError("must be up to 7 digits (DATEV Beraternummer)")
        return value

    @field_validator("datev_client_number")
    @classmethod
    def _datev_client(cls, value: str) -> str:
        if not (value.isascii() and value.isdigit()) or len(value) > 5:
            raise ValueError("must be up to 5 digits (DATEV Mandantennummer)")
        return value

    @field_validator("reminder_days")
    @classmethod
    def _reminder_days(cls, value: list[int]) -> list[int]:
        if any(not 1 <= days <= 3650 for days in value):
            raise ValueError("each stage must be a number of days from 1 to 3650")
        return sorted(set(value))

    @field_validator("block_consumption_after_days")
    @classmethod
    def _block_after(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value <= 3650:
            raise ValueError("must be a number of days from 0 to 3650")
        return value

    @field_validator("expiry_notice_days")
    @classmethod
    def _horizons(cls, value: list[int]) -> list[int]:
        if any(not 1 <= days <= 3650 for days in value):
            raise ValueError("each horizon must be a number of days from 1 to 3650")
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: dict[str, str]) -> dict[str, str]:
        for name, expression in value.items():
            if not isinstance(expression, str) or not croniter.is_valid(expression):
                raise ValueError(f"the schedule of job {name!r} is not a cron expression: {expression!r}")
        return value

    @field_validator("operator_country")
    @classmethod
    def _country(cls, value: str) -> str:
        if value and not (len(value) == 2 and value.isascii() and value.isalpha() and value.isupper()):
            raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. FR)")
        return value

    @field_validator("operator_iban")
    @classmethod
    def _iban(cls, value: str) -> str:
        if not value.strip():
            return ""
        from schwifty import IBAN
        from schwifty.exceptions import SchwiftyException

        try:
            return IBAN(value).compact
        except SchwiftyException as error:
            raise ValueError(f"is not a valid IBAN ({error})") from None

    @field_validator("operator_bic")
    @classmethod
    def _bic(cls, value: str) -> str:
        if not value.strip():
            return ""
        from schwifty import BIC
        from schwifty.exceptions import SchwiftyException

        try:
            return BIC(value).compact
        except SchwiftyException as error:
            raise ValueError(f"is not a valid BIC ({error})") from None

    @field_validator("operator_creditor_id")
    @classmethod
    def _creditor_id(cls, value: str) -> str:
        compact = "".join(value.split()).upper()
        if compact and not is_creditor_identifier(compact):
            raise ValueError(f"{value!r} is not a SEPA creditor identifier (e.g. DE98ZZZ09999999999)")
        return compact

    @field_validator("smtp_url")
    @classmethod
    def _smtp(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
                raise ValueError("must be smtp://user:password@host:587?starttls=true or smtps://user:password@host:465")
            try:
                parts.port  # noqa: B018 - a port that is not a number raises here
            except ValueError:
                raise ValueError("its port is not a number") from None
        return value

    @field_validator("operator_logo", "templates_dir")
    @classmethod
    def _existing_path(cls, value: str) -> str:
        if value and not Path(value).exists():
            raise ValueError(f"{value!r} does not exist")
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not a network in CIDR notation (e.g. 10.0.0.0/8 or fd00::/8)") from None
        return value

    @field_validator("webhook_deadline_seconds")
    @classmethod
    def _deadline(cls, value: Decimal) -> Decimal:
        if not 0 < value <= 300:
            raise ValueError("must be a number of seconds greater than 0 and at most 300")
        return value

    @property
    def webhook_deadline(self) -> timedelta:
        """``webhook_deadline_seconds`` as a duration (to the microsecond)."""
        return timedelta(microseconds=int(self.webhook_deadline_seconds * 1_000_000))


def setting_errors(error: ValidationError) -> list[str]:
    """One line per bad setting, naming its environment variable."""
    lines = []
    for item in error.errors():
        name = "LICENSING_" + "_".join(str(part) for part in item.get("loc", ())[:1]).upper()
        message = item.get("msg", "is not valid").removeprefix("Value error, ")
        lines.append(f"{name}: {message}")
    return lines


@lru_cache
def get_settings() -> Settings:
    return Settings()


def is_creditor_identifier(text: str) -> bool:
    """A SEPA creditor identifier: country code, two check digits (ISO 7064 MOD 97-10 over the
    national identifier, the country code and "00", letters as numbers), a 3-character business
    code (not part of the check), and the national identifier (up to 28 characters)."""
    if not (8 <= len(text) <= 35 and text.isascii() and text.isalnum() and text[:2].isalpha() and text[2:4].isdigit()):
        return False
    national = text[7:]
    if not national:
        return False
    digits = "".join(str(int(character, 36)) for character in national + text[:2] + text[2:4])
    return int(digits) % 97 == 1
