"""Is the applicant live and at the site: location fixes and liveness challenges.

Each fix and each step of a challenge is chained first, then indexed in SQLite (``locations``,
``challenges``) for the pages; the signalling socket calls these and forwards the results.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from typing import Any

from server.clock import utc_iso
from server.errors import Conflict, NotFound
from server.live.geo import LocationFix, decimal_text, haversine_m, parse_fix_time
from server.services import Services
from server.store.models import Case
from server.store.store import Store

CODE_DIGITS = 4


@dataclass(frozen=True, slots=True)
class Challenge:
    challenge_id: str
    inspection_id: str
    kind: str  # "code" (shown on the phone, read aloud or written on paper) or "instruction"
    prompt: str
    issued_by: int | None
    issued_at: str
    shown_at: str | None = None
    judged_at: str | None = None
    judgement: str | None = None  # "passed" or "failed"
    note: str = ""

    @property
    def state(self) -> str:
        if self.judgement is not None:
            return self.judgement
        return "shown" if self.shown_at is not None else "issued"

    @property
    def response_ms(self) -> int | None:
        """Issued → the applicant said it is shown, on the server's clock."""
        if self.shown_at is None:
            return None
        return round((parse_fix_time(self.shown_at) - parse_fix_time(self.issued_at)) * 1000)

    def to_state(self) -> dict[str, Any]:
        """The ``challenge_state`` message inspectors receive."""
        return {
            "type": "challenge_state",
            "challenge_id": self.challenge_id,
            "kind": self.kind,
            "prompt": self.prompt,
            "state": self.state,
            "issued_at": self.issued_at,
            "shown_at": self.shown_at,
            "response_ms": self.response_ms,
            "judged_at": self.judged_at,
            "judgement": self.judgement,
            "note": self.note,
        }

    def to_applicant(self) -> dict[str, Any]:
        return {
            "type": "challenge",
            "challenge_id": self.challenge_id,
            "kind": self.kind,
            "prompt": self.prompt,
        }


def new_prompt(kind: str, text: str | None) -> str:
    if kind == "code":
        return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    return (text or "").strip()


# locations


async def record_location(
    services: Services,
    case_id: str,
    inspection_id: str,
    participant_id: str,
    fix: LocationFix,
) -> dict[str, Any]:
    """Chain and index a fix; answers the ``location`` message for inspectors."""
    site = site_of(await services.store.cases.get(case_id))
    distance = None if site is None else fix.distance_to(*site)
    evidence = fix.evidence()
    entry = await services.archive.append(
        case_id,
        "location",
        {
            "inspection_id": inspection_id,
            "participant_id": participant_id,
            **evidence,
            "fix_source": "device",
            "distance_m": None if distance is None else decimal_text(distance, 1),
        },
    )
    received_at = entry.at
    await services.store.evidence.add_location(
        {
            "inspection_id": inspection_id,
            "lat": evidence["lat"],
            "lon": evidence["lon"],
            "accuracy_m": evidence["accuracy_m"],
            "fix_at": evidence["fix_at"],
            "received_at": received_at,
            "chain_seq": entry.seq,
        }
    )
    message = await location_message(services.store, inspection_id, site)
    if message is None:  # pragma: no cover - the row was inserted just above
        raise RuntimeError("location row missing after insert")
    return message


def site_of(case: Case | None) -> tuple[float, float] | None:
    """The case's site coordinates, when the inspector entered them."""
    if case is None or case.site_lat is None or case.site_lon is None:
        return None
    return case.site_lat, case.site_lon


async def location_message(
    store: Store, inspection_id: str, site: tuple[float, float] | None
) -> dict[str, Any] | None:
    """The latest fix of an inspection as the ``location`` message, or None before the first."""
    row = await store.evidence.latest_location(inspection_id)
    if row is None:
        return None
    lat, lon = float(row["lat"]), float(row["lon"])
    distance = None if site is None else haversine_m(lat, lon, *site)
    return {
        "type": "location",
        "lat": lat,
        "lon": lon,
        "accuracy": float(row["accuracy_m"]),
        "at": row["fix_at"],
        "received_at": row["received_at"],
        "distance_m": None if distance is None else round(distance, 1),
        "site": None if site is None else {"lat": site[0], "lon": site[1]},
        "trail_count": int(row["trail"]),
        "chain_seq": int(row["chain_seq"]),
    }


async def record_location_denied(
    services: Services, case_id: str, inspection_id: str, participant_id: str, reason: str
) -> dict[str, Any]:
    at = utc_iso(services.clock.now())
    await services.archive.append(
        case_id,
        "location_denied",
        {"inspection_id": inspection_id, "participant_id": participant_id, "reason": reason},
    )
    return {"type": "location_denied", "reason": reason, "at": at}


# challenges


def _challenge(row: Any) -> Challenge:
    return Challenge(
        challenge_id=row["challenge_id"],
        inspection_id=row["inspection_id"],
        kind=row["kind"],
        prompt=row["prompt"],
        issued_by=row["issued_by"],
        issued_at=row["issued_at"],
        shown_at=row["shown_at"],
        judged_at=row["judged_at"],
        judgement=row["judgement"],
        note=row["note"],
    )


async def challenges_of(store: Store, inspection_id: str) -> list[Challenge]:
    return [_challenge(row) for row in await store.evidence.challenges_of(inspection_id)]


async def challenge_of(store: Store, inspection_id: str, challenge_id: str) -> Challenge:
    row = await store.evidence.challenge(inspection_id, challenge_id)
    if row is None:
        raise NotFound(f"challenge '{challenge_id}' does not exist in this inspection")
    return _challenge(row)


async def issue_challenge(
    services: Services,
    case_id: str,
    inspection_id: str,
    kind: str,
    text: str | None,
    user_id: int | None,
    by: str,
) -> Challenge:
    challenge = Challenge(
        challenge_id=secrets.token_hex(16),
        inspection_id=inspection_id,
        kind=kind,
        prompt=new_prompt(kind, text),
        issued_by=user_id,
        issued_at=utc_iso(services.clock.now()),
    )
    await services.archive.append(
        case_id,
        "challenge_issued",
        {
            "inspection_id": inspection_id,
            "challenge_id": challenge.challenge_id,
            "kind": kind,
            "prompt": challenge.prompt,
            "by": by,
            "issued_at": challenge.issued_at,
        },
    )
    await services.store.evidence.add_challenge(
        {
            "challenge_id": challenge.challenge_id,
            "inspection_id": inspection_id,
            "kind": kind,
            "prompt": challenge.prompt,
            "issued_by": user_id,
            "issued_at": challenge.issued_at,
        }
    )
    return challenge


async def mark_shown(
    services: Services, case_id: str, inspection_id: str, challenge_id: str
) -> Challenge:
    challenge = await challenge_of(services.store, inspection_id, challenge_id)
    if challenge.shown_at is not None:
        raise Conflict("this challenge was already answered")
    if challenge.judgement is not None:
        raise Conflict("this challenge has already been judged")
    shown_at = utc_iso(services.clock.now())
    shown = replace(challenge, shown_at=shown_at)
    await services.archive.append(
        case_id,
        "challenge_shown",
        {
            "inspection_id": inspection_id,
            "challenge_id": challenge_id,
            "response_ms": shown.response_ms,
            "shown_at": shown_at,
        },
    )
    await services.store.evidence.challenge_shown(challenge_id, shown_at)
    return shown


async def judge(
    services: Services,
    case_id: str,
    inspection_id: str,
    challenge_id: str,
    judgement: str,
    note: str,
    by: str,
) -> Challenge:
    challenge = await challenge_of(services.store, inspection_id, challenge_id)
    if challenge.judgement is not None:
        raise Conflict(f"this challenge was already judged '{challenge.judgement}'")
    judged_at = utc_iso(services.clock.now())
    judged = replace(challenge, judged_at=judged_at, judgement=judgement, note=note)
    await services.archive.append(
        case_id,
        "challenge_judged",
        {
            "inspection_id": inspection_id,
            "challenge_id": challenge_id,
            "judgement": judgement,
            "note": note,
            "by": by,
            "judged_at": judged_at,
        },
    )
    await services.store.evidence.challenge_judged(challenge_id, judged_at, judgement, note)
    return judged
