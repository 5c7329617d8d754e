"""Canonical JSON: the exact bytes that get hashed and signed.

A subset of RFC 8785 (JSON Canonicalization Scheme) chosen so that every value has one encoding
and any language can reproduce it (``docs/archive.md`` specifies it with a test vector):

- objects: keys are ASCII strings, sorted by code point, unique; ``{"a":1,"b":2}``
- arrays: elements in order; ``[1,2]``
- strings: UTF-8, escaped as JSON requires (``\\"`` ``\\\\`` ``\\b`` ``\\f`` ``\\n`` ``\\r``
  ``\\t``, other code points below U+0020 as ``\\u00xx`` with lower-case hex), nothing else escaped
- integers in ±(2**53 - 1), written in decimal without leading zeros or ``+``
- ``true``, ``false``, ``null``
- no insignificant whitespace anywhere

Floats are rejected: quantities such as coordinates travel as decimal strings.
"""

from __future__ import annotations

import json
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 64


def canonical_json(value: Any) -> bytes:
    """The canonical encoding of ``value``; ``ValueError`` if it is outside the subset."""
    _check(value, 0)
    text = json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("string contains a lone surrogate, which is not valid UTF-8") from exc


def parse_json(data: bytes) -> Any:
    """Parse JSON strictly: UTF-8, no duplicate keys, no floats, no NaN or Infinity.

    This accepts more than canonical JSON (whitespace, any key order); callers that need the
    canonical form compare ``canonical_json(parse_json(data)) == data``.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_float=_no_float,
            parse_constant=_no_constant,
        )
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg} at offset {exc.pos}") from exc


def is_canonical(data: bytes) -> bool:
    """True when ``data`` is exactly the canonical encoding of the value it holds."""
    try:
        return canonical_json(parse_json(data)) == data
    except ValueError:
        return False


_NO_KEY = object()


def check_safe_integer(value: int) -> None:
    """``ValueError``, worded as ``canonical_json``'s, for an integer outside ±(2**53 - 1)."""
    if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ValueError(f"integer {value} is outside ±(2**53 - 1)")


def _check(value: Any, depth: int) -> None:
    """``ValueError`` for the first value outside the subset: depth first, in order, an object's
    name checked just before its value. A loop over a stack rather than a call per value, as
    verification runs it over every stored document."""
    stack: list[tuple[Any, int, Any]] = [(value, depth, _NO_KEY)]
    pop, push = stack.pop, stack.append
    while stack:
        item, level, key = pop()
        if key is not _NO_KEY:
            if not isinstance(key, str):
                raise ValueError(f"object key {key!r} is not a string")
            if not key.isascii():
                raise ValueError(f"object key {key!r} is not ASCII")
        if level > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                raise ValueError(f"integer {item} is outside ±(2**53 - 1)")
        elif kind is dict:
            # Pushed in reverse, so that they are checked in order.
            for name, child in reversed(item.items()):
                push((child, level + 1, name))
        elif kind is list or kind is tuple:
            for child in reversed(item):
                push((child, level + 1, _NO_KEY))
        else:
            _check_other(item, level)


def _check_other(value: Any, depth: int) -> None:
    """Subclasses of the JSON types (an IntEnum, a str subclass) and what has no JSON form."""
    if isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is outside ±(2**53 - 1)")
        return
    if isinstance(value, float):
        raise ValueError("floats are not allowed in canonical JSON; use a decimal string")
    if isinstance(value, (dict, list, tuple)):
        items = value.items() if isinstance(value, dict) else ((_NO_KEY, v) for v in value)
        for key, child in items:
            if key is not _NO_KEY and not isinstance(key, str):
                raise ValueError(f"object key {key!r} is not a string")
            if isinstance(key, str) and not key.isascii():
                raise ValueError(f"object key {key!r} is not ASCII")
            _check(child, depth + 1)
        return
    raise ValueError(f"{type(value).__name__} has no canonical JSON form")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if key in result:
            raise ValueError(f"duplicate object key {key!r}")
        result[key] = item
    return result


def _no_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer")


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")
