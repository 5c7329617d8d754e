"""The one exception tree of the server: every failure a client can cause is a TakanError."""

from __future__ import annotations

from recorder.errors import ChainRefused

# A further field of an error's JSON answer: a number, a word, or a list of records.
Detail = int | str | list[dict[str, int | str]]


class TakanError(Exception):
    """A failure with a stable machine-readable code and an HTTP status; ``details`` are
    further fields of the JSON answer beside ``error`` and ``reason``: ``attempts_left``, or
    ``field`` (the request body's member at fault) and ``limit`` (the length it must not exceed)."""

    code = "error"
    status = 400

    def __init__(self, reason: str, **details: Detail) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


class BadRequest(TakanError):
    code = "bad_request"
    status = 400


class BadJson(TakanError):
    code = "bad_json"
    status = 400


class Unauthorized(TakanError):
    code = "unauthorized"
    status = 401


class Forbidden(TakanError):
    code = "forbidden"
    status = 403


class NotFound(TakanError):
    code = "not_found"
    status = 404


class Conflict(TakanError):
    code = "conflict"
    status = 409


class Fenced(TakanError, ChainRefused):
    """A write for an inspection this node no longer holds: another node took it over (a
    higher epoch) while this one was stalled."""

    status = 409
    code = "fenced"


class ChecklistBlocks(TakanError):
    """The conclusion contradicts the checklist: ``items`` names the items at fault (comma
    separated) and ``problems`` says, per item, ``{item_id, text, problem, have, need}`` with
    ``problem`` one of ``unmarked``, ``fail``, ``photos`` (a pass) or ``unnamed`` (a reason)."""

    code = "checklist_blocks_conclusion"
    status = 409


class PasskeyRequired(TakanError):
    """The deployment wants the inspector's passkey on every conclusion, and none was given."""

    code = "passkey_required"
    status = 409


class PasskeyRefused(TakanError):
    """The passkey's answer (a registration or a signature) does not check."""

    code = "passkey_refused"
    status = 400


class CaseFlagged(TakanError):
    """The case's chain holds entries Takan did not write (or lost some): it is not exported."""

    code = "case_flagged"
    status = 409


class UnsupportedMediaType(TakanError):
    code = "unsupported_media_type"
    status = 415


class RateLimited(TakanError):
    """Too many failed attempts: ``retry_after`` whole seconds, in the answer's body and in
    its ``Retry-After`` header."""

    code = "rate_limited"
    status = 429

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason, retry_after=retry_after)
        self.retry_after = retry_after
