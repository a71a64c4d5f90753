"""Text that documents, mails, XML and logs can carry.

Names, e-mail addresses, references and tax ids are one line; addresses, descriptions and
reasons may hold newlines and tabs. Neither may hold other control characters (C0, DEL, C1),
NUL, noncharacters (U+FDD0-U+FDEF, U+xxFFFE, U+xxFFFF) or lone surrogates: XML 1.0 cannot
carry them, PostgreSQL refuses NUL, and in a mail header or a log line they forge structure.
"""

from __future__ import annotations

import unicodedata

LINES = "\n\t"  # what multi-line text may hold besides printable characters


def unprintable(value: str, allowed: str = "") -> str | None:
    """Why ``value`` is refused (the first character that may not stand in it), or None."""
    for position, character in enumerate(value):
        if character in allowed:
            continue
        code = ord(character)
        if unicodedata.category(character) in ("Cc", "Cs") or 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE:
            return f"must not contain the control character or noncharacter U+{code:04X} (at position {position + 1})"
    return None
