"""OpenAPI paths of the inspection evidence routes (server/http/api_evidence.py), merged into
server/http/openapi.py's document, which passes in its operation and object builders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Op = Callable[..., dict[str, Any]]
Obj = Callable[..., dict[str, Any]]

_S = {"type": "string"}
_INT = {"type": "integer"}
_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$"}


def _raw(summary: str, content_type: str) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    return {
        "summary": summary,
        "responses": {
            "200": {"description": "the stored bytes", "content": {content_type: {}}},
            **{str(code): {"description": "error", **error} for code in (401, 403, 404, 409)},
        },
    }


def evidence_paths(op: Op, obj: Obj) -> dict[str, Any]:
    snapshot = obj(
        ["snapshot_id", "sha256", "url"],
        snapshot_id=_ID,
        sha256=_S,
        url=_S,
        width=_INT,
        height=_INT,
        taken_at=_S,
        media_pts=_INT,
    )
    shape = obj(
        ["type", "x1", "y1", "x2", "y2", "color"],
        type={"enum": ["arrow", "box", "text"]},
        x1=_INT,
        y1=_INT,
        x2=_INT,
        y2=_INT,
        text={"type": "string", "maxLength": 200},
        color={"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
    )
    template_item = obj(
        ["item_id", "text"],
        item_id={"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
        text={"type": "string", "maxLength": 500},
        required_photos={"type": "integer", "minimum": 0, "maximum": 20},
    )
    # Not a keyword of obj(), whose "required" names the members that must be given.
    template_item["properties"]["required"] = {"type": "boolean", "default": True}
    template_in = obj(
        ["name", "items"],
        case_type={"type": "string", "maxLength": 64},
        name={"type": "string", "maxLength": 200},
        items={
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": template_item,
        },
    )
    template = obj(["template_id", "name", "version", "items"])
    checklist = obj(
        ["template_id", "version", "items", "missing", "failing", "blocks_pass", "counts"]
    )
    inspection = "/api/inspections/{inspection_id}"
    return {
        f"{inspection}/snapshots": {
            "post": op(
                "Snapshot the applicant's next full frame (PNG, chained)",
                201,
                snapshot,
                (401, 403, 404, 409),
            ),
            "get": op(
                "The inspection's snapshots and annotations",
                200,
                obj(["snapshots"]),
                (401, 403, 404),
            ),
        },
        "/api/snapshots/{snapshot_id}.png": {"get": _raw("The original PNG", "image/png")},
        "/api/snapshots/{snapshot_id}/annotations": {
            "post": op(
                "Annotate a snapshot (a separate chained JSON object)",
                201,
                obj(["annotation_id", "sha256", "url"]),
                (400, 401, 403, 404, 409, 415),
                obj(
                    ["shapes"],
                    shapes={"type": "array", "minItems": 1, "maxItems": 200, "items": shape},
                ),
            )
        },
        "/api/annotations/{annotation_id}.json": {
            "get": _raw("The stored annotation document", "application/json")
        },
        "/api/checklist-templates": {
            "get": op("Checklist templates", 200, obj(["templates"]), (401,))
        },
        "/api/checklist-templates/{template_id}": {
            "get": op("A checklist template", 200, template, (401, 404)),
            "put": op(
                "Create or replace a template (admin; bumps its version)",
                200,
                template,
                (400, 401, 403, 415),
                template_in,
            ),
        },
        f"{inspection}/checklist": {
            "get": op(
                "The inspection's checklist and what is missing", 200, checklist, (401, 403, 404)
            ),
        },
        f"{inspection}/checklist/{{item_id}}": {
            "post": op(
                "Mark a checklist item (chained)",
                200,
                checklist,
                (400, 401, 403, 404, 409, 415),
                obj(
                    [],
                    verdict={"enum": ["pass", "fail", "not_applicable", None]},
                    done={"type": "boolean"},
                    note={"type": "string", "maxLength": 500},
                    snapshot_ids={"type": "array", "items": _ID, "maxItems": 50},
                ),
            )
        },
        f"{inspection}/conclusion": {
            "post": op(
                "Conclude: signed, chained, ends the inspection, starts the report",
                201,
                obj(
                    [
                        "inspection_id",
                        "outcome",
                        "reason",
                        "at",
                        "signature",
                        "key_fingerprint",
                        "chain_seq",
                    ]
                ),
                (400, 401, 403, 404, 409, 415),
                obj(
                    ["outcome", "reason"],
                    outcome={"enum": ["pass", "fail", "correction"]},
                    reason={"type": "string", "minLength": 1, "maxLength": 2000},
                    corrects=_INT,
                    draft=_S,
                    passkey={"type": "object"},
                ),
            )
        },
        f"{inspection}/conclusion/challenge": {
            "post": op(
                "What the inspector's passkey is to sign: the conclusion and the WebAuthn request",
                200,
                obj(["draft", "options", "conclusion"]),
                (400, 401, 403, 404, 409, 415),
                obj(
                    ["outcome", "reason"],
                    outcome={"enum": ["pass", "fail", "correction"]},
                    reason={"type": "string", "minLength": 1, "maxLength": 2000},
                    corrects=_INT,
                ),
            )
        },
        f"{inspection}/report.html": {
            "get": _raw("The latest report, HTML (409 before a conclusion)", "text/html")
        },
        f"{inspection}/report.pdf": {
            "get": _raw("The latest report, PDF (409 before a conclusion)", "application/pdf")
        },
        "/api/dashboard": {
            "get": op(
                "The inspector's day",
                200,
                obj(["today", "live", "awaiting_conclusion"]),
                (401, 403),
            )
        },
    }
