"""The recording notice a deployment writes: every member checked with a message naming it,
nothing cut, and one hash for one notice whatever the file's spacing or key order."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from recorder.canonical import canonical_json
from server.consent_notice import DEFAULT_NOTICE, PART_LIMIT, ConsentNotice, NoticeError

NOTICE = {
    "version": "2026-12-01",
    "agency": "榆阳区市场监督管理局",
    "purpose": {"zh-CN": "核查食品经营许可申请所述的经营场所", "en": "To check the premises"},
    "retention": "自许可决定之日起保存 30 年",
    "contact": "0912-3456789",
}


def test_a_notice_is_read_with_a_text_or_both_languages_and_hashed_canonically() -> None:
    notice = ConsentNotice.parse(json.dumps(NOTICE, ensure_ascii=False).encode())
    assert notice.version == "2026-12-01"
    assert notice.texts["agency"] == {"zh-CN": "榆阳区市场监督管理局"}
    assert notice.texts["purpose"]["en"] == "To check the premises"
    assert notice.sha256 == hashlib.sha256(canonical_json(notice.to_json())).hexdigest()
    respaced = json.dumps(dict(reversed(list(NOTICE.items()))), indent=4).encode()
    assert ConsentNotice.parse(respaced).sha256 == notice.sha256
    assert notice.for_page() == {**notice.to_json(), "sha256": notice.sha256}
    changed = ConsentNotice.from_json({**NOTICE, "retention": "保存 10 年"})
    assert changed.sha256 != notice.sha256


def test_the_generic_notice_says_every_part_in_both_languages() -> None:
    for part in ("agency", "purpose", "retention", "contact"):
        assert set(DEFAULT_NOTICE.texts[part]) == {"zh-CN", "en"}
    assert DEFAULT_NOTICE.version == "takan-default-1"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"version": ""}, "member 'version' must be 1-40 characters"),
        ({"version": "v 1"}, "member 'version'"),
        ({"version": 3}, "member 'version'"),
        ({"agency": None}, "member 'agency' is required"),
        ({"agency": ""}, "member 'agency' needs its zh-CN text"),
        ({"agency": {"en": "Agency"}}, "member 'agency' needs its zh-CN text"),
        ({"agency": {"zh-CN": "机构", "fr": "x"}}, "unknown language 'fr'"),
        ({"contact": "电话\n0912"}, "control character U+000A"),
        ({"contact": "电话\u200b0912"}, "control character U+200B"),
        ({"purpose": "用" * (PART_LIMIT + 1)}, f"at most {PART_LIMIT} characters (it has 501)"),
        ({"owner": "x"}, "unknown member 'owner'"),
    ],
)
def test_a_bad_member_is_refused_naming_it(change: dict[str, Any], named: str) -> None:
    with pytest.raises(NoticeError) as refused:
        ConsentNotice.from_json({**NOTICE, **change})
    assert named in str(refused.value)


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        (b"[1]", "must be a JSON object"),
        (b"{", "not JSON"),
        (b'{"version": "\xff"}', "not UTF-8 (byte 13)"),
        (b" " * (64 * 1024 + 1), "larger than 65536 bytes"),
    ],
)
def test_a_file_that_is_not_a_notice_is_refused(raw: bytes, named: str) -> None:
    with pytest.raises(NoticeError) as refused:
        ConsentNotice.parse(raw)
    assert named in str(refused.value)
