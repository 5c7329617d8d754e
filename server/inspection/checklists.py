"""Checklist templates per case type (data, edited by admins) and an inspection's ticked items.

An inspection uses the template of its case's type (``default`` when none matches), fixed the
first time its checklist is read or marked. Every mark is chained before it is indexed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from server.clock import utc_iso
from server.errors import BadRequest, NotFound
from server.inspection.checklist_defaults import DEFAULT_TEMPLATE_ID, DEFAULT_TEMPLATES
from server.inspection.evidence_access import owned_inspection, require_not_concluded
from server.security.tokens import SessionToken
from server.services import Services
from server.store.backend import Row
from server.store.models import Inspection

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SNAPSHOT_ID = re.compile(r"[0-9a-f]{32}")
MAX_ITEMS = 100
MAX_ITEM_TEXT = 500
MAX_REQUIRED_PHOTOS = 20
MAX_NOTE = 500
MAX_PHOTOS_PER_ITEM = 50
ITEM_FIELDS = frozenset({"item_id", "text", "required_photos", "required"})
# An item's verdict (shown 符合 / 不符合 / 不适用); marks chained before it hold only "done".
VERDICTS = ("pass", "fail", "not_applicable")


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    item_id: str
    text: str
    required_photos: int
    # A required item must be marked (any verdict) before a pass; a template says
    # ``"required": false`` for an item a pass may leave unmarked.
    required: bool = True

    def __post_init__(self) -> None:
        if not ID_PATTERN.fullmatch(self.item_id):
            raise ValueError(
                f"item_id {self.item_id!r} must be 1-64 of a-z 0-9 _ -, starting with a-z or 0-9"
            )
        if not self.text.strip() or len(self.text) > MAX_ITEM_TEXT:
            raise ValueError(f"item {self.item_id}: text must be 1-{MAX_ITEM_TEXT} characters")
        if not 0 <= self.required_photos <= MAX_REQUIRED_PHOTOS:
            raise ValueError(
                f"item {self.item_id}: required_photos must be within 0..{MAX_REQUIRED_PHOTOS}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "text": self.text,
            "required_photos": self.required_photos,
            "required": self.required,
        }


@dataclass(frozen=True, slots=True)
class ChecklistTemplate:
    template_id: str
    case_type: str
    name: str
    items: tuple[ChecklistItem, ...]
    version: int
    updated_at: str

    def item(self, item_id: str) -> ChecklistItem | None:
        return next((item for item in self.items if item.item_id == item_id), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "template_id": self.template_id,
            "case_type": self.case_type,
            "name": self.name,
            "version": self.version,
            "updated_at": self.updated_at,
            "items": [item.to_json() for item in self.items],
        }


def parse_items(value: Any) -> tuple[ChecklistItem, ...]:
    """Items of a template body; BadRequest naming the first bad one."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ITEMS:
        raise BadRequest(f"field 'items' must be a list of 1 to {MAX_ITEMS} items")
    items: list[ChecklistItem] = []
    for index, raw in enumerate(value):
        where = f"items[{index}]"
        if not isinstance(raw, dict) or set(raw) - ITEM_FIELDS:
            raise BadRequest(
                f"{where} must be an object of item_id, text, required_photos, required",
                field=where,
            )
        item_id, text = raw.get("item_id"), raw.get("text")
        photos, required = raw.get("required_photos", 0), raw.get("required", True)
        if not isinstance(item_id, str) or not isinstance(text, str):
            raise BadRequest(f"{where}: item_id and text must be strings", field=where)
        if isinstance(photos, bool) or not isinstance(photos, int):
            raise BadRequest(
                f"{where}: required_photos must be an integer", field=f"{where}.required_photos"
            )
        if not isinstance(required, bool):
            raise BadRequest(
                f"{where}: required must be true or false (leave it out for true)",
                field=f"{where}.required",
            )
        try:
            items.append(ChecklistItem(item_id, text.strip(), photos, required))
        except ValueError as exc:
            raise BadRequest(f"{where}: {exc}") from exc
        if any(other.item_id == item_id for other in items[:-1]):
            raise BadRequest(f"{where}: item_id '{item_id}' appears twice")
    return tuple(items)


def _template(row: Row) -> ChecklistTemplate:
    items = tuple(ChecklistItem(**item) for item in json.loads(row["items_json"]))
    return ChecklistTemplate(
        row["template_id"],
        row["case_type"],
        row["name"],
        items,
        row["version"],
        row["updated_at"],
    )


async def seed_defaults(services: Services) -> None:
    """Seed the default templates (at startup); an admin's edits are never overwritten."""
    await services.store.templates.seed(
        [
            (
                template["template_id"],
                template["case_type"],
                template["name"],
                json.dumps(template["items"], ensure_ascii=False),
            )
            for template in DEFAULT_TEMPLATES
        ],
        utc_iso(services.clock.now()),
    )


def check_template_id(template_id: str) -> str:
    if not ID_PATTERN.fullmatch(template_id):
        raise NotFound(f"checklist template {template_id[:64]!r} does not exist")
    return template_id


async def templates(services: Services) -> list[ChecklistTemplate]:
    return [_template(row) for row in await services.store.templates.all()]


async def _template_by_id(services: Services, template_id: str) -> ChecklistTemplate | None:
    row = await services.store.templates.get(template_id)
    return _template(row) if row is not None else None


async def template(services: Services, template_id: str) -> ChecklistTemplate:
    found = await _template_by_id(services, check_template_id(template_id))
    if found is None:
        raise NotFound(f"checklist template '{template_id}' does not exist")
    return found


async def put_template(
    services: Services, user: SessionToken, template_id: str, body: dict[str, Any]
) -> ChecklistTemplate:
    """Create the template or replace its content, bumping its version."""
    if not ID_PATTERN.fullmatch(template_id):
        raise BadRequest("template_id must be 1-64 of a-z 0-9 _ -, starting with a-z or 0-9")
    unknown = sorted(set(body) - {"case_type", "name", "items"})
    if unknown:
        raise BadRequest(f"unknown field '{unknown[0]}'")
    case_type, name = body.get("case_type", ""), body.get("name")
    if not isinstance(case_type, str) or len(case_type) > 64:
        raise BadRequest("field 'case_type' must be a string of at most 64 characters")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise BadRequest("field 'name' is required: a non-empty string of at most 200 characters")
    items = parse_items(body.get("items"))
    now = utc_iso(services.clock.now())
    items_json = json.dumps([item.to_json() for item in items], ensure_ascii=False)
    await services.store.templates.put(
        template_id, case_type.strip(), name.strip(), items_json, user.user_id, now
    )
    return await template(services, template_id)


async def template_of(services: Services, inspection: Inspection) -> ChecklistTemplate:
    """The inspection's template: fixed at first use from its case's type."""
    if inspection.template_id is not None:
        fixed = await _template_by_id(services, inspection.template_id)
        if fixed is not None:
            return fixed
    case = await services.store.cases.get(inspection.case_id)
    case_type = case.case_type.strip() if case else ""
    row = await services.store.templates.for_case_type(case_type) if case_type else None
    chosen = (
        _template(row) if row is not None else await _template_by_id(services, DEFAULT_TEMPLATE_ID)
    )
    if chosen is None:  # pragma: no cover - seed_defaults put it there at startup
        raise NotFound(f"checklist template '{DEFAULT_TEMPLATE_ID}' does not exist")
    await services.store.inspections.fix_template(inspection.inspection_id, chosen.template_id)
    return chosen


@dataclass(frozen=True, slots=True)
class Mark:
    item_id: str
    done: bool
    note: str
    snapshot_ids: tuple[str, ...]
    by: str
    marked_at: str
    verdict: str | None = None


async def marks_of(services: Services, inspection_id: str) -> dict[str, Mark]:
    """The inspection's marks by item id."""
    rows = await services.store.evidence.marks_of(inspection_id)
    return {
        row["item_id"]: Mark(
            row["item_id"],
            bool(row["done"]),
            row["note"],
            tuple(json.loads(row["snapshot_ids"])),
            row["by"],
            row["marked_at"],
            row["verdict"],
        )
        for row in rows
    }


async def checklist(services: Services, inspection: Inspection) -> dict[str, Any]:
    """The inspection's checklist with what is still missing (not done, or too few photos)."""
    chosen = await template_of(services, inspection)
    return _checklist_json(inspection, chosen, await marks_of(services, inspection.inspection_id))


@dataclass(frozen=True, slots=True)
class PassBlocker:
    """Why an item stands in the way of a pass: ``unmarked`` (a required item, 未核查),
    ``fail`` (marked 不符合) or ``photos`` (marked 符合 with fewer picked photos than needed)."""

    item_id: str
    text: str
    problem: str
    have: int
    need: int

    def to_json(self) -> dict[str, int | str]:
        return {
            "item_id": self.item_id,
            "text": self.text,
            "problem": self.problem,
            "have": self.have,
            "need": self.need,
        }


def _affirmed(mark: Mark) -> bool:
    """Marked 符合, or ticked "done" by an older client (which said no more than that)."""
    return mark.verdict == "pass" or (mark.verdict is None and mark.done)


def pass_blockers(chosen: ChecklistTemplate, marks: dict[str, Mark]) -> list[PassBlocker]:
    """The items, in template order, that a pass conclusion is refused for."""
    blockers = []
    for item in chosen.items:
        mark = marks.get(item.item_id)
        have = len(mark.snapshot_ids) if mark else 0
        problem = None
        if mark is None or not mark.done:
            problem = "unmarked" if item.required else None
        elif mark.verdict == "fail":
            problem = "fail"
        elif _affirmed(mark) and have < item.required_photos:
            problem = "photos"
        if problem is not None:
            blockers.append(
                PassBlocker(item.item_id, item.text, problem, have, item.required_photos)
            )
    return blockers


def _checklist_json(
    inspection: Inspection, chosen: ChecklistTemplate, marks: dict[str, Mark]
) -> dict[str, Any]:
    items = []
    for item in chosen.items:
        mark = marks.get(item.item_id)
        items.append(
            {
                **item.to_json(),
                "done": bool(mark and mark.done),
                "verdict": mark.verdict if mark else None,
                "note": mark.note if mark else "",
                "photos": list(mark.snapshot_ids) if mark else [],
                "marked_by": mark.by if mark else None,
                "marked_at": mark.marked_at if mark else None,
            }
        )
    blockers = pass_blockers(chosen, marks)
    verdicts = [m.verdict for i in chosen.items if (m := marks.get(i.item_id)) and m.done]
    return {
        "inspection_id": inspection.inspection_id,
        "template_id": chosen.template_id,
        "name": chosen.name,
        "version": chosen.version,
        "items": items,
        # Still to do before a pass: required items unmarked, 符合 items short of photos.
        "missing": [b.item_id for b in blockers if b.problem != "fail"],
        "failing": [b.item_id for b in blockers if b.problem == "fail"],
        "blocks_pass": [b.to_json() for b in blockers],
        "counts": {
            "items": len(chosen.items),
            "required": sum(1 for i in chosen.items if i.required),
            "marked": len(verdicts),
            "pass": verdicts.count("pass"),
            "fail": verdicts.count("fail"),
            "not_applicable": verdicts.count("not_applicable"),
        },
    }


async def _snapshot_ids(services: Services, inspection_id: str, value: Any) -> tuple[str, ...]:
    """The photos the inspector picked for an item: distinct snapshots of this inspection."""
    field = "snapshot_ids"
    if not isinstance(value, list):
        raise BadRequest("field 'snapshot_ids' must be a list of snapshot ids", field=field)
    if len(value) > MAX_PHOTOS_PER_ITEM:
        raise BadRequest(
            f"field 'snapshot_ids' holds {len(value)} photos; at most {MAX_PHOTOS_PER_ITEM}"
            " may be picked for one item",
            field=field,
            limit=MAX_PHOTOS_PER_ITEM,
        )
    for index, snapshot_id in enumerate(value):
        if not isinstance(snapshot_id, str) or not SNAPSHOT_ID.fullmatch(snapshot_id):
            raise BadRequest(
                f"snapshot_ids[{index}] must be a snapshot id (32 hex digits)", field=field
            )
        if snapshot_id in value[:index]:
            raise BadRequest(
                f"snapshot_ids[{index}]: snapshot '{snapshot_id}' is picked twice", field=field
            )
    if value:
        found = await services.store.evidence.existing_snapshots(inspection_id, value)
        strangers = [v for v in value if v not in found]
        if strangers:
            raise BadRequest(
                f"snapshot '{strangers[0]}' is not a snapshot of this inspection", field=field
            )
    return tuple(value)


async def mark(
    services: Services, user: SessionToken, inspection_id: str, item_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Tick (or untick) an item with a note and its photos; chained, then indexed."""
    inspection = await owned_inspection(services, user, inspection_id)
    require_not_concluded(inspection)
    unknown = sorted(set(body) - {"verdict", "done", "note", "snapshot_ids"})
    if unknown:
        raise BadRequest(f"unknown field '{unknown[0]}'")
    verdict, done, note = body.get("verdict"), body.get("done"), body.get("note", "")
    if "verdict" in body:
        if "done" in body:
            raise BadRequest("give 'verdict' or the older 'done', not both")
        if verdict is not None and verdict not in VERDICTS:
            raise BadRequest(
                f"field 'verdict' must be one of {', '.join(VERDICTS)}, or null for unmarked",
                field="verdict",
            )
        done = verdict is not None
    elif not isinstance(done, bool):
        raise BadRequest("field 'verdict' (or the older 'done', true or false) is required")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise BadRequest(
            f"field 'note' must be a string of at most {MAX_NOTE} characters",
            field="note",
            limit=MAX_NOTE,
        )
    chosen = await template_of(services, inspection)
    if chosen.item(item_id) is None:
        raise BadRequest(
            f"item '{item_id[:64]}' is not in this inspection's checklist template"
            f" '{chosen.template_id}'"
        )
    marks = await marks_of(services, inspection.inspection_id)
    previous = marks.get(item_id)
    if "snapshot_ids" in body:
        photos = await _snapshot_ids(services, inspection.inspection_id, body["snapshot_ids"])
    else:
        photos = previous.snapshot_ids if previous else ()
    entry = await services.archive.append(
        inspection.case_id,
        "checklist_mark",
        {
            "inspection_id": inspection.inspection_id,
            "item_id": item_id,
            "template_id": chosen.template_id,
            "template_version": chosen.version,
            "done": done,
            **({"verdict": verdict} if "verdict" in body else {}),
            "note": note.strip(),
            "snapshot_ids": list(photos),
            "by": user.username,
        },
    )
    marked_at = entry.at
    await services.store.evidence.put_mark(
        {
            "inspection_id": inspection.inspection_id,
            "item_id": item_id,
            "done": int(done),
            "note": note.strip(),
            "marked_by": user.user_id,
            "marked_at": marked_at,
            "snapshot_ids": json.dumps(list(photos)),
            "verdict": verdict,
        }
    )
    marks[item_id] = Mark(item_id, done, note.strip(), photos, user.username, marked_at, verdict)
    result = _checklist_json(inspection, chosen, marks)
    result["chain_seq"] = entry.seq
    return result
