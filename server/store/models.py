"""The rows the store hands out as domain objects: users, passkeys, cases, inspections."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class Passkey:
    """A staff user's registered WebAuthn credential (``credential_id`` is base64url)."""

    credential_id: str
    user_id: int
    label: str
    public_key_cose: bytes
    public_key_spki: str
    rp_id: str
    origin: str
    sign_count: int
    registered_at: str
    last_used_at: str | None


@dataclass(frozen=True, slots=True)
class Case:
    case_id: str
    title: str
    address: str
    applicant_name: str
    applicant_phone: str
    case_type: str
    site_lat: float | None
    site_lon: float | None
    created_by: int
    created_at: str
    case_number: str = ""  # as written; "" (rows before issue 19): the case ID
    site_system: str | None = None  # what site_input_* are in: wgs84, gcj02 or bd09
    site_input_lat: float | None = None  # the site as entered; site_lat/lon are WGS-84
    site_input_lon: float | None = None

    @property
    def number(self) -> str:
        """The case number people read (the case ID is the archive's key)."""
        return self.case_number or self.case_id

    def to_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "case_number": self.number,
            "title": self.title,
            "address": self.address,
            "applicant_name": self.applicant_name,
            "applicant_phone": self.applicant_phone,
            "case_type": self.case_type,
            "site_lat": self.site_lat,
            "site_lon": self.site_lon,
            "site_system": self.site_system,
            "site_input_lat": self.site_input_lat,
            "site_input_lon": self.site_input_lon,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Inspection:
    inspection_id: str
    case_id: str
    status: str
    created_by: int
    created_at: str
    ended_at: str | None
    invite_expires_at: int
    short_code: str | None
    consented_at: str | None
    outcome: str | None = None
    concluded_at: str | None = None
    conclusion_reason: str | None = None
    scheduled_at: str | None = None
    template_id: str | None = None
    conclusion_seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "inspection_id": self.inspection_id,
            "case_id": self.case_id,
            "status": self.status,
            "created_at": self.created_at,
            "ended_at": self.ended_at,
            "consented_at": self.consented_at,
            "outcome": self.outcome,
            "concluded_at": self.concluded_at,
            "conclusion_reason": self.conclusion_reason,
            "scheduled_at": self.scheduled_at,
            "template_id": self.template_id,
        }
