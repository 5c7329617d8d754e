# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""Case numbers as authorities write them, and the archive key derived from them (pure)."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder import layout
from server.inspection.case_numbers import (
    MAX_CASE_NUMBER,
    CaseNumber,
    CaseNumberError,
    derived_case_id,
    normalise_case_number,
)

# The vector of docs/archive.md ("Case numbers"): an auditor recomputes it by hand.
NUMBER = "榆阳食经〔2026〕0142号"
NUMBER_SHA256 = "615213f26a399e6b10e7b449ef8dc2bdfefa58c0ef13a4fb01ad5f381bc8ff16"
NUMBER_CASE_ID = "c-2026-0142-615213f26a39"


def _digest(number: str) -> str:
    return hashlib.sha256(number.encode("utf-8")).hexdigest()[:12]


def test_a_chinese_number_is_filed_under_its_ascii_parts_and_a_hash_of_its_bytes() -> None:
    assert hashlib.sha256(NUMBER.encode("utf-8")).hexdigest() == NUMBER_SHA256
    assert CaseNumber.parse(NUMBER) == CaseNumber(NUMBER, NUMBER_CASE_ID)
    assert CaseNumber.parse(f"\u3000 {NUMBER}\n") == CaseNumber(NUMBER, NUMBER_CASE_ID)


def test_a_number_that_is_a_valid_case_id_is_its_own_case_id() -> None:
    for number in ("HZ-2026.001_a", "7", "C" * 64, "case-1"):
        assert CaseNumber.parse(number) == CaseNumber(number, number)


@pytest.mark.parametrize(
    ("number", "case_id"),
    [
        ("许可证", "c-1b2ad79bbbda"),  # no ASCII letter or digit: the hash alone
        ("ABC 2026/01", "c-abc-2026-01-f3c555ca1744"),  # ASCII, but not a valid case ID
        ("a..b", f"c-a-b-{_digest('a..b')}"),
        ("x" * 50 + "号", f"c-{'x' * 40}-{_digest('x' * 50 + '号')}"),  # the slug is cut at 40
    ],
)
def test_derived_case_ids_follow_the_documented_rule(number: str, case_id: str) -> None:
    assert derived_case_id(number) == case_id


def test_full_width_digits_give_the_same_slug_but_another_case_id() -> None:
    full_width = "榆阳食经〔\uff12\uff10\uff12\uff16〕\uff10\uff11\uff14\uff12号"  # full width
    derived = derived_case_id(normalise_case_number(full_width))
    assert derived.startswith("c-2026-0142-")
    assert derived != NUMBER_CASE_ID  # another number as written: another case


def test_canonically_equivalent_spellings_are_one_number() -> None:
    decomposed = "Cafe\u0301 许可"
    composed = "Caf\u00e9 许可"
    assert normalise_case_number(decomposed) == composed
    assert derived_case_id(normalise_case_number(decomposed)) == derived_case_id(composed)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "must not be empty"),
        ("  \u3000 ", "must not be empty"),
        ("x" * (MAX_CASE_NUMBER + 1), f"at most {MAX_CASE_NUMBER} characters (it has 65)"),
        ("号" * 65, "(it has 65)"),
        ("A\x00B", "U+0000 at character 2"),
        ("A\tB", "U+0009"),
        ("许可\u200b证", "U+200B at character 3"),  # zero-width space
        ("许可\u202e证", "U+202E"),  # right-to-left override
        ("许可\u2028证", "U+2028"),
        ("许可\ue000证", "U+E000"),  # private use
    ],
)
def test_numbers_that_cannot_be_shown_faithfully_are_refused(value: str, reason: str) -> None:
    with pytest.raises(CaseNumberError) as refused:
        CaseNumber.parse(value)
    assert reason in str(refused.value)


def test_a_number_of_64_characters_is_accepted_as_written() -> None:
    number = "号" * MAX_CASE_NUMBER
    assert CaseNumber.parse(number).number == number


numbers = st.text(
    st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")),
    min_size=1,
    max_size=MAX_CASE_NUMBER,
).filter(lambda text: bool(unicodedata.normalize("NFC", text).strip()))


@given(numbers)
def test_every_accepted_number_has_a_key_safe_case_id_of_its_own(value: str) -> None:
    if len(unicodedata.normalize("NFC", value).strip()) > MAX_CASE_NUMBER:
        return  # NFC can lengthen a text past the limit (refused, as tested above)
    parsed = CaseNumber.parse(value)
    assert layout.check_case_id(parsed.case_id) == parsed.case_id
    assert layout.case_prefix(parsed.case_id) == f"cases/{parsed.case_id}/"
    assert CaseNumber.parse(parsed.number) == parsed  # stable: a kept number parses to itself
    if parsed.case_id != parsed.number:
        assert parsed.case_id.startswith("c-")
        assert parsed.case_id.endswith(_digest(parsed.number))


def test_docs_state_the_vectors_the_code_derives() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "archive.md").read_text(encoding="utf-8")
    for number, case_id in ((NUMBER, NUMBER_CASE_ID), ("许可证", "c-1b2ad79bbbda")):
        assert derived_case_id(number) == case_id
        assert f"`{number}`" in docs
        assert f"`{case_id}`" in docs
    assert f"`{NUMBER_SHA256}`" in docs
    hex_bytes = NUMBER.encode("utf-8").hex()
    assert hex_bytes == docs.split("is the UTF-8 bytes\n`", 1)[1].split("`", 1)[0].replace(" ", "")
