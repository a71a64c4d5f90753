"""ISO 11649 structured creditor references ("RF references"), the payment reference printed on
an invoice and quoted by a payer's bank.

``RF`` + two check digits + the reference (1-21 letters and digits). The check digits make the
whole, read as ISO 7064 MOD 97-10 (as an IBAN is: the first four characters moved to the end,
letters as numbers A=10 ... Z=35), leave 1 when divided by 97. An invoice's reference is its
number without separators (``INV-2027-000001`` -> ``RF..INV2027000001``): unique per invoice,
and the invoice number a bank statement shows is found in it again.
"""

from __future__ import annotations

MAX_REFERENCE = 21


def _as_number(text: str) -> int:
    return int("".join(str(int(character, 36)) for character in text))


def creditor_reference(reference: str) -> str:
    """``RF`` + check digits + ``reference`` (separators and spaces dropped, letters upper case)."""
    body = "".join(character for character in reference.upper() if character.isalnum())
    if not body or len(body) > MAX_REFERENCE or not body.isascii():
        raise ValueError(f"an RF reference holds 1 to {MAX_REFERENCE} ASCII letters and digits, not {reference!r}")
    check = 98 - _as_number(body + "RF00") % 97
    return f"RF{check:02d}{body}"


def is_creditor_reference(text: str) -> bool:
    """Whether ``text`` (spaces allowed, as printed in groups of four) is a valid RF reference."""
    compact = "".join(text.split()).upper()
    if not (5 <= len(compact) <= 4 + MAX_REFERENCE and compact.startswith("RF") and compact[2:4].isdigit()):
        return False
    if not compact.isascii() or not compact[4:].isalnum():
        return False
    return _as_number(compact[4:] + compact[:4]) % 97 == 1


def printed(reference: str) -> str:
    """In groups of four, as documents print it: ``RF18 5390 0754 7034``."""
    return " ".join(reference[index:index + 4] for index in range(0, len(reference), 4))


def invoice_reference(number: str | None) -> str | None:
    """The payment reference of an invoice with this number (none before it has one)."""
    return creditor_reference(number) if number else None
