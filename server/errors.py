"""The one exception tree of the server: every failure a client can cause is a TakanError."""

from __future__ import annotations


class TakanError(Exception):
    """A failure with a stable machine-readable code and an HTTP status; ``field`` names the
    request body's member at fault (a form shows the reason beside it), ``limit`` the length it
    must not exceed."""

    code = "error"
    status = 400

    def __init__(self, reason: str, *, field: str | None = None, limit: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.limit = limit

    def to_json(self) -> dict[str, str | int]:
        body: dict[str, str | int] = {"error": self.code, "reason": self.reason}
        if self.field is not None:
            body["field"] = self.field
        if self.limit is not None:
            body["limit"] = self.limit
        return body


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


class CaseFlagged(TakanError):
    """The case's chain holds entries Takan did not write (or lost some): it is not exported."""

    code = "case_flagged"
    status = 409


class UnsupportedMediaType(TakanError):
    code = "unsupported_media_type"
    status = 415


class RateLimited(TakanError):
    code = "rate_limited"
    status = 429

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
