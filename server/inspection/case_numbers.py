# ruff: noqa: RUF002 - Chinese document numbers use full-width brackets on purpose
"""A case's number as the authority writes it, and the archive key (case ID) derived from it.

Permit offices number their files in their own script: ``榆阳食经〔2026〕0142号``. The number is
kept exactly as written (NFC-normalised, trimmed) and shown to people; the archive's object keys
and the chain's ``case_id`` need key-safe ASCII (``recorder.layout.check_case_id``). A number
that already is a valid case ID is its own case ID; any other gets one derived from it
(docs/archive.md, "Case numbers"): ``c-`` + the ASCII letters and digits it holds + ``-`` + 12
hex digits of SHA-256 over its UTF-8 bytes, so ``c-2026-0142-…`` for the number above. Pure.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from recorder import layout

MAX_CASE_NUMBER = 64  # characters (code points) of the NFC form
SLUG_MAX = 40
DIGEST_HEX = 12
# Control, format (zero-width, bidi overrides), surrogate, private-use and unassigned code
# points, and line or paragraph separators: a number holds none of them.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ASCII_RUN = re.compile(r"[A-Za-z0-9]+")


class CaseNumberError(ValueError):
    """A number that cannot be a case's: the message says why, for the form and the API;
    ``limit`` is the maximum length when the number is too long."""

    def __init__(self, reason: str, limit: int | None = None) -> None:
        super().__init__(reason)
        self.limit = limit


def is_case_id(text: str) -> bool:
    """Whether ``text`` already is a valid archive case ID (``recorder/layout.py``)."""
    return bool(layout.CASE_ID_PATTERN.fullmatch(text)) and ".." not in text


def normalise_case_number(value: str) -> str:
    """The number as kept: NFC, surrounding white space removed; refused if empty, longer than
    ``MAX_CASE_NUMBER`` characters or holding a control or invisible character."""
    number = unicodedata.normalize("NFC", value).strip()
    if not number:
        raise CaseNumberError("must not be empty")
    if len(number) > MAX_CASE_NUMBER:
        raise CaseNumberError(
            f"must be at most {MAX_CASE_NUMBER} characters (it has {len(number)})",
            MAX_CASE_NUMBER,
        )
    for position, char in enumerate(number, 1):
        if unicodedata.category(char) in REFUSED_CATEGORIES:
            raise CaseNumberError(
                f"must not hold control or invisible characters (U+{ord(char):04X} at"
                f" character {position})"
            )
    return number


def derived_case_id(number: str) -> str:
    """The case ID of an already normalised ``number``: itself when it is a valid case ID,
    else ``c-{slug}-{digest}`` (``c-{digest}`` when it holds no ASCII letter or digit)."""
    if is_case_id(number):
        return number
    runs = _ASCII_RUN.findall(unicodedata.normalize("NFKC", number))
    slug = "-".join(runs).lower()[:SLUG_MAX].rstrip("-")
    digest = hashlib.sha256(number.encode("utf-8")).hexdigest()[:DIGEST_HEX]
    return f"c-{slug}-{digest}" if slug else f"c-{digest}"


@dataclass(frozen=True, slots=True)
class CaseNumber:
    """A validated case number and the case ID it is filed under."""

    number: str
    case_id: str

    @classmethod
    def parse(cls, value: str) -> CaseNumber:
        number = normalise_case_number(value)
        return cls(number, derived_case_id(number))
