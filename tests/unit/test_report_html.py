"""The report's HTML (pure): user text escaped once, hashes whole, the trail sampled fairly."""

from __future__ import annotations

import hashlib
import itertools

from server.reports.html import (
    ConclusionEvent,
    LocationFix,
    ManifestSummary,
    ReportContent,
    SnapshotEvidence,
    distance_m,
    render_html,
    trail_sample,
)
from server.store.db import Case, Inspection

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
