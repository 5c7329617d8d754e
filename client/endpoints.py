"""From the link a person is given to where the WebSocket is and what ``hello`` carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from client.exceptions import UsageError

Role = Literal["applicant", "inspector"]

_WS_SCHEME = {"http": "ws", "https": "wss"}
_PAGE_OF_ROLE: dict[Role, str] = {"applicant": "join", "inspector": "inspect"}
_MAX_NAME = 64


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One participant's way in: the WebSocket URL and the credentials for ``hello``."""

    ws_url: str
    role: Role
    token: str
    inspection_id: str | None = None

    def __post_init__(self) -> None:
        if not self.token:
            raise UsageError("the token is empty")
        if self.role == "inspector" and not self.inspection_id:
            raise UsageError("an inspector endpoint needs an inspection id")

    def hello(self, name: str | None) -> dict[str, Any]:
        """The fields of the ``hello`` message (without ``v`` and ``type``)."""
        fields: dict[str, Any] = {"token": self.token}
        if self.inspection_id is not None:
            fields["inspection_id"] = self.inspection_id
        if name:
            fields["name"] = name[:_MAX_NAME]
        return fields


def applicant_endpoint(url: str) -> Endpoint:
    """``http(s)://host[:port][/prefix]/join/<invite_token>`` → the applicant's endpoint."""
    ws_url, token = _split(url, "applicant")
    return Endpoint(ws_url=ws_url, role="applicant", token=token)


def inspector_endpoint(url: str, token: str) -> Endpoint:
    """``http(s)://host[:port][/prefix]/inspect/<inspection_id>`` plus a bearer token."""
    ws_url, inspection_id = _split(url, "inspector")
    if not token.strip():
        raise UsageError("--token is empty")
    return Endpoint(
        ws_url=ws_url, role="inspector", token=token.strip(), inspection_id=inspection_id
    )


def _split(url: str, role: Role) -> tuple[str, str]:
    """The WebSocket URL next to the page, and the page's last path segment."""
    page = _PAGE_OF_ROLE[role]
    expected = f"http(s)://host:port/{page}/<{'invite token' if role == 'applicant' else 'id'}>"
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError as error:
        raise UsageError(f"malformed URL {url!r}: {error}") from None
    if parts.scheme not in _WS_SCHEME or not parts.hostname:
        raise UsageError(f"malformed URL {url!r}: expected {expected}")
    segments = parts.path.rstrip("/").split("/")
    if len(segments) < 3 or segments[-2] != page or not segments[-1]:
        raise UsageError(f"malformed URL {url!r}: expected {expected}")
    last = unquote(segments[-1])
    prefix = "/".join(segments[:-2])
    ws_url = urlunsplit((_WS_SCHEME[parts.scheme], parts.netloc, f"{prefix}/ws", "", ""))
    return ws_url, last
