"""The conclusion: pass, fail or needs correction, with a reason, signed by the server key and,
where the inspector has a passkey, by the inspector's passkey too.

It is chained, indexed on the inspection, and ends the inspection (the recording closes and the
manifest is signed). It is final: a later correction is a new signed entry whose ``refers_to``
names the chain seq of the conclusion it replaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from recorder.conclusion import MAX_REASON, OUTCOMES, Conclusion
from recorder.errors import ChainMoved
from recorder.passkey import PasskeyAssertion, PasskeyEnrolment, user_verified
from server.clock import utc_iso
from server.errors import BadRequest, ChecklistBlocks, Conflict, PasskeyRequired
from server.inspection import checklists, inspections
from server.inspection.evidence_access import owned_inspection
from server.security import passkeys
from server.security.tokens import SessionToken
from server.services import Services
from server.store.models import Inspection

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConclusionRequest:
    outcome: str
    reason: str
    corrects: int | None
    draft: Any = None  # the challenge a passkey answered (conclusion/challenge's "draft")
    passkey: Any = None  # the browser's PublicKeyCredential JSON for it

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ConclusionRequest:
        unknown = sorted(set(body) - {"outcome", "reason", "corrects", "draft", "passkey"})
        if unknown:
            raise BadRequest(f"unknown field '{unknown[0]}'")
        outcome, reason, corrects = body.get("outcome"), body.get("reason"), body.get("corrects")
        if outcome not in OUTCOMES:
            raise BadRequest(f"field 'outcome' must be one of {', '.join(OUTCOMES)}")
        if not isinstance(reason, str) or not reason.strip():
            raise BadRequest("field 'reason' is required: say why, in a non-empty string")
        if len(reason) > MAX_REASON:
            raise BadRequest(
                f"field 'reason' must be at most {MAX_REASON} characters",
                field="reason",
                limit=MAX_REASON,
            )
        if corrects is not None and (
            isinstance(corrects, bool) or not isinstance(corrects, int) or corrects < 0
        ):
            raise BadRequest("field 'corrects' must be the chain seq of the earlier conclusion")
        if ("draft" in body) != ("passkey" in body):
            raise BadRequest("fields 'draft' and 'passkey' come together: the passkey's answer")
        return cls(outcome, reason.strip(), corrects, body.get("draft"), body.get("passkey"))

    def states(self, conclusion: Conclusion) -> bool:
        """Whether this request asks for what ``conclusion`` (signed earlier) says."""
        return (conclusion.outcome, conclusion.reason) == (self.outcome, self.reason)


@dataclass(frozen=True, slots=True)
class InspectorSignature:
    """The passkey that signed a conclusion beside the archive key."""

    enrolment: PasskeyEnrolment
    assertion: PasskeyAssertion

    def to_json(self) -> dict[str, Any]:
        return {
            "username": self.enrolment.username,
            "credential_id": self.enrolment.credential_id,
            "fingerprint": self.enrolment.fingerprint,
            "user_verified": user_verified(self.assertion),
        }


@dataclass(frozen=True, slots=True)
class SignedConclusion:
    conclusion: Conclusion
    signature: str
    key_fingerprint: str
    chain_seq: int
    passkey_mode: str
    inspector_signature: InspectorSignature | None

    def to_json(self) -> dict[str, Any]:
        inspection_id = self.conclusion.inspection_id
        signed_by = self.inspector_signature
        return {
            **self.conclusion.fields(),
            "signature": self.signature,
            "key_fingerprint": self.key_fingerprint,
            "chain_seq": self.chain_seq,
            "passkey_mode": self.passkey_mode,
            "inspector_signature": signed_by.to_json() if signed_by else None,
            "report_html_url": f"/api/inspections/{inspection_id}/report.html",
            "report_pdf_url": f"/api/inspections/{inspection_id}/report.pdf",
        }


PROBLEM_WORDS = {
    "unmarked": "not yet marked (未核查)",
    "fail": "marked 不符合 (fail)",
    "photos": "marked 符合 with too few photos",
}


async def _check_against_checklist(
    services: Services,
    inspection_id: str,
    template: checklists.ChecklistTemplate,
    request: ConclusionRequest,
) -> None:
    """A pass is refused while a required item is unmarked, an item is marked 不符合 or an item
    marked 符合 has fewer picked photos than it requires; a fail or a correction must name, in
    its reason, each item marked 不符合 (by its text or its id)."""
    marks = await checklists.marks_of(services, inspection_id)
    if request.outcome == "pass":
        blockers = checklists.pass_blockers(template, marks)
        if blockers:
            said = "; ".join(
                f"{b.item_id} {b.text}: {PROBLEM_WORDS[b.problem]}"
                + (f", {b.have} of {b.need} picked" if b.problem == "photos" else "")
                for b in blockers
            )
            raise ChecklistBlocks(
                f"a pass is refused while the checklist is not complete: {said}",
                items=",".join(b.item_id for b in blockers),
                problems=[b.to_json() for b in blockers],
            )
        return
    failing = [
        item for item in template.items if (m := marks.get(item.item_id)) and m.verdict == "fail"
    ]
    unnamed = [
        i for i in failing if i.text not in request.reason and i.item_id not in request.reason
    ]
    if unnamed:
        raise ChecklistBlocks(
            "the reason must name each item marked 不符合 (fail); it does not name: "
            + "; ".join(f"{i.item_id} {i.text}" for i in unnamed),
            items=",".join(i.item_id for i in unnamed),
            problems=[
                checklists.PassBlocker(i.item_id, i.text, "unnamed", 0, 0).to_json()
                for i in unnamed
            ],
        )


async def _drafted(
    services: Services, user: SessionToken, inspection_id: str, request: ConclusionRequest
) -> tuple[Inspection, Conclusion, checklists.ChecklistTemplate]:
    """The conclusion ``request`` asks for, as it would be signed now, with the checklist it is
    reached against; refused if the inspection's state or its checklist forbid it."""
    inspection = await owned_inspection(services, user, inspection_id)
    in_force = inspection.conclusion_seq
    if in_force is None and request.corrects is not None:
        raise Conflict("there is no conclusion to correct yet; leave out 'corrects'")
    if in_force is not None and request.corrects is None:
        raise Conflict(
            f"the inspection is already concluded (chain entry {in_force}); a correction"
            f" must say 'corrects': {in_force}"
        )
    if in_force is not None and request.corrects != in_force:
        raise Conflict(
            f"chain entry {request.corrects} is not the conclusion in force ({in_force})"
        )
    conclusion = Conclusion(
        inspection_id=inspection.inspection_id,
        outcome=request.outcome,
        reason=request.reason,
        by=user.username,
        at=utc_iso(services.clock.now()),
        refers_to=in_force,
    )
    # The checklist it was reached against, as the report shows it (templates change).
    template = await checklists.template_of(services, inspection)
    await _check_against_checklist(services, inspection.inspection_id, template, request)
    return inspection, conclusion, template


async def conclusion_challenge(
    services: Services,
    user: SessionToken,
    inspection_id: str,
    body: dict[str, Any],
    lock: asyncio.Lock,
) -> dict[str, Any]:
    """What the inspector's passkey is to sign: the conclusion as it will be chained, and the
    WebAuthn request whose challenge is the SHA-256 of its signed bytes. Refused as the
    conclusion itself would be (checklist, conclusion in force), before anyone is asked."""
    request = ConclusionRequest.parse(body)
    if request.passkey is not None:
        raise BadRequest("a challenge is asked without 'draft' and 'passkey'")
    async with lock:
        _, conclusion, _ = await _drafted(services, user, inspection_id, request)
    asked = await passkeys.assertion_request(services, user, conclusion.message())
    return {**asked, "conclusion": conclusion.fields()}


async def _inspector_signature(
    services: Services, user: SessionToken, request: ConclusionRequest
) -> tuple[Conclusion, InspectorSignature] | None:
    """The conclusion the request's passkey signed, checked; None when it carries none."""
    mode = services.settings.passkeys
    if request.passkey is None:
        if mode == "required":
            raise PasskeyRequired(
                "this deployment requires the inspector's passkey on every conclusion: ask"
                " for the challenge (POST …/conclusion/challenge) and answer it with 'draft'"
                " and 'passkey'"
            )
        return None
    if mode == "off":
        raise BadRequest("passkeys are off in this deployment; conclude without 'passkey'")
    pending, enrolment, assertion = await passkeys.take_signature(
        services, user, request.draft, request.passkey
    )
    try:
        signed: Conclusion | None = Conclusion.from_body(json.loads(pending.message)["conclusion"])
    except (ValueError, KeyError, TypeError):
        signed = None
    if signed is None or not request.states(signed):
        raise Conflict("the passkey signed another conclusion than this request states; sign again")
    return signed, InspectorSignature(enrolment, assertion)


async def conclude(
    services: Services,
    user: SessionToken,
    inspection_id: str,
    body: dict[str, Any],
    lock: asyncio.Lock,
) -> SignedConclusion:
    """Chain the signed conclusion, record it and end the inspection if it is still running.

    ``lock`` serialises conclusions in this process; the chain refuses a conclusion that does not
    follow the one in force (or is not the first), so two at once on two nodes cannot both be
    "the first" either. With a passkey
    the conclusion is the one it signed (its time is when it was drafted), its credential is
    chained in the case before its first use (``passkey_enrolled``), and the archive key signs
    the same conclusion beside it.
    """
    request = ConclusionRequest.parse(body)
    by_passkey = await _inspector_signature(services, user, request)
    async with lock:
        inspection, conclusion, template = await _drafted(services, user, inspection_id, request)
        if by_passkey is not None:
            signed_conclusion, inspector = by_passkey
            if (signed_conclusion.inspection_id, signed_conclusion.refers_to) != (
                conclusion.inspection_id,
                conclusion.refers_to,
            ):
                raise Conflict(
                    "the passkey signed a conclusion of another inspection or before the one"
                    " in force changed; sign again"
                )
            conclusion = signed_conclusion
            await _enrol(services, inspection.case_id, inspector.enrolment)
        signed = conclusion.signed_body(services.archive.signer)
        checklist = {
            "template_id": template.template_id,
            "version": template.version,
            "name": template.name,
            "items": [item.to_json() for item in template.items],
        }
        body_extra: dict[str, Any] = {"checklist": checklist}
        body_extra["passkey_mode"] = services.settings.passkeys
        if by_passkey is not None:
            body_extra["passkey"] = by_passkey[1].assertion.to_json()
        try:
            # Against the chain, not the index: on another node a conclusion may have been
            # chained a moment ago, and only one can be the first (or correct the one in force).
            entry = await services.archive.append(
                inspection.case_id,
                "conclusion",
                {**signed, **body_extra},
                follows=inspection.conclusion_seq,
            )
        except ChainMoved as moved:
            raise Conflict(
                f"another conclusion of this inspection was chained meanwhile (chain entry"
                f" {moved.last}): reload the inspection, then correct it if need be"
            ) from None
        await services.store.inspections.conclude(
            inspection.inspection_id,
            conclusion.outcome,
            conclusion.at,
            conclusion.reason,
            entry.seq,
        )
    logger.info(
        "inspection concluded",
        extra={
            "case_id": inspection.case_id,
            "inspection_id": inspection.inspection_id,
            "seq": entry.seq,
            "passkey": by_passkey is not None,
        },
    )
    ended_now = False
    if inspection.status == "active":
        with contextlib.suppress(Conflict):  # ended meanwhile by the End button
            await inspections.end_inspection(services, inspection.inspection_id, user.username)
            ended_now = True
    if not ended_now:
        await services.archive.checkpoint(inspection.case_id)  # signed now, not in 30 s
    return SignedConclusion(
        conclusion,
        signed["signature"],
        signed["key_fingerprint"],
        entry.seq,
        services.settings.passkeys,
        by_passkey[1] if by_passkey else None,
    )


async def _enrol(services: Services, case_id: str, enrolment: PasskeyEnrolment) -> None:
    """Chain the credential in this case before its first conclusion here (once per case;
    should the index lose the row, it is chained again, the same, which verifiers accept)."""
    if await services.store.cases.passkey_seq(case_id, enrolment.credential_id) is not None:
        return
    entry = await services.archive.append(case_id, "passkey_enrolled", enrolment.to_body())
    await services.store.cases.add_passkey(case_id, enrolment.credential_id, entry.seq)
