# ruff: noqa: RUF001, RUF002, RUF003 - Chinese text uses full-width punctuation on purpose
"""Case numbers as permit offices write them (榆阳食经〔2026〕0142号), on a real server.

The number is kept as written, shown and searched; the archive files the case under a key-safe
case ID derived from it; the chain records the number, so a lost database gets it back and an
edited one is named. Too long is refused naming the limit, never cut.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from recorder import layout
from recorder.chain import ChainEntry
from server.reports.html import render_html
from server.reports.publish import render_pdf
from tests.conftest import LiveServer, database_options, lose_database, running_server
from tests.integration.peers import invite_token
from tests.integration.recorded_case import takan
from tests.integration.test_report import pdf_text
from tests.integration.test_rest_api import assert_error
from tests.integration.test_signalling import connect
from tests.unit.test_report_html import content

NUMBER = "榆阳食经〔2026〕0142号"
CASE_ID = "c-2026-0142-615213f26a39"  # docs/archive.md, "Case numbers"


async def numbered_case(
    server: LiveServer, number: str = NUMBER, username: str = "inspector1", **fields: Any
) -> dict[str, Any]:
    body = {"case_number": number, "title": "餐饮店开业核查", "address": "榆林市榆阳区新建路 8 号"}
    status, case = await server.request("POST", "/api/cases", username, json={**body, **fields})
    assert status == 201, case
    return dict(case)


async def case_created(server: LiveServer, case_id: str) -> ChainEntry:
    _, entries = await server.services.archive.chain_page(case_id, 0, 100)
    [entry] = [entry for entry in entries if entry.kind == "case_created"]
    return entry


async def test_a_chinese_case_number_is_kept_as_written_and_filed_under_a_derived_id(
    live_server: LiveServer,
) -> None:
    case = await numbered_case(live_server)
    assert (case["case_number"], case["case_id"]) == (NUMBER, CASE_ID)
    assert (await case_created(live_server, CASE_ID)).body["case_number"] == NUMBER
    keys = await live_server.services.archive.settled_keys(CASE_ID)
    assert keys
    assert all(key.startswith(f"cases/{CASE_ID}/") and key.isascii() for key in keys)
    assert layout.check_case_id(CASE_ID) == CASE_ID

    status, fetched = await live_server.request("GET", f"/api/cases/{CASE_ID}", "auditor1")
    assert status == 200, fetched
    assert fetched["case_number"] == NUMBER
    status, created = await live_server.request(
        "POST", f"/api/cases/{CASE_ID}/inspections", "inspector1"
    )
    assert status == 201, created
    status, inspection = await live_server.request(
        "GET", f"/api/inspections/{created['inspection_id']}", "inspector1"
    )
    assert status == 200, inspection
    assert inspection["case"]["case_number"] == NUMBER
    status, board = await live_server.request("GET", "/api/dashboard", "inspector1")
    assert status == 200, board
    assert [i["case_number"] for i in board["today"]] == [NUMBER]

    # The applicant's page is told the number too.
    async with connect(live_server) as applicant:
        welcome = await applicant.hello(token=invite_token(created))
    assert welcome["case"] == {
        "case_id": CASE_ID,
        "case_number": NUMBER,
        "title": "餐饮店开业核查",
        "address": "榆林市榆阳区新建路 8 号",
    }


async def test_a_number_that_is_a_valid_case_id_files_the_case_under_itself(
    live_server: LiveServer,
) -> None:
    case = await numbered_case(live_server, "HZ-2026.001_a")
    assert (case["case_number"], case["case_id"]) == ("HZ-2026.001_a", "HZ-2026.001_a")
    legacy = await live_server.new_case(case_id="OLD-1")  # a case_id alone, as before numbers
    assert legacy["case_number"] == "OLD-1"
    assert (await case_created(live_server, "OLD-1")).body["case_number"] == "OLD-1"


async def test_search_finds_a_case_by_any_part_of_its_number(live_server: LiveServer) -> None:
    first = (await numbered_case(live_server))["case_id"]
    second = (await numbered_case(live_server, "榆阳食经〔2026〕0143号"))["case_id"]
    other = (await live_server.new_case(case_id="c-2026-other"))["case_id"]
    for query, found in (
        ("0142号", {first}),
        ("榆阳食经", {first, second}),
        ("〔2026〕", {first, second}),
        ("c-2026-0142", {first}),  # the archive's case ID still works, by prefix
        ("c-2026", {first, second, other}),
        ("0144号", set()),
    ):
        status, page = await live_server.request(
            "GET", f"/api/cases?case_id={quote(query)}", "auditor1"
        )
        assert status == 200, page
        assert {c["case_id"] for c in page["cases"]} == found, query
    status, page = await live_server.request(
        "GET", f"/api/cases?case_id={quote('0142号')}", "auditor1"
    )
    assert [c["case_number"] for c in page["cases"]] == [NUMBER]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"case_number": "号" * 65}, "case_number", "at most 64 characters (it has 65)"),
        ({"case_number": "   "}, "case_number", "must not be empty"),
        ({"case_number": "榆阳\u200b0142"}, "case_number", "U+200B"),
        ({"case_number": "榆阳\n0142"}, "case_number", "U+000A"),
        ({"case_number": 142}, "case_number", "must be a string"),
        ({"case_id": "c-1"}, "case_id", "not both"),
        ({"title": "标" * 10_000}, "title", "at most 200 characters (it has 10000)"),
        ({"address": "址" * 301}, "address", "at most 300 characters (it has 301)"),
        ({"applicant_name": "名" * 101}, "applicant_name", "at most 100 characters"),
        ({"applicant_phone": "1" * 41}, "applicant_phone", "at most 40 characters"),
        ({"case_type": "t" * 65}, "case_type", "at most 64 characters"),
        ({"title": ""}, "title", "required"),
    ],
)
async def test_a_bad_field_is_refused_naming_it_and_nothing_is_cut_or_stored(
    live_server: LiveServer, change: dict[str, Any], field: str, words: str
) -> None:
    body = {"case_number": NUMBER, "title": "t", "address": "a", **change}
    status, answer = await live_server.request("POST", "/api/cases", "inspector1", json=body)
    assert_error(status, answer, 400, "bad_request", f"'{field}'", words)
    assert answer["field"] == field
    if "at most" in words:
        assert answer["limit"] == int(words.split()[2])
    status, page = await live_server.request("GET", "/api/cases", "admin1")
    assert page["total"] == 0


async def test_a_case_without_a_number_is_refused_naming_the_number(
    live_server: LiveServer,
) -> None:
    status, answer = await live_server.request(
        "POST", "/api/cases", "inspector1", json={"title": "t", "address": "a"}
    )
    assert_error(status, answer, 400, "bad_request", "'case_number'")
    assert answer["field"] == "case_number"


async def test_the_same_number_twice_is_a_conflict_naming_it(live_server: LiveServer) -> None:
    await numbered_case(live_server)
    # The same number, pasted with white space around it: the same case.
    status, answer = await live_server.request(
        "POST",
        "/api/cases",
        "inspector2",
        json={"case_number": f" {NUMBER} ", "title": "t", "address": "a"},
    )
    assert_error(status, answer, 409, "conflict", NUMBER)
    assert answer["field"] == "case_number"


async def test_an_edited_number_in_the_database_is_named_by_the_integrity_check(
    live_server: LiveServer,
) -> None:
    await numbered_case(live_server, site_lat=22.540796131694766, site_lon=113.9171764808363,
                        site_system="gcj02")  # fmt: skip
    await live_server.sql(
        "UPDATE cases SET case_number = '榆阳食经〔2026〕9999号', site_system = 'wgs84'"
        " WHERE case_id = ?",
        (CASE_ID,),
    )
    status, integrity = await live_server.request(
        "GET", f"/api/cases/{CASE_ID}/integrity", "auditor1"
    )
    assert status == 200, integrity
    assert (integrity["state"], integrity["database"]) == ("disagrees", "disagrees"), integrity
    said = [d["text"] for d in integrity["disagreements"]]
    seq = (await case_created(live_server, CASE_ID)).seq
    assert said == [
        f"database says case number '榆阳食经〔2026〕9999号'; chain entry {seq} says '{NUMBER}'",
        f"database says site coordinate system wgs84; chain entry {seq} says gcj02",
    ]


async def test_the_number_and_the_site_as_entered_survive_a_lost_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:
        await numbered_case(server, site_lat=39.92133699351021, site_lon=116.41036949371029,
                            site_system="bd09")  # fmt: skip
        status, before = await server.request("GET", f"/api/cases/{CASE_ID}", "auditor1")
        assert status == 200, before
    await asyncio.to_thread(lose_database, data)

    code, out, err = await takan("reindex", "--data", str(data), *database_options())
    assert code == 0, out + err
    assert "reindexed 1 of 1 cases" in out, out
    async with running_server(data) as server:
        status, after = await server.request("GET", f"/api/cases/{CASE_ID}", "auditor1")
        assert status == 200, after
        assert after == before
        assert (after["case_number"], after["site_system"]) == (NUMBER, "bd09")
        status, page = await server.request(
            "GET", f"/api/cases?case_id={quote('0142号')}", "auditor1"
        )
        assert [c["case_id"] for c in page["cases"]] == [CASE_ID]
        status, integrity = await server.request(
            "GET", f"/api/cases/{CASE_ID}/integrity", "auditor1"
        )
        assert (integrity["state"], integrity["disagreements"]) == ("verified", []), integrity


async def test_the_pdf_report_prints_the_number_as_written_and_its_archive_id(
    tmp_path: Path,
) -> None:
    report = content("餐饮店开业核查", "理由", 0)
    case = dataclasses.replace(report.case, case_id=CASE_ID, case_number=NUMBER)
    pdf = await asyncio.to_thread(render_pdf, render_html(dataclasses.replace(report, case=case)))
    text = await pdf_text(pdf, tmp_path)
    assert NUMBER in text  # 〔〕 and 号 in the embedded CJK font
    assert CASE_ID in text
