"""Canonical JSON: one encoding per value, the bytes docs/archive.md specifies."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder.canonical import MAX_SAFE_INTEGER, canonical_json, is_canonical, parse_json

# The test vector of docs/archive.md: re-implementations must produce exactly these bytes.
VECTOR_INPUT: dict[str, Any] = {
    "zeta": [True, False, None, -0, 9007199254740991],
    "alpha": {"b": 'line\nbreak\ttab "quoted" back\\slash', "a": "\u00e9\u4f60\u2028\x7f/"},
    "ctl": "\x00\x1f\x08\x0c",
    "": "",
}
VECTOR_OUTPUT = (
    '{"":"","alpha":{"a":"é你\u2028\x7f/","b":"line\\nbreak\\ttab \\"quoted\\" back\\\\slash"},'
    '"ctl":"\\u0000\\u001f\\b\\f","zeta":[true,false,null,0,9007199254740991]}'
).encode()
VECTOR_SHA256 = "d20890bb42cc4af277c78a4506fae9d7ffc00f9d173f26b3300d76a3bf814cb2"

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127)), children, max_size=5)
    ),
    max_leaves=25,
)


def test_the_documented_vector_encodes_to_the_documented_bytes() -> None:
    assert canonical_json(VECTOR_INPUT) == VECTOR_OUTPUT
    assert hashlib.sha256(canonical_json(VECTOR_INPUT)).hexdigest() == VECTOR_SHA256


@given(json_values)
def test_round_trip_gives_back_the_value(value: Any) -> None:
    encoded = canonical_json(value)
    assert parse_json(encoded) == value
    assert canonical_json(parse_json(encoded)) == encoded
    assert is_canonical(encoded)


@given(
    st.dictionaries(st.text(alphabet=st.characters(max_codepoint=127)), json_values), st.randoms()
)
def test_key_insertion_order_does_not_change_the_bytes(
    value: dict[str, Any], rnd: random.Random
) -> None:
    items = list(value.items())
    rnd.shuffle(items)
    assert canonical_json(dict(items)) == canonical_json(value)


@given(json_values)
def test_bytes_equal_compact_sorted_json_dumps(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    assert canonical_json(value) == expected.encode("utf-8")


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        {"lat": 31.2304},
        [0.0],
        float("nan"),
        float("inf"),
        MAX_SAFE_INTEGER + 1,
        -MAX_SAFE_INTEGER - 1,
        {1: "int key"},
        {"clé": "non-ASCII key"},
        "\ud800",
        b"bytes",
        {"a": {1, 2}},
    ],
)
def test_values_outside_the_subset_are_rejected(value: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        canonical_json(value)


def test_booleans_stay_booleans_and_tuples_are_arrays() -> None:
    assert canonical_json({"t": True, "f": False, "n": (1, 2)}) == b'{"f":false,"n":[1,2],"t":true}'


def test_excessive_nesting_is_rejected() -> None:
    deep: Any = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper"):
        canonical_json(deep)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"a":1,"a":2}', "duplicate"),
        (b'{"a":1.0}', "not an integer"),
        (b'{"a":1e3}', "not an integer"),
        (b"NaN", "not JSON"),
        (b"\xff", "not UTF-8"),
        (b'{"a":', "not JSON"),
    ],
)
def test_strict_parser_rejects_ambiguous_input(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_json(raw)


@pytest.mark.parametrize(
    "raw",
    [b'{"b":1,"a":2}', b'{"a": 1}', b'{"a":"\\u0041"}', b'{"a":-0}', b"[1] ", b'"\\/"'],
)
def test_equivalent_but_non_canonical_spellings_are_detected(raw: bytes) -> None:
    assert not is_canonical(raw)


def test_the_vector_printed_in_the_docs_is_this_one() -> None:
    text = (Path(__file__).parents[2] / "docs" / "archive.md").read_text(encoding="utf-8")
    block = text.split("encodes to these 149 bytes (hex):\n\n```\n", 1)[1].split("```", 1)[0]
    assert bytes.fromhex(block.replace("\n", "")) == VECTOR_OUTPUT
    assert VECTOR_SHA256 in text
