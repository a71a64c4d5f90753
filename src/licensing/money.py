"""Money and credits: always ``Decimal``, never float.

* ``D(value)`` builds a Decimal from ``str``, ``int`` or ``Decimal`` and refuses floats, whose
  binary rounding has no place in an accounting system.
* Money is rounded half-up to the currency's minor unit (ISO 4217: 2 places for EUR, 0 for JPY,
  3 for KWD), once, at the line.
* Credits carry two places; shares of credits are rounded *down* so that a pro-rated or
  taken-back share never exceeds what the exact fraction allows.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation

from licensing.errors import ValidationFailed

_ZERO_DECIMAL_CURRENCIES = {
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
}
_THREE_DECIMAL_CURRENCIES = {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}
_TWO_DECIMAL_CURRENCIES = {
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF", "CHF",
    "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR",
    "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF",
    "IDR", "ILS", "INR", "IRR", "JMD", "KES", "KGS", "KHR", "KPW", "KYD", "KZT", "LAK", "LBP",
    "LKR", "LRD", "LSL", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "QAR", "RON", "RSD", "RUB", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD",
    "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TOP",
    "TRY", "TTD", "TWD", "TZS", "UAH", "USD", "UYU", "UZS", "VES", "WST", "XCD", "YER", "ZAR",
    "ZMW", "ZWL",
}

CREDIT_PLACES = Decimal("0.01")
ZERO = Decimal("0")
# The most one line may charge (net, in its currency) or grant (credits), and one consumption
# take: far beyond any workspace's bill, and far within what the columns hold (scaled 64-bit
# integers: about 9.2 x 10^14 units of money, 9.2 x 10^16 credits), so that invoice totals of
# thousands of lines, taxes and balances never overflow them (docs/decisions.md).
MAX_LINE_AMOUNT = Decimal("100000000000")  # 10^11
MAX_LINE_CREDITS = Decimal("100000000000")


def check_line_size(quantity: Decimal, unit_price: Decimal, credits: Decimal | None, *, field: str = "quantity") -> None:
    """Refuse a line whose quantity x unit price, or quantity x credits, is beyond what a line
    may hold (``MAX_LINE_AMOUNT``, ``MAX_LINE_CREDITS``)."""
    if quantity * unit_price > MAX_LINE_AMOUNT:
        raise ValidationFailed(
            f"quantity x unit price comes to {quantity * unit_price:,.2f}, more than the {MAX_LINE_AMOUNT:,} a line may charge",
            field=field,
        )
    if credits is not None and quantity * credits > MAX_LINE_CREDITS:
        raise ValidationFailed(
            f"quantity x credits comes to {quantity * credits:,.2f}, more than the {MAX_LINE_CREDITS:,} credits a line may grant",
            field=field,
        )


def D(value: str | int | Decimal) -> Decimal:
    """A Decimal from a string, an int or a Decimal; floats and garbage are refused."""
    if isinstance(value, (bool, float)):
        raise TypeError("floats are not money: pass a str or a Decimal")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise ValidationFailed(f"{value!r} is not a decimal number") from None
    else:
        raise TypeError(f"cannot make a Decimal of {type(value).__name__}")
    if not result.is_finite():
        raise ValidationFailed(f"{value!r} is not a finite decimal number")
    return result


def is_currency(code: str) -> bool:
    return code in _TWO_DECIMAL_CURRENCIES or code in _ZERO_DECIMAL_CURRENCIES or code in _THREE_DECIMAL_CURRENCIES


def minor_unit(currency: str) -> int:
    """Number of decimal places of ``currency`` (ISO 4217)."""
    if currency in _ZERO_DECIMAL_CURRENCIES:
        return 0
    if currency in _THREE_DECIMAL_CURRENCIES:
        return 3
    if currency in _TWO_DECIMAL_CURRENCIES:
        return 2
    raise ValidationFailed(f"unknown currency {currency!r}", field="currency")


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round half-up to the currency's minor unit: 10.005 EUR -> 10.01, 100.5 JPY -> 101."""
    return amount.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP)


def round_credits_down(credits: Decimal) -> Decimal:
    """Two places, rounded down: a share of credits never exceeds its exact fraction."""
    return credits.quantize(CREDIT_PLACES, rounding=ROUND_DOWN)


def round_credits(credits: Decimal) -> Decimal:
    """Two places, half-up (credit-priced services: 1.333 hours x 2 credits = 2.67)."""
    return credits.quantize(CREDIT_PLACES, rounding=ROUND_HALF_UP)

