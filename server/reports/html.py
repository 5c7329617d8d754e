# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""The inspection report's content and its HTML (pure: no database, no archive, no I/O).

Every piece of text that comes from a user or the evidence is escaped exactly once, by ``_cell``
and ``_text`` (server.reports.markup); only ``Html`` fragments built by the report's modules are
inserted raw. The same HTML is stored as
the report's HTML and rendered to its PDF, so both say the same thing.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from string import Template

from server.inspection.chain_record import PasskeyFacts
from server.reports.markup import Html
from server.reports.markup import hash_line as _hash
from server.reports.markup import kv as _kv
from server.reports.markup import section as _section
from server.reports.markup import stamp as _stamp
from server.reports.markup import table as _table
from server.reports.markup import text as _text
from server.reports.markup import when as _when
from server.reports.photos import SnapshotEvidence, snapshots_section
from server.reports.times import PHONE_CLOCK, ReportTimes
from server.settings import DEFAULT_REPORT_TIMEZONE
from server.store.models import Case, Inspection

TEMPLATE_PATH = Path(__file__).with_name("templates") / "report.html"
OUTCOME_ZH = {"pass": "通过", "fail": "不通过", "correction": "需补正"}
VERDICT_ZH = {"pass": "符合", "fail": "不符合", "not_applicable": "不适用"}
JUDGEMENT_ZH = {"passed": "通过", "failed": "未通过"}
CHALLENGE_KIND_ZH = {"code": "随机码", "instruction": "指令"}
ROLE_ZH = {"applicant": "申请人", "inspector": "踏勘人员", "observer": "观察员"}
SITE_SYSTEM_ZH = {"wgs84": "WGS-84", "gcj02": "GCJ-02 高德/腾讯", "bd09": "BD-09 百度"}
MAX_TRAIL_ROWS = 60


@dataclass(frozen=True, slots=True)
class Participant:
    role: str
    display_name: str
    joined_at: str
    left_at: str | None


@dataclass(frozen=True, slots=True)
class LocationFix:
    lat: str
    lon: str
    accuracy_m: str
    fix_at: str
    received_at: str
    chain_seq: int


@dataclass(frozen=True, slots=True)
class ChallengeResult:
    kind: str
    prompt: str
    issued_by: str
    issued_at: str
    shown_at: str | None
    judgement: str | None
    judged_at: str | None
    note: str


@dataclass(frozen=True, slots=True)
class ChecklistLine:
    item_id: str
    text: str
    required_photos: int
    done: bool | None  # None: never marked
    note: str
    marked_by: str
    marked_at: str | None
    photos: tuple[str, ...] = ()  # snapshot ids, as the inspector picked them for this item
    verdict: str | None = None  # pass, fail, not_applicable; None: unmarked or an older tick
    required: bool = True  # a pass needs it marked


@dataclass(frozen=True, slots=True)
class ConclusionEvent:
    chain_seq: int
    outcome: str
    reason: str
    by: str
    at: str
    signature: str
    key_fingerprint: str
    refers_to: int | None
    passkey_mode: str | None = None  # the deployment's passkey setting when it was signed
    passkey: PasskeyFacts | None = None  # the inspector's passkey that signed it too


# 踏勘人员签名 when no passkey signed: why, from the deployment's setting at the time.
PASSKEY_ABSENT_ZH = {
    "off": "未签署：本部署未启用通行密钥，结论仅由服务器存证密钥签名",
    "optional": "未签署：该人员未以通行密钥签署，结论仅由服务器存证密钥签名",
    "required": "未签署",  # the server refuses it; a chain saying so is named by verify
    None: "未签署：签署时系统尚不支持通行密钥，结论仅由服务器存证密钥签名",
}


def _inspector_signature(conclusion: ConclusionEvent) -> Html | str:
    signed = conclusion.passkey
    if signed is None:
        return PASSKEY_ABSENT_ZH.get(conclusion.passkey_mode, PASSKEY_ABSENT_ZH["optional"])
    how = "已验证本人（指纹或 PIN）" if signed.user_verified else "确认在场，未验证本人"
    return Html(
        f"{_text(signed.username)} 以通行密钥（WebAuthn, ES256）签署，{how}；"
        f"通行密钥指纹 {_hash(signed.fingerprint)}"
    )


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    key: str
    sha256: str
    chain_seq: int
    merkle_root: str
    signature: str
    key_fingerprint: str
    chain_head_seq: int
    chain_head: str
    created_at: str
    segments: int
    recorded_s: float


@dataclass(frozen=True, slots=True)
class ReceiptSummary:
    """The inspection's receipt as handed out: its document (canonical JSON), and its QR code
    (SVG markup made by the server, holding the receipt or its URL and SHA-256)."""

    document: str
    sha256: str
    chain_head_seq: int
    chain_head: str
    started_at: str
    ended_at: str
    clock: str
    issued_at: str
    key_fingerprint: str
    signature: str
    has_timestamp: bool
    qr_svg: str
    qr_holds_receipt: bool


@dataclass(frozen=True, slots=True)
class ReportContent:
    version: int
    generated_at: str
    case: Case
    inspection: Inspection
    inspector: str
    participants: tuple[Participant, ...]
    locations: tuple[LocationFix, ...]
    challenges: tuple[ChallengeResult, ...]
    checklist_name: str
    checklist_version: int | None
    checklist: tuple[ChecklistLine, ...]
    snapshots: tuple[SnapshotEvidence, ...]
    conclusions: tuple[ConclusionEvent, ...]  # in chain order; the last one stands
    manifest: ManifestSummary
    receipt: ReceiptSummary | None = None
    inspectors: tuple[str, ...] = ()  # the case's, as chained; ``inspector`` opened this one
    timezone: str = DEFAULT_REPORT_TIMEZONE  # the IANA zone the report prints times in

    @property
    def times(self) -> ReportTimes:
        return ReportTimes(self.timezone)

    def __post_init__(self) -> None:
        if not self.conclusions:
            raise ValueError("a report needs a conclusion")
        if self.version < 1:
            raise ValueError("report versions start at 1")


# small pure helpers


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))


def _parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def utc_short(text: str | None) -> str:
    """``2026-05-01 02:00:03`` (UTC) for table cells, where the column names the zone."""
    if not text:
        return "—"
    try:
        return f"{_parse_utc(text):%Y-%m-%d %H:%M:%S}"
    except ValueError:
        return text


def response_ms(issued_at: str, shown_at: str | None) -> int | None:
    if shown_at is None:
        return None
    try:
        return round((_parse_utc(shown_at) - _parse_utc(issued_at)).total_seconds() * 1000)
    except ValueError:
        return None


def trail_sample(fixes: Sequence[LocationFix], limit: int = MAX_TRAIL_ROWS) -> list[LocationFix]:
    """At most ``limit`` fixes, evenly spread, always keeping the first and the last."""
    if len(fixes) <= limit:
        return list(fixes)
    step = (len(fixes) - 1) / (limit - 1)
    return [fixes[round(i * step)] for i in range(limit)]


# markup


def _outcome(outcome: str) -> Html:
    label = OUTCOME_ZH.get(outcome, outcome)
    css = outcome if outcome in OUTCOME_ZH else "other"
    return Html(f'<span class="outcome outcome-{css}">{_text(label)}</span>')


def _site_rows(case: Case) -> list[tuple[str, object]]:
    """The site in WGS-84 and, when it was entered from a Chinese map, as entered there."""
    if case.site_lat is None or case.site_lon is None:
        return [("场地坐标", None)]
    site = f"{case.site_lat:.6f}, {case.site_lon:.6f}"
    lat, lon = case.site_input_lat, case.site_input_lon
    if case.site_system in (None, "wgs84") or lat is None or lon is None:
        return [("场地坐标", site)]
    system = SITE_SYSTEM_ZH.get(case.site_system, case.site_system)
    entered = f"{lat:.6f}, {lon:.6f}（{system}）"
    return [("场地坐标（WGS-84）", site), ("录入坐标", entered)]


def _case_section(report: ReportContent) -> Html:
    case, insp, times = report.case, report.inspection, report.times
    archive_id = [("存证案件 ID", case.case_id)] if case.case_id != case.number else []
    return _section(
        "一、案件信息",
        _kv(
            [
                ("案件编号", case.number),
                *archive_id,
                ("案件名称", case.title),
                ("踏勘地址", case.address),
                ("申请人", case.applicant_name),
                ("申请人电话", case.applicant_phone),
                ("案件类型", case.case_type),
                *_site_rows(case),
                ("踏勘编号", insp.inspection_id),
                ("踏勘人员", "、".join(report.inspectors or (report.inspector,))),
                ("发起人", report.inspector),
                ("预约时间", _when(times, insp.scheduled_at) if insp.scheduled_at else None),
                ("发起时间", _when(times, insp.created_at)),
                (
                    "申请人同意录像",
                    _when(times, insp.consented_at) if insp.consented_at else "未记录",
                ),
                ("结束时间", _when(times, insp.ended_at)),
            ]
        ),
    )


def _participants_section(report: ReportContent) -> Html:
    times = report.times
    rows = [
        (
            ROLE_ZH.get(p.role, p.role),
            p.display_name,
            _stamp(times, p.joined_at),
            _stamp(times, p.left_at),
        )
        for p in report.participants
    ]
    headers = ("角色", "姓名", f"加入时间（{times.name}）", f"离开时间（{times.name}）")
    return _section("二、参与人员", _table(headers, rows))


def _location_section(report: ReportContent) -> Html:
    case, fixes = report.case, report.locations
    shown = trail_sample(fixes)
    rows = []
    for fix in shown:
        distance = None
        if case.site_lat is not None and case.site_lon is not None:
            try:
                metres = distance_m(float(fix.lat), float(fix.lon), case.site_lat, case.site_lon)
                distance = f"{metres:.0f}"
            except ValueError:
                distance = None
        rows.append(
            (
                _stamp(report.times, fix.fix_at, PHONE_CLOCK),
                fix.lat,
                fix.lon,
                fix.accuracy_m,
                distance,
                fix.chain_seq,
            )
        )
    intro = f"共 {len(fixes)} 条定位记录（申请人手机上报，时间为设备时间）。"
    if len(shown) < len(fixes):
        intro += f"下表均匀选取 {len(shown)} 条（含首末两条）；全部记录见哈希链。"
    if case.site_lat is None:
        intro += "案件未登记场地坐标，不计算距离。"
    return _section(
        "三、位置轨迹",
        Html(f'<p class="muted">{_text(intro)}</p>'),
        _table(
            (
                f"定位时间（{report.times.name}）",
                "纬度",
                "经度",
                "精度（米）",
                "距场地（米）",
                "链序号",
            ),
            rows,
        ),
    )


def _challenge_section(report: ReportContent) -> Html:
    rows = []
    for c in report.challenges:
        delay = response_ms(c.issued_at, c.shown_at)
        rows.append(
            (
                CHALLENGE_KIND_ZH.get(c.kind, c.kind),
                c.prompt,
                _stamp(report.times, c.issued_at),
                f"{delay} 毫秒" if delay is not None else "未显示",
                JUDGEMENT_ZH.get(c.judgement, c.judgement) if c.judgement else "未判定",
                c.note,
                c.issued_by,
            )
        )
    issued = f"发出时间（{report.times.name}）"
    headers = ("类型", "内容", issued, "响应用时", "判定", "说明", "发起人")
    return _section("四、在场核验（活体与地点）", _table(headers, rows))


def _verdict(line: ChecklistLine) -> Html:
    if line.verdict in VERDICT_ZH:
        label, css = VERDICT_ZH[line.verdict], f"verdict-{line.verdict}"
    elif line.done:  # ticked before items had a verdict
        label, css = "已勾选（无核查结论）", "verdict-done"
    else:
        label, css = "未核查", "missing" if line.required else "verdict-open"
    return Html(f'<span class="{css}">{_text(label)}</span>')


def _checklist_intro(report: ReportContent) -> str:
    lines = report.checklist
    marked = [line for line in lines if line.done]
    said = "、".join(
        f"{label} {n} 项"
        for verdict, label in VERDICT_ZH.items()
        if (n := sum(1 for line in marked if line.verdict == verdict))
    )
    open_lines = [line for line in lines if not line.done]
    open_required = sum(1 for line in open_lines if line.required)
    version = f"（第 {report.checklist_version} 版）" if report.checklist_version else ""
    return (
        f"检查模板：{report.checklist_name}{version}；"
        f"共 {len(lines)} 项（必查 {sum(1 for line in lines if line.required)} 项）；"
        f"已核查 {len(marked)} 项" + (f"（{said}）" if said else "") + "；"
        f"未核查 {len(open_lines)} 项"
        + (f"（其中必查 {open_required} 项）" if open_lines else "")
        + "。照片编号见“六、现场照片”。"
    )


def _checklist_section(report: ReportContent) -> Html:
    numbers = {s.snapshot_id: i for i, s in enumerate(report.snapshots, start=1)}
    rows = []
    for line in report.checklist:
        photos = "、".join(
            f"照片 {numbers[s]}" if s in numbers else f"未知照片 {s}" for s in line.photos
        )
        rows.append(
            (
                line.text if line.required else f"{line.text}（选查）",
                _verdict(line),
                f"{len(line.photos)} / {line.required_photos}",
                photos,
                line.note,
                line.marked_by,
                utc_short(line.marked_at),
            )
        )
    headers = (
        "检查项",
        "核查结论",
        "照片（已选/需选）",
        "对应照片",
        "备注",
        "记录人",
        "记录时间（UTC）",
    )
    return _section(
        "五、检查清单",
        Html(f'<p class="muted">{_text(_checklist_intro(report))}</p>'),
        _table(headers, rows),
    )


def _conclusion_section(report: ReportContent) -> Html:
    final = report.conclusions[-1]
    parts = [
        Html(f"<p>踏勘结论：{_outcome(final.outcome)}</p>"),
        _kv(
            [
                ("结论", OUTCOME_ZH.get(final.outcome, final.outcome)),
                ("理由", Html(f'<span class="note">{_text(final.reason)}</span>')),
                ("作出人", final.by),
                ("时间", _when(report.times, final.at)),
                ("链序号", final.chain_seq),
                ("更正的结论（链序号）", final.refers_to),
                ("踏勘人员签名", _inspector_signature(final)),
                ("签名密钥指纹", _hash(final.key_fingerprint)),
                ("服务器签名（Ed25519）", _hash(final.signature)),
            ]
        ),
    ]
    if len(report.conclusions) > 1:
        rows = [
            (
                c.chain_seq,
                OUTCOME_ZH.get(c.outcome, c.outcome),
                c.reason,
                c.by,
                _stamp(report.times, c.at),
            )
            for c in report.conclusions
        ]
        parts += [
            Html("<h3>结论记录（含更正）</h3>"),
            _table(("链序号", "结论", "理由", "作出人", f"时间（{report.times.name}）"), rows),
        ]
    return _section("七、踏勘结论", *parts)


def _evidence_section(report: ReportContent) -> Html:
    m = report.manifest
    return _section(
        "八、存证信息",
        _kv(
            [
                ("清单对象", Html(f'<span class="mono">{_text(m.key)}</span>')),
                ("清单 SHA-256", _hash(m.sha256)),
                ("默克尔根", _hash(m.merkle_root)),
                ("清单签名（Ed25519）", _hash(m.signature)),
                ("签名密钥指纹", _hash(m.key_fingerprint)),
                ("签名时链头", f"{m.chain_head_seq}"),
                ("链头哈希", _hash(m.chain_head) if m.chain_head else None),
                ("清单签署时间", _when(report.times, m.created_at)),
                ("录像分段", f"{m.segments} 段，约 {m.recorded_s:.0f} 秒"),
            ]
        ),
        Html(
            '<p class="muted">核验方法：takan verify --data &lt;数据目录&gt; '
            f"{_text(report.case.case_id)}，核对哈希链、签名、录像分段、照片与本报告的哈希。"
            "本报告（HTML 与 PDF）的 SHA-256 在生成后写入同一哈希链。</p>"
        ),
        _receipt_part(report.times, report.receipt),
    )


def _receipt_part(times: ReportTimes, receipt: ReceiptSummary | None) -> Html:
    if receipt is None:
        return Html('<h3>存证回执</h3><p class="muted">本次踏勘尚未签发回执。</p>')
    qr = base64.b64encode(receipt.qr_svg.encode("utf-8")).decode("ascii")
    holds = "回执全文" if receipt.qr_holds_receipt else "回执地址及其 SHA-256"
    return Html(
        "<h3>存证回执</h3>"
        + _kv(
            [
                ("回执 SHA-256", _hash(receipt.sha256)),
                ("回执链序号", f"{receipt.chain_head_seq}（记录清单的链条目）"),
                ("该条目哈希", _hash(receipt.chain_head)),
                ("踏勘开始", _when(times, receipt.started_at, receipt.clock)),
                ("踏勘结束", _when(times, receipt.ended_at, receipt.clock)),
                ("时间来源", receipt.clock),
                ("签发时间", _when(times, receipt.issued_at, receipt.clock)),
                ("时间戳令牌（RFC 3161）", "有" if receipt.has_timestamp else "无"),
                ("签名密钥指纹", _hash(receipt.key_fingerprint)),
                ("回执签名（Ed25519）", _hash(receipt.signature)),
            ]
        )
        + f'<p><img class="qr" src="data:image/svg+xml;base64,{qr}" alt="回执二维码"'
        ' style="width:45mm;height:45mm"></p>'
        + f'<p class="muted">二维码内容：{_text(holds)}。回执全文（JSON）：</p>'
        + f'<p class="mono" style="word-break:break-all">{_text(receipt.document)}</p>'
        + '<p class="muted">回执由存证库之外的人保存：takan verify --receipt &lt;回执文件&gt; '
        "在存证库缺少回执所记录的链条目或清单时报错，即使链尾与其签名一并被删除。</p>"
    )


def render_html(report: ReportContent, template: str | None = None) -> str:
    """The report as a complete HTML document."""
    page = Template(template if template is not None else TEMPLATE_PATH.read_text("utf-8"))
    final, times = report.conclusions[-1], report.times
    header = Html(
        "<h1>远程踏勘报告</h1>"
        f'<p class="subtitle">案件编号 {_text(report.case.number)} · 结论 '
        f"{_text(OUTCOME_ZH.get(final.outcome, final.outcome))} · 第 {report.version} 版 · "
        f"生成于 {_text(times.local(report.generated_at))}</p>"
        f'<p class="muted">本报告时间为{_text(times.description(report.generated_at))}；'
        "证据表中每个时间下方另列哈希链记录的协调世界时（UTC）及其来源"
        "（服务器时钟：服务器记录；手机时间：申请人手机上报）。</p>"
    )
    body = "\n".join(
        [
            header,
            _case_section(report),
            _participants_section(report),
            _location_section(report),
            _challenge_section(report),
            _checklist_section(report),
            snapshots_section(report.times, report.snapshots),
            _conclusion_section(report),
            _evidence_section(report),
        ]
    )
    title = _text(f"远程踏勘报告 {report.case.number} 第 {report.version} 版")
    return page.substitute(title=title, body=body)
