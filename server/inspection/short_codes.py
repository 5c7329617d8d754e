"""The short code an applicant types at /j, read as people write it (pure).

``269 354``, ``269-354``, ``269—354`` and the same in full-width digits are all the code 269354:
digits (ASCII or full-width) count, spaces and dashes between them are what people put there
and are dropped, anything else is refused naming the character. web/js/code.js reads the field
by the same rules.
"""

from __future__ import annotations

import unicodedata

SHORT_CODE_DIGITS = 6
MAX_TYPED_LENGTH = 64  # a code as typed, separators included
_FULL_WIDTH_ZERO = 0xFF10
_MINUS_SIGN = "\u2212"


class ShortCodeError(ValueError):
    """The text is not a short code; the message says why, for the applicant's page."""


def _digit(char: str) -> str | None:
    if "0" <= char <= "9":
        return char
    if _FULL_WIDTH_ZERO <= ord(char) <= _FULL_WIDTH_ZERO + 9:
        return str(ord(char) - _FULL_WIDTH_ZERO)
    return None


def is_separator(char: str) -> bool:
    """A space of any width or a dash of any kind (hyphen, en and em dash, full-width
    hyphen-minus, minus sign): what people put between groups of digits."""
    return char.isspace() or unicodedata.category(char) == "Pd" or char == _MINUS_SIGN


def parse_short_code(typed: str) -> str:
    """The six ASCII digits of ``typed``, or ``ShortCodeError`` naming what is wrong."""
    if len(typed) > MAX_TYPED_LENGTH:
        raise ShortCodeError(f"is longer than {MAX_TYPED_LENGTH} characters")
    digits = []
    for char in typed:
        digit = _digit(char)
        if digit is not None:
            digits.append(digit)
        elif not is_separator(char):
            name = unicodedata.name(char, f"U+{ord(char):04X}")
            raise ShortCodeError(f"holds {char!r} ({name}); only digits, spaces and dashes count")
    if len(digits) != SHORT_CODE_DIGITS:
        raise ShortCodeError(f"must have {SHORT_CODE_DIGITS} digits, not {len(digits)}")
    return "".join(digits)
