"""The OpenAPI 3.1 document served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.http.openapi_evidence import evidence_paths

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(
    summary: str,
    ok: int,
    ok_schema: dict[str, Any],
    errors: tuple[int, ...],
    body: dict[str, Any] | None = None,
    auth: bool = True,
) -> dict[str, Any]:
    responses: dict[str, Any] = {str(ok): {"description": "success", **_json(ok_schema)}}
    for status in errors:
        responses[str(status)] = {"description": "error", **_json(_ERROR)}
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if not auth:
        op["security"] = []
    return op


def _obj(required: list[str], **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


_S = {"type": "string"}
_CASE_ID = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
_NUM = {"type": ["number", "null"]}
_INVITE = _obj(
    ["inspection_id", "applicant_url", "short_code", "qr_svg_url", "inspector_url"],
    inspection_id=_S,
    applicant_url=_S,
    short_code={"type": "string", "pattern": "^[0-9]{6}$"},
    code_url=_S,
    qr_svg_url=_S,
    inspector_url=_S,
    invite_expires_at=_S,
)
_SITE_SYSTEM = {"type": ["string", "null"], "enum": ["wgs84", "gcj02", "bd09", None]}
_CASE_IN = _obj(
    ["title", "address"],
    case_number={"type": "string", "minLength": 1, "maxLength": 64},
    case_id=_CASE_ID,
    title={"type": "string", "maxLength": 200},
    address={"type": "string", "maxLength": 300},
    applicant_name={"type": "string", "maxLength": 100},
    applicant_phone={"type": "string", "maxLength": 40},
    case_type={"type": "string", "maxLength": 64},
    site_lat={"type": "number", "minimum": -90, "maximum": 90},
    site_lon={"type": "number", "minimum": -180, "maximum": 180},
    site_system=_SITE_SYSTEM,
) | {"oneOf": [{"required": ["case_number"]}, {"required": ["case_id"]}]}
_CASE = {"$ref": "#/components/schemas/Case"}
_STAFF = {"type": "array", "items": _S}
_CASE_STAFF = _obj(["case_id", "inspectors"], case_id=_CASE_ID, inspectors=_STAFF)

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Takan", "version": "1", "description": "See docs/api.md"},
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "takan_session"},
        },
        "schemas": {
            "Error": _obj(
                ["error", "reason"],
                error=_S,
                reason=_S,
                # a body's member at fault and the length it must not exceed
                field=_S,
                limit={"type": "integer"},
                # 429: the seconds to wait (also the Retry-After header); a wrong password or
                # short code: the attempts left, and once none are, the wait as well
                retry_after={"type": "integer", "minimum": 1},
                attempts_left={"type": "integer", "minimum": 0},
            ),
            "Case": _obj(
                ["case_id", "case_number", "title", "address"],
                case_id=_CASE_ID,
                case_number=_S,
                title=_S,
                address=_S,
                applicant_name=_S,
                applicant_phone=_S,
                case_type=_S,
                site_lat=_NUM,
                site_lon=_NUM,
                site_system=_SITE_SYSTEM,
                site_input_lat=_NUM,
                site_input_lon=_NUM,
                created_at=_S,
                # its inspectors by user name; a new case takes them as ``inspectors`` too
                inspectors=_STAFF,
            ),
        },
    },
    "security": [{"bearer": []}, {"cookie": []}],
    "paths": {
        "/api/login": {
            "post": _op(
                "Log in",
                200,
                _obj(["token"], token=_S, username=_S, role=_S, expires_at=_S),
                (400, 401, 415, 429),
                _obj(["username", "password"], username=_S, password=_S),
                auth=False,
            )
        },
        "/api/logout": {"post": _op("Revoke the token", 200, _obj([]), (401,))},
        "/api/me": {"get": _op("Who am I", 200, _obj(["username", "role"]), (401,))},
        "/api/cases": {
            "post": _op("Create a case", 201, _CASE, (400, 401, 403, 409, 415), _CASE_IN),
            "get": _op(
                "Search cases, paged and sorted (inspectors see their own): ?case_id= (ID prefix"
                " or part of the number)"
                " &applicant= &inspector= &from=&to= (YYYY-MM-DD)"
                " &outcome=pass|fail|correction|none &sort=created_at|case_id|applicant_name"
                " &order=asc|desc &offset= &limit= (≤ 200)",
                200,
                _obj(
                    ["total", "offset", "limit", "cases"],
                    total={"type": "integer"},
                    offset={"type": "integer"},
                    limit={"type": "integer"},
                    cases={"type": "array", "items": _CASE},
                ),
                (400, 401, 403),
            ),
        },
        "/api/cases/{case_id}": {
            "get": _op("A case and its inspections", 200, _CASE, (400, 401, 403, 404))
        },
        "/api/cases/{case_id}/inspections": {
            "post": _op("Start an inspection and invite", 201, _INVITE, (400, 401, 403, 404))
        },
        "/api/inspectors": {
            "get": _op(
                "The inspectors a case can be assigned",
                200,
                _obj(["inspectors"], inspectors=_STAFF),
                (401, 403),
            )
        },
        "/api/cases/{case_id}/inspectors": {
            "post": _op(
                "Assign an inspector to the case (chained: inspector_assigned)",
                201,
                _CASE_STAFF,
                (400, 401, 403, 404, 409),
                body=_obj(["inspector"], inspector=_S),
            )
        },
        "/api/cases/{case_id}/inspectors/{username}": {
            "delete": _op(
                "Take an inspector off the case (chained: inspector_unassigned); one stays",
                200,
                _CASE_STAFF,
                (400, 401, 403, 404, 409),
            )
        },
        "/api/inspections/{inspection_id}": {
            "get": _op("An inspection", 200, _obj([]), (401, 403, 404))
        },
        "/api/inspections/{inspection_id}/qr.svg": {
            "get": {
                "summary": "QR code of the applicant link",
                "responses": {
                    "200": {"description": "SVG", "content": {"image/svg+xml": {}}},
                    "404": {"description": "error", **_json(_ERROR)},
                },
            }
        },
        "/api/inspections/{inspection_id}/receipt": {
            "get": _op(
                "The signed receipt of an ended inspection (docs/archive.md, Receipts)",
                200,
                _obj(["receipt", "signature"], receipt=_obj([]), signature=_S),
                (401, 403, 404, 409),
            )
        },
        "/api/inspections/{inspection_id}/receipt/qr.svg": {
            "get": {
                "summary": "QR code of the receipt, or of its URL and SHA-256",
                "responses": {
                    "200": {"description": "SVG", "content": {"image/svg+xml": {}}},
                    "409": {"description": "error", **_json(_ERROR)},
                },
            }
        },
        "/api/inspections/{inspection_id}/end": {
            "post": _op(
                "End the inspection; the invite stops working",
                200,
                _obj(["inspection_id", "status"], inspection_id=_S, status=_S, ended_at=_S),
                (401, 403, 404, 409),
            )
        },
        "/api/join/code": {
            "post": _op(
                "Exchange a 6-digit short code (spaces and dashes allowed) for the applicant link",
                200,
                _obj(["applicant_url"], applicant_url=_S),
                (400, 404, 415, 429),
                _obj(["code"], code={"type": "string", "maxLength": 64}),
                auth=False,
            )
        },
        "/api/cases/{case_id}/audit": {
            "get": _op(
                "The case's hash chain, paged (?offset=0&limit=100, limit ≤ 500)",
                200,
                _obj(["case_id", "total", "offset", "limit", "entries"]),
                (400, 401, 403, 404),
            )
        },
        "/api/cases/{case_id}/integrity": {
            "get": _op(
                "Verify the case's archive now (chained as 'verified')",
                200,
                _obj(["case_id", "state", "checked_at", "where", "reason", "inspections"]),
                (400, 401, 403, 404, 503),
            )
        },
        "/api/cases/{case_id}/objects": {
            "get": _op(
                "The case's stored objects, keys relative to cases/{case_id}/ (a consistent cut)",
                200,
                _obj(["case_id", "objects"], objects={"type": "array", "items": _S}),
                (400, 401, 403, 404, 503),
            )
        },
        "/api/cases/{case_id}/objects/{key}": {
            "get": {
                "summary": "The raw bytes of an archived object (key relative to cases/{case_id}/)",
                "responses": {
                    "200": {"description": "the stored bytes", "content": {"*/*": {}}},
                    **{
                        str(code): {"description": "error", **_json(_ERROR)}
                        for code in (400, 401, 403, 404)
                    },
                },
            }
        },
        "/api/cases/{case_id}/export": {
            "get": {
                "summary": "The evidence package (zip; chained as 'exported')",
                "responses": {
                    "200": {"description": "zip", "content": {"application/zip": {}}},
                    **{
                        str(code): {"description": "error", **_json(_ERROR)}
                        for code in (400, 401, 403, 404, 409, 503)
                    },
                },
            }
        },
        "/api/admin/flagged-cases": {
            "get": _op(
                "Cases whose chain holds entries this server did not write, or lost some"
                " (admins and auditors)",
                200,
                _obj(["cases"]),
                (401, 403),
            )
        },
        "/api/inspections/{inspection_id}/replay": {
            "post": _op(
                "Start a replay (chained as 'replayed')",
                200,
                _obj(
                    ["case_id", "inspection_id", "manifest_key", "audit_url", "objects_url"],
                    case_number=_S,
                ),
                (401, 403, 404, 409),
            )
        },
        "/api/inspections/{inspection_id}/replay-verified": {
            "post": _op(
                "Record what the replaying browser verified (chained as 'replay_verified')",
                200,
                _obj(["case_id", "seq", "state"]),
                (400, 401, 403, 404, 409, 415),
                _obj(
                    ["state", "segments_checked", "broken"],
                    state={"enum": ["verified", "broken"]},
                    segments_checked={"type": "integer", "minimum": 0},
                    broken={"type": "array", "items": _S, "maxItems": 1000},
                    where={"type": "string", "maxLength": 300},
                    reason={"type": "string", "maxLength": 1000},
                ),
            )
        },
        "/api/keys": {
            "get": _op(
                "The server's signing-key history, oldest first: each Ed25519 public key"
                " (base64, raw 32 bytes), its fingerprint, whether it is current, and the"
                " rotations signed by the key before",
                200,
                _obj(["keys", "history"]),
                (),
                auth=False,
            )
        },
        "/api/passkeys": {
            "get": _op(
                "The deployment's passkey mode, whether passkeys work here, and my passkeys",
                200,
                _obj(["mode", "available", "passkeys"]),
                (401,),
            ),
            "post": _op(
                "Register a passkey: the browser's answer to the options, with a label",
                201,
                _obj(["credential_id", "label", "fingerprint", "registered_at"]),
                (400, 401, 404, 409, 415),
                _obj(
                    ["token", "label", "credential"],
                    token=_S,
                    label={"type": "string", "minLength": 1, "maxLength": 60},
                    credential={"type": "object"},
                ),
            ),
        },
        "/api/passkeys/options": {
            "post": _op(
                "WebAuthn creation options for a new passkey of mine, and their token",
                200,
                _obj(["token", "options"]),
                (401, 409),
            )
        },
        "/api/config": {"get": _op("ICE servers", 200, _obj(["ice_servers"]), (), auth=False)},
        "/api/health": {"get": _op("Liveness", 200, _obj(["ok"]), (), auth=False)},
        **evidence_paths(_op, _obj),
    },
}


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
