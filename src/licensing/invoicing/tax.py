"""How an account is taxed (SPEC 8): VAT categories of EN 16931 (UNTDID 5305)."""

from __future__ import annotations

from licensing.config import Settings

STANDARD, ZERO_RATED, EXEMPT, REVERSE_CHARGE = "S", "Z", "E", "AE"

EU_COUNTRIES = frozenset([
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
    "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
])


def tax_treatment(account, settings: Settings) -> str:
    """``E`` for a tax-exempt account; ``AE`` (reverse charge) for a business buyer with a VAT
    id in another EU country when the operator enables reverse charge; else ``S`` (each line's
    own rate, ``Z`` when that rate is zero). ``account`` needs ``tax_exempt``, ``tax_id`` and
    ``country``."""
    if account.tax_exempt:
        return EXEMPT
    seller_country = (settings.operator_country or "").upper()
    if (
        settings.reverse_charge and account.tax_id and account.country in EU_COUNTRIES
        and seller_country in EU_COUNTRIES and account.country != seller_country
    ):
        return REVERSE_CHARGE
    return STANDARD


def charges_no_tax(account, settings: Settings) -> bool:
    """Whether the account's lines are billed at a rate of 0 whatever the product's rate."""
    return tax_treatment(account, settings) in (EXEMPT, REVERSE_CHARGE)
