"""The chart of accounts: which ledger account (code and name) each role posts to.

Entries post to *roles* (``receivables``, ``deferred_credit_revenue``, ...); the chart maps each
role, and VAT payable per rate, to the operator's account codes when the journal is read or
exported, so that a corrected mapping re-labels the whole journal at once. Presets: ``skr03``
and ``skr04`` (the DATEV standard charts used in Germany) and ``plain`` (a short English chart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ROLES: dict[str, str] = {
    "receivables": "What accounts owe on approved invoices (gross)",
    "bank": "Money received by bank transfer, direct debit or another method",
    "card_clearing": "Card payments on their way to the bank",
    "cash": "Cash received",
    "unapplied_cash": "Money received beyond what an invoice asked, kept for the account's next invoices",
    "vat_payable": "VAT charged on invoices (one account per rate, see vat_payable)",
    "deferred_credit_revenue": "Credits sold and not yet used or expired (a liability)",
    "credits_awaiting_payment": "Credit packs invoiced that grant their credits on payment, not paid yet",
    "services_revenue": "Plain services invoiced",
    "credits_used_revenue": "Credits used by bookings and deductions",
    "breakage_revenue": "Credits that expired unused or were cut by a rollover cap",
    "credit_note_allowances": "Money credited back beyond the value of the credits a credit note or void took back",
}

# The method of a payment -> the role its money posts to.
PAYMENT_ROLES = {"bank_transfer": "bank", "direct_debit": "bank", "other": "bank", "card": "card_clearing", "cash": "cash"}

# Where each role sits in a balance sheet or income statement (beancount's root accounts).
ROLE_TYPES: dict[str, str] = {
    "receivables": "Assets", "bank": "Assets", "card_clearing": "Assets", "cash": "Assets",
    "unapplied_cash": "Liabilities", "vat_payable": "Liabilities", "deferred_credit_revenue": "Liabilities",
    "credits_awaiting_payment": "Liabilities",
    "services_revenue": "Income", "credits_used_revenue": "Income", "breakage_revenue": "Income", "credit_note_allowances": "Income",
}


@dataclass(frozen=True, slots=True)
class LedgerAccount:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class Chart:
    """Role -> account; VAT payable per rate (``"19.00"``), with ``accounts["vat_payable"]`` for
    rates not listed; DATEV tax keys (BU-Schlüssel) per rate for revenue postings."""

    preset: str
    accounts: dict[str, LedgerAccount]
    vat_payable: dict[str, LedgerAccount] = field(default_factory=dict)
    tax_keys: dict[str, str] = field(default_factory=dict)

    def account(self, role: str, tax_rate: Decimal | None = None) -> LedgerAccount:
        if role == "vat_payable" and tax_rate is not None:
            found = self.vat_payable.get(rate_key(tax_rate))
            if found is not None:
                return found
        return self.accounts[role]

    def tax_key(self, tax_rate: Decimal | None) -> str:
        """The DATEV BU-Schlüssel of a revenue posting at ``tax_rate`` ('' for none)."""
        return "" if tax_rate is None else self.tax_keys.get(rate_key(tax_rate), "")

    def as_dict(self) -> dict:
        return {
            "preset": self.preset,
            "accounts": {role: {"code": a.code, "name": a.name} for role, a in self.accounts.items()},
            "vat_payable": {rate: {"code": a.code, "name": a.name} for rate, a in self.vat_payable.items()},
            "tax_keys": dict(self.tax_keys),
        }


def rate_key(tax_rate: Decimal) -> str:
    return f"{Decimal(tax_rate):.2f}"


def _chart(preset: str, accounts: dict[str, tuple[str, str]], vat: dict[str, tuple[str, str]], keys: dict[str, str]) -> Chart:
    return Chart(
        preset=preset,
        accounts={role: LedgerAccount(*accounts[role]) for role in ROLES},
        vat_payable={rate: LedgerAccount(*account) for rate, account in vat.items()},
        tax_keys=keys,
    )


# DATEV BU-Schlüssel for revenue: 3 = Umsatzsteuer 19 %, 2 = Umsatzsteuer 7 %.
_DATEV_KEYS = {"19.00": "3", "7.00": "2"}

PRESETS: dict[str, Chart] = {
    "plain": _chart("plain", {
        "receivables": ("1100", "Accounts receivable"),
        "bank": ("1200", "Bank"),
        "card_clearing": ("1210", "Card payments clearing"),
        "cash": ("1220", "Cash"),
        "unapplied_cash": ("2150", "Unapplied customer payments"),
        "vat_payable": ("2200", "VAT payable"),
        "deferred_credit_revenue": ("2400", "Deferred credit revenue"),
        "credits_awaiting_payment": ("2410", "Credit packs awaiting payment"),
        "services_revenue": ("4000", "Services revenue"),
        "credits_used_revenue": ("4100", "Credits used revenue"),
        "breakage_revenue": ("4200", "Breakage revenue"),
        "credit_note_allowances": ("4900", "Sales allowances"),
    }, {}, {}),
    "skr03": _chart("skr03", {
        "receivables": ("1400", "Forderungen aus Lieferungen und Leistungen"),
        "bank": ("1200", "Bank"),
        "card_clearing": ("1360", "Geldtransit"),
        "cash": ("1000", "Kasse"),
        "unapplied_cash": ("1710", "Erhaltene Anzahlungen"),
        "vat_payable": ("1770", "Umsatzsteuer"),
        "deferred_credit_revenue": ("0990", "Passive Rechnungsabgrenzung (Guthaben)"),
        "credits_awaiting_payment": ("0991", "Guthaben, auf Zahlung wartend"),
        "services_revenue": ("8400", "Erlöse 19 % USt"),
        "credits_used_revenue": ("8405", "Erlöse aus Guthabennutzung"),
        "breakage_revenue": ("8200", "Erlöse aus verfallenen Guthaben"),
        "credit_note_allowances": ("8700", "Erlösschmälerungen"),
    }, {"19.00": ("1776", "Umsatzsteuer 19 %"), "7.00": ("1771", "Umsatzsteuer 7 %")}, _DATEV_KEYS),
    "skr04": _chart("skr04", {
        "receivables": ("1200", "Forderungen aus Lieferungen und Leistungen"),
        "bank": ("1800", "Bank"),
        "card_clearing": ("1460", "Geldtransit"),
        "cash": ("1600", "Kasse"),
        "unapplied_cash": ("3250", "Erhaltene Anzahlungen"),
        "vat_payable": ("3800", "Umsatzsteuer"),
        "deferred_credit_revenue": ("3900", "Passive Rechnungsabgrenzung (Guthaben)"),
        "credits_awaiting_payment": ("3901", "Guthaben, auf Zahlung wartend"),
        "services_revenue": ("4400", "Erlöse 19 % USt"),
        "credits_used_revenue": ("4405", "Erlöse aus Guthabennutzung"),
        "breakage_revenue": ("4200", "Erlöse aus verfallenen Guthaben"),
        "credit_note_allowances": ("4700", "Erlösschmälerungen"),
    }, {"19.00": ("3806", "Umsatzsteuer 19 %"), "7.00": ("3801", "Umsatzsteuer 7 %")}, _DATEV_KEYS),
}
DEFAULT_PRESET = "plain"
