# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""The report's HTML (pure): user text escaped once, hashes whole, the trail sampled fairly."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import zoneinfo

import pytest

from server.reports.html import (
    ConclusionEvent,
    LocationFix,
    ManifestSummary,
    ReportContent,
    distance_m,
    render_html,
    trail_sample,
)
from server.reports.photos import SnapshotEvidence
from server.reports.times import PHONE_CLOCK, ReportTimes
from server.store.models import Case, Inspection

T = "2026-05-01T02:00:00.000Z"


def fix(i: int) -> LocationFix:
    return LocationFix(f"30.{i:07d}", "120.1551000", "5.0", T, T, i)


def content(title: str, reason: str, shots: int) -> ReportContent:
    case = Case("C-1", title, "杭州 & <b>", "", "", "", None, None, 1, T)
    inspection = Inspection("a" * 32, "C-1", "ended", 1, T, T, 0, None, T, "pass", T, reason)
    snapshots = tuple(
        SnapshotEvidence(
            f"{i:032x}",
            f"k{i}",
            hashlib.sha256(bytes([i])).hexdigest(),
            1,
            2,
            2,
            T,
            None,
            None,
            None,
            "inspector1",
            i,
            b"\xff\xd8",
            (),
        )
        for i in range(shots)
    )
    conclusion = ConclusionEvent(9, "correction", reason, "inspector1", T, "c2ln", "sha256:x", None)
    manifest = ManifestSummary("m", "0" * 64, 8, "1" * 64, "c2ln", "sha256:x", 7, "2" * 64, T, 0, 0)
    return ReportContent(
        1, T, case, inspection, "inspector1", (), (), (), "默认", 1, (), snapshots,
        (conclusion,), manifest,
    )  # fmt: skip


def test_user_text_is_escaped_and_never_becomes_markup() -> None:
    html = render_html(content('<script>x()</script>"', "理由 <img src=x onerror=y>", 0))
    assert "<script>x()" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;x()&lt;/script&gt;&quot;" in html
    assert "&lt;img src=x onerror=y&gt;" in html
    assert "杭州 &amp; &lt;b&gt;" in html
    assert "需补正" in html


def test_every_snapshot_hash_appears_whole_on_its_own_line() -> None:
    report = content("厂房", "理由", 5)
    html = render_html(report)
    assert len(report.snapshots) == 5
    for shot in report.snapshots:
        assert f'<span class="hash">{shot.sha256}</span>' in html


def test_trail_sample_keeps_first_and_last_and_spreads_evenly() -> None:
    fixes = [fix(i) for i in range(1000)]
    shown = trail_sample(fixes, 60)
    assert len(shown) == 60
    assert shown[0] is fixes[0]
    assert shown[-1] is fixes[-1]
    gaps = {b.chain_seq - a.chain_seq for a, b in itertools.pairwise(shown)}
    assert gaps <= {16, 17}
    assert trail_sample(fixes[:10], 60) == fixes[:10]


def test_distance_of_one_thousandth_degree_of_latitude_is_about_111_m() -> None:
    assert 110.5 < distance_m(30.0, 120.0, 30.001, 120.0) < 111.5
    assert distance_m(30.0, 120.0, 30.0, 120.0) == 0


def test_the_case_number_as_written_heads_the_report_with_its_archive_id_and_entered_site() -> None:
    report = content("餐饮店", "理由", 0)
    case = dataclasses.replace(
        report.case,
        case_id="c-2026-0142-615213f26a39",
        case_number="榆阳食经〔2026〕0142号",
        site_lat=22.543847,
        site_lon=113.912316,
        site_system="gcj02",
        site_input_lat=22.540796131694766,
        site_input_lon=113.9171764808363,
    )
    html = render_html(dataclasses.replace(report, case=case))
    assert "<title>远程踏勘报告 榆阳食经〔2026〕0142号 第 1 版</title>" in html
    assert "案件编号 榆阳食经〔2026〕0142号 · 结论" in html
    assert "<tr><th>存证案件 ID</th><td>c-2026-0142-615213f26a39</td></tr>" in html
    assert "<tr><th>场地坐标（WGS-84）</th><td>22.543847, 113.912316</td></tr>" in html
    assert "<tr><th>录入坐标</th><td>22.540796, 113.917176（GCJ-02 高德/腾讯）</td></tr>" in html
    assert "takan verify --data &lt;数据目录&gt; c-2026-0142-615213f26a39" in html


def test_a_case_whose_number_is_its_id_shows_it_once() -> None:
    html = render_html(content("厂房", "理由", 0))
    assert "<tr><th>案件编号</th><td>C-1</td></tr>" in html
    assert "存证案件 ID" not in html
    assert "录入坐标" not in html


def test_times_print_as_beijing_time_with_the_chained_utc_and_its_source_beside() -> None:
    report = dataclasses.replace(
        content("厂房", "理由", 1), generated_at="2026-12-07T12:15:03.120Z"
    )
    html = render_html(report)
    assert "生成于 2026-12-07 20:15:03 北京时间" in html
    assert "本报告时间为北京时间（Asia/Shanghai，UTC+08:00）" in html
    # T is 2026-05-01T02:00:00.000Z: the snapshot's table cell, local then the chain's UTC
    assert (
        '<span class="local">2026-05-01 10:00:00</span>'
        '<span class="utc">UTC 2026-05-01 02:00:00.000（服务器时钟）</span>'
    ) in html
    assert "拍摄时间（北京时间）" in html
    assert "UTC + 8" not in html


def test_another_time_zone_is_named_with_its_offset() -> None:
    report = dataclasses.replace(
        content("厂房", "理由", 1), generated_at="2026-12-07T12:15:03Z", timezone="Asia/Tashkent"
    )
    html = render_html(report)
    assert "生成于 2026-12-07 17:15:03 (UTC+05:00 Asia/Tashkent)" in html
    assert "本报告时间为Asia/Tashkent（UTC+05:00）" in html
    assert "拍摄时间（Asia/Tashkent）" in html
    assert "北京时间" not in html
    assert "UTC 2026-05-01 02:00:00.000（服务器时钟）" in html


def test_a_phone_time_is_labelled_as_the_phone_s() -> None:
    times = ReportTimes("Asia/Shanghai")
    assert (
        times.utc("2026-12-07T12:15:03.5Z", PHONE_CLOCK)
        == "UTC 2026-12-07 12:15:03.500（手机时间）"
    )
    assert times.utc("2026-12-07T12:15:03Z") == "UTC 2026-12-07 12:15:03（服务器时钟）"
    assert times.local("not a time") == "not a time"


def test_zones_come_from_the_tzdata_package_when_the_system_has_none() -> None:
    zoneinfo.reset_tzpath(to=[])
    zoneinfo.ZoneInfo.clear_cache()
    try:
        assert ReportTimes("Asia/Shanghai").local("2026-12-07T12:15:03Z") == (
            "2026-12-07 20:15:03 北京时间"
        )
    finally:
        zoneinfo.reset_tzpath()
        zoneinfo.ZoneInfo.clear_cache()


def test_an_unknown_zone_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'Asia/Peking': not a known IANA time zone"):
        ReportTimes("Asia/Peking")
