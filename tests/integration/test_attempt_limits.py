"""Short codes as people type them, and the limits on wrong codes and passwords, against a real
server: a wrong try says how many are left, a lock-out says for how long, and one person's wrong
tries never lock out another who has the right code or password."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import LiveServer, running_server, user_password
from tests.integration.test_rest_api import Answer, assert_error

OTHER_ADDRESS = "127.0.0.2"  # Linux answers on all of 127.0.0.0/8: a second client address


async def post(
    server: LiveServer, path: str, body: dict[str, Any], source: str = "127.0.0.1"
) -> Answer:
    """A POST from ``source`` (a loopback address), keeping status, headers and body."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.post(server.base_url + path, json=body) as response,
    ):
        text = await response.text()
        parsed: Any = json.loads(text) if response.content_type == "application/json" else text
        return Answer(response.status, dict(response.headers), parsed)


async def enter_code(server: LiveServer, code: str, source: str = "127.0.0.1") -> Answer:
    return await post(server, "/api/join/code", {"code": code}, source)


async def sign_in(server: LiveServer, username: str, password: str) -> Answer:
    return await post(server, "/api/login", {"username": username, "password": password})


def wrong_code(right: str) -> str:
    return "000000" if right != "000000" else "111111"


def full_width(digits: str) -> str:
    return "".join(chr(0xFF10 + int(d)) for d in digits)


# Short codes as typed


@pytest.mark.parametrize(
    "typed",
    [
        "{a} {b}",  # 269 354
        "{a}-{b}",
        "{a}\u2014{b}",  # em dash
        "{a}\u2014\u2014{b}",  # the Chinese dash, two em dashes
        "{a}\u2013{b}",  # en dash
        "{a}\uff0d{b}",  # full-width hyphen-minus
        "{a}\u2212{b}",  # minus sign
        "{a}\u3000{b}",  # ideographic space
        " {a}  {b} ",
        "{a[0]}{a[1]} {a[2]}{b[0]} {b[1]}{b[2]}",  # 26 93 54
        "{fa}{fb}",  # full-width digits
        "{fa} {fb}",
    ],
)
async def test_a_code_typed_with_spaces_dashes_or_full_width_digits_opens_the_inspection(
    live_server: LiveServer, typed: str
) -> None:
    invite = await live_server.new_inspection("inspector1")
    code = invite["short_code"]
    a, b = code[:3], code[3:]
    answer = await enter_code(
        live_server, typed.format(a=a, b=b, fa=full_width(a), fb=full_width(b))
    )
    assert (answer.status, answer.body) == (200, {"applicant_url": invite["applicant_url"]})


@pytest.mark.parametrize(
    ("typed", "named"),
    [
        ("269 35", "6 digits, not 5"),
        ("269 3541", "6 digits, not 7"),
        ("", "6 digits, not 0"),
        ("- -", "6 digits, not 0"),
        ("269.354", "'.'"),
        ("269/354", "'/'"),
        ("26935a", "LATIN SMALL LETTER A"),
        ("\u0662\u0666\u0669\u0663\u0665\u0664", "ARABIC-INDIC DIGIT TWO"),
        ("1" * 65, "longer than 64"),
    ],
)
async def test_a_code_with_another_character_or_digit_count_is_refused_naming_it(
    live_server: LiveServer, typed: str, named: str
) -> None:
    answer = await enter_code(live_server, typed)
    assert_error(answer.status, answer.body, 400, "bad_request", "'code'", named)


async def test_a_malformed_code_uses_up_no_attempt(live_server: LiveServer) -> None:
    invite = await live_server.new_inspection("inspector1")
    for _ in range(12):
        answer = await enter_code(live_server, "269 35")
        assert answer.status == 400, answer.body
    answer = await enter_code(live_server, wrong_code(invite["short_code"]))
    assert_error(answer.status, answer.body, 404, "not_found", attempts_left=9)


# Wrong codes: attempts left, the lock-out, per address


async def test_each_wrong_code_says_the_attempts_left_and_the_last_how_long_this_address_waits(
    live_server: LiveServer,
) -> None:
    invite = await live_server.new_inspection("inspector1")
    wrong = wrong_code(invite["short_code"])
    for left in range(9, 0, -1):
        answer = await enter_code(live_server, wrong)
        assert_error(answer.status, answer.body, 404, "not_found", attempts_left=left)
    last = await enter_code(live_server, wrong)
    wait = last.body["retry_after"]
    assert_error(last.status, last.body, 404, "not_found", attempts_left=0, retry_after=wait)
    assert 59 <= wait <= 60, last.body
    # Locked: even the right code waits, and the answer says how long.
    right = await enter_code(live_server, invite["short_code"].replace("", " ").strip())
    assert_error(right.status, right.body, 429, "rate_limited", "wrong codes", "retry in")
    assert right.headers["Retry-After"] == str(right.body["retry_after"])
    assert f"retry in {right.body['retry_after']} s" in right.body["reason"]
    # The lock is on this address: an applicant elsewhere gets in with the code at once.
    elsewhere = await enter_code(live_server, invite["short_code"], source=OTHER_ADDRESS)
    assert (elsewhere.status, elsewhere.body) == (200, {"applicant_url": invite["applicant_url"]})


# Wrong passwords: per account and address, and per address


async def test_each_wrong_password_says_how_many_attempts_are_left(
    live_server: LiveServer,
) -> None:
    for left in (9, 8, 7):
        answer = await sign_in(live_server, "inspector1", "not-the-password")
        assert_error(answer.status, answer.body, 401, "unauthorized", attempts_left=left)


async def test_one_inspectors_wrong_passwords_do_not_lock_a_colleague_out(
    live_server: LiveServer,
) -> None:
    for _ in range(10):
        answer = await sign_in(live_server, "inspector1", "a-wrong-guess")
        assert answer.status == 401, answer.body
    assert answer.body["attempts_left"] == 0, answer.body
    assert 59 <= answer.body["retry_after"] <= 60, answer.body
    locked = await sign_in(live_server, "inspector1", user_password("inspector1"))
    assert_error(locked.status, locked.body, 429, "rate_limited", "for this account")
    assert locked.headers["Retry-After"] == str(locked.body["retry_after"])
    # The colleague at the same address signs in at once, and still has every attempt.
    colleague = await sign_in(live_server, "inspector2", user_password("inspector2"))
    assert colleague.status == 200, colleague.body
    typo = await sign_in(live_server, "inspector2", "a-typo")
    assert_error(typo.status, typo.body, 401, "unauthorized", attempts_left=10 - 1)


async def test_an_address_that_tries_many_accounts_is_stopped_by_the_per_address_cap(
    live_server: LiveServer,
) -> None:
    names = [f"guess{n}" for n in range(4)]  # four accounts, 8 wrong passwords each
    answers = [await sign_in(live_server, name, "password1") for name in names for _ in range(8)]
    assert [a.status for a in answers[:30]] == [401] * 30
    assert answers[29].body["attempts_left"] == 0, answers[29].body
    for answer in answers[30:]:
        assert_error(answer.status, answer.body, 429, "rate_limited", "from this address")
    # The cap is on the address: a real user there waits too, and is told how long.
    right = await sign_in(live_server, "auditor1", user_password("auditor1"))
    assert_error(right.status, right.body, 429, "rate_limited", "from this address")


# Behind a reverse proxy


async def signed_in_through_proxy(
    server: LiveServer, username: str, password: str, client: str
) -> Answer:
    """A sign-in as a proxy at 127.0.0.1 forwards it for ``client`` (X-Forwarded-For)."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            server.base_url + "/api/login",
            json={"username": username, "password": password},
            headers={"X-Forwarded-For": client},
        ) as response,
    ):
        return Answer(response.status, dict(response.headers), await response.json())


async def test_behind_a_trusted_proxy_each_client_has_its_own_limit(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", trusted_proxies=("127.0.0.1/32",)) as server:
        for _ in range(10):
            answer = await signed_in_through_proxy(server, "inspector1", "wrong", "203.0.113.5")
            assert answer.status == 401, answer.body
        locked = await signed_in_through_proxy(
            server, "inspector1", user_password("inspector1"), "203.0.113.5"
        )
        assert_error(locked.status, locked.body, 429, "rate_limited", "for this account")
        # The same inspector elsewhere (another client behind the proxy) signs in at once.
        elsewhere = await signed_in_through_proxy(
            server, "inspector1", user_password("inspector1"), "198.51.100.7"
        )
        assert elsewhere.status == 200, elsewhere.body
        # A client cannot pick a fresh bucket by writing the header itself.
        forged = await signed_in_through_proxy(
            server, "inspector1", user_password("inspector1"), "198.51.100.1, 203.0.113.5"
        )
        assert_error(forged.status, forged.body, 429, "rate_limited", "for this account")


async def test_without_trusted_proxies_the_forwarded_header_is_ignored(
    live_server: LiveServer,
) -> None:
    for n in range(10):
        answer = await signed_in_through_proxy(live_server, "inspector1", "wrong", f"203.0.113.{n}")
        assert answer.status == 401, answer.body
    locked = await signed_in_through_proxy(
        live_server, "inspector1", user_password("inspector1"), "198.51.100.7"
    )
    assert_error(locked.status, locked.body, 429, "rate_limited", "for this account")
