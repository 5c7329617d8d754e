"""The short code as people type it (server.inspection.short_codes): digits count, spaces and
dashes between them are dropped, anything else is named."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.inspection.short_codes import ShortCodeError, is_separator, parse_short_code

SEPARATORS = " -\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d\u3000\u00a0\t"


@given(
    digits=st.text("0123456789", min_size=6, max_size=6),
    gaps=st.lists(st.text(SEPARATORS, max_size=3), min_size=7, max_size=7),
    wide=st.lists(st.booleans(), min_size=6, max_size=6),
)
def test_any_spacing_and_dashing_of_six_digits_reads_as_those_digits(
    digits: str, gaps: list[str], wide: list[bool]
) -> None:
    shown = [chr(0xFF10 + int(d)) if w else d for d, w in zip(digits, wide, strict=True)]
    typed = gaps[0] + "".join(d + gap for d, gap in zip(shown, gaps[1:], strict=True))
    assert parse_short_code(typed) == digits


@pytest.mark.parametrize("char", list(SEPARATORS))
def test_spaces_and_dashes_of_every_kind_are_separators(char: str) -> None:
    assert is_separator(char)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("26935", "must have 6 digits, not 5"),
        ("269 3541", "must have 6 digits, not 7"),
        ("269_354", "'_' (LOW LINE)"),
        ("269\u00b2354", "SUPERSCRIPT TWO"),  # not a digit people type for a code
        ("269\u0000354", "U+0000"),
        ("9" * 65, "longer than 64"),
    ],
)
def test_what_is_not_a_code_is_named(typed: str, message: str) -> None:
    with pytest.raises(ShortCodeError, match=re.escape(message)):
        parse_short_code(typed)
