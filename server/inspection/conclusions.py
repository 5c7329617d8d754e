"""The conclusion: pass, fail or needs correction, with a reason, signed by the server key.

It is chained, indexed on the inspection, and ends the inspection (the recording closes and the
manifest is signed). It is final: a later correction is a new signed entry whose ``refers_to``
names the chain seq of the conclusion it replaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from recorder.conclusion import MAX_REASON, OUTCOMES, Conclusion
from server.clock import utc_iso
from server.errors import BadRequest, ChecklistBlocks, Conflict
from server.inspection import checklists, inspections
from server.inspection.evidence_access import owned_inspection
from server.security.tokens import SessionToken
from server.services import Services

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConclusionRequest:
    outcome: str
    reason: str
    corrects: int | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ConclusionRequest:
        unknown = sorted(set(body) - {"outcome", "reason", "corrects"})
        if unknown:
            raise BadRequest(f"unknown field '{unknown[0]}'")
        outcome, reason, corrects = body.get("outcome"), body.get("reason"), body.get("corrects")
        if outcome not in OUTCOMES:
            raise BadRequest(f"field 'outcome' must be one of {', '.join(OUTCOMES)}")
        if not isinstance(reason, str) or not reason.strip():
            raise BadRequest("field 'reason' is required: say why, in a non-empty string")
        if len(reason) > MAX_REASON:
            raise BadRequest(f"field 'reason' must be at most {MAX_REASON} characters")
        if corrects is not None and (
            isinstance(corrects, bool) or not isinstance(corrects, int) or corrects < 0
        ):
            raise BadRequest("field 'corrects' must be the chain seq of the earlier conclusion")
        return cls(outcome, reason.strip(), corrects)


@dataclass(frozen=True, slots=True)
class SignedConclusion:
    conclusion: Conclusion
    signature: str
    key_fingerprint: str
    chain_seq: int

    def to_json(self) -> dict[str, Any]:
        inspection_id = self.conclusion.inspection_id
        return {
            **self.conclusion.fields(),
            "signature": self.signature,
            "key_fingerprint": self.key_fingerprint,
            "chain_seq": self.chain_seq,
            "report_html_url": f"/api/inspections/{inspection_id}/report.html",
            "report_pdf_url": f"/api/inspections/{inspection_id}/report.pdf",
        }


PROBLEM_WORDS = {
    "unmarked": "not yet marked (未核查)",
    "fail": "marked 不符合 (fail)",
    "photos": "marked 符合 with too few photos",
}


def _check_against_checklist(
    services: Services,
    inspection_id: str,
    template: checklists.ChecklistTemplate,
    request: ConclusionRequest,
) -> None:
    """A pass is refused while a required item is unmarked, an item is marked 不符合 or an item
    marked 符合 has fewer picked photos than it requires; a fail or a correction must name, in
    its reason, each item marked 不符合 (by its text or its id)."""
    marks = checklists.marks_of(services, inspection_id)
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


async def conclude(
    services: Services,
    user: SessionToken,
    inspection_id: str,
    body: dict[str, Any],
    lock: asyncio.Lock,
) -> SignedConclusion:
    """Chain the signed conclusion, record it and end the inspection if it is still running.

    ``lock`` serialises conclusions, so two at once cannot both be "the first".
    """
    request = ConclusionRequest.parse(body)
    async with lock:
        inspection = owned_inspection(services, user, inspection_id)
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
        template = checklists.template_of(services, inspection)
        _check_against_checklist(services, inspection.inspection_id, template, request)
        signed = conclusion.signed_body(services.archive.signer)
        checklist = {
            "template_id": template.template_id,
            "version": template.version,
            "name": template.name,
            "items": [item.to_json() for item in template.items],
        }
        entry = await services.archive.append(
            inspection.case_id, "conclusion", {**signed, "checklist": checklist}
        )
        services.db.conn.execute(
            "UPDATE inspections SET outcome = ?, concluded_at = ?, conclusion_reason = ?,"
            " conclusion_seq = ? WHERE inspection_id = ?",
            (
                conclusion.outcome,
                conclusion.at,
                conclusion.reason,
                entry.seq,
                inspection.inspection_id,
            ),
        )
    logger.info(
        "inspection concluded",
        extra={
            "case_id": inspection.case_id,
            "inspection_id": inspection.inspection_id,
            "seq": entry.seq,
        },
    )
    ended_now = False
    if inspection.status == "active":
        with contextlib.suppress(Conflict):  # ended meanwhile by the End button
            await inspections.end_inspection(services, inspection.inspection_id, user.username)
            ended_now = True
    if not ended_now:
        await services.archive.checkpoint(inspection.case_id)  # signed now, not in 30 s
    return SignedConclusion(conclusion, signed["signature"], signed["key_fingerprint"], entry.seq)
