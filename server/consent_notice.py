# ruff: noqa: RUF001 - Chinese text uses full-width punctuation on purpose
"""The notice an applicant reads before consenting to be recorded (个人信息保护法 第十七条): who
keeps the recording, why, for how long, and whom to ask. A deployment writes its own as JSON
(``takan serve --consent-notice FILE``); the applicant's page shows it before the consent button,
and each chained consent names the notice's version and SHA-256 (of its canonical JSON), with the
notice itself beside them, so that what the applicant agreed to is in the evidence.

Pure: parsing and hashing only; the CLI reads the file.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from recorder.canonical import canonical_json

LANGS = ("zh-CN", "en")
PARTS = ("agency", "purpose", "retention", "contact")
PART_LIMIT = 500
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
MAX_FILE_BYTES = 64 * 1024


class NoticeError(ValueError):
    """A notice file that cannot be shown: the message names the member and what is wrong."""


@dataclass(frozen=True, slots=True)
class ConsentNotice:
    version: str
    # part -> {lang: text}; zh-CN always, en when the deployment gives it
    texts: dict[str, dict[str, str]]

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, **{part: dict(self.texts[part]) for part in PARTS}}

    @property
    def sha256(self) -> str:
        return hashlib.sha256(canonical_json(self.to_json())).hexdigest()

    def for_page(self) -> dict[str, Any]:
        return {**self.to_json(), "sha256": self.sha256}

    @classmethod
    def from_json(cls, data: Any) -> ConsentNotice:
        if not isinstance(data, dict):
            raise NoticeError("the notice must be a JSON object")
        unknown = sorted(set(data) - {"version", *PARTS})
        if unknown:
            raise NoticeError(
                f"unknown member {unknown[0]!r}; members: version, {', '.join(PARTS)}"
            )
        version = data.get("version")
        if not isinstance(version, str) or not VERSION_PATTERN.fullmatch(version):
            raise NoticeError(
                "member 'version' must be 1-40 characters of A-Z a-z 0-9 . _ - (e.g. 2026-12-01)"
            )
        return cls(version, {part: _texts(data, part) for part in PARTS})

    @classmethod
    def parse(cls, raw: bytes) -> ConsentNotice:
        if len(raw) > MAX_FILE_BYTES:
            raise NoticeError(f"the notice file is larger than {MAX_FILE_BYTES} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise NoticeError(f"the notice file is not UTF-8 (byte {exc.start})") from exc
        except json.JSONDecodeError as exc:
            raise NoticeError(f"the notice file is not JSON: {exc}") from exc
        return cls.from_json(data)


def _texts(data: dict[str, Any], part: str) -> dict[str, str]:
    value = data.get(part)
    if isinstance(value, str):
        value = {"zh-CN": value}
    if not isinstance(value, dict):
        raise NoticeError(f'member {part!r} is required: a text, or {{"zh-CN": …, "en": …}}')
    unknown = sorted(set(value) - set(LANGS))
    if unknown:
        raise NoticeError(f"member {part!r}: unknown language {unknown[0]!r} (zh-CN, en)")
    texts: dict[str, str] = {}
    for lang in LANGS:
        text = value.get(lang)
        if text is None and lang != "zh-CN":
            continue
        if not isinstance(text, str) or not text.strip():
            raise NoticeError(f"member {part!r} needs its {lang} text")
        text = unicodedata.normalize("NFC", text.strip())
        if len(text) > PART_LIMIT:
            raise NoticeError(
                f"member {part!r} ({lang}) must be at most {PART_LIMIT} characters"
                f" (it has {len(text)})"
            )
        bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs")), None)
        if bad is not None:
            raise NoticeError(
                f"member {part!r} ({lang}) holds the control character U+{ord(bad):04X}"
            )
        texts[lang] = text
    return texts


# What an applicant reads when a deployment has written no notice of its own: true of every
# Takan deployment, and saying where the specifics are to be asked.
DEFAULT_NOTICE = ConsentNotice.from_json(
    {
        "version": "takan-default-1",
        "agency": {
            "zh-CN": "受理您申请的行政审批机关（本部署未另行配置机构名称）",
            "en": "The authority handling your application (this deployment names no other)",
        },
        "purpose": {
            "zh-CN": "远程核查申请材料所述的现场情况；"
            "录像、截图、位置和文字记录作为行政许可审查的证据",
            "en": "To check the site your application describes; the video, photos, location and"
            " messages are evidence for the permit decision",
        },
        "retention": {
            "zh-CN": "按档案管理规定保存；存档后以一次写入方式保存，不可修改或删除",
            "en": "Kept as the archive rules require; once archived it is written once and cannot"
            " be changed or deleted",
        },
        "contact": {
            "zh-CN": "请向受理您申请的窗口或本次踏勘的检查员咨询",
            "en": "Ask the office handling your application or the inspectors of this inspection",
        },
    }
)
