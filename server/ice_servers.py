"""The ``--ice-server`` URLs: STUN, or TURN with its credentials written into the URL
(``turn:USER:PASSWORD@host:3478?transport=udp``), split the way browsers and aiortc want them:
the URL without the credentials, the user name and password as fields of their own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

SCHEMES = ("stun:", "turn:", "turns:")


@dataclass(frozen=True, slots=True)
class IceServerSpec:
    url: str  # without credentials
    username: str | None = None
    credential: str | None = None

    def to_json(self, *, with_credentials: bool) -> dict[str, Any]:
        """As a page's ``RTCIceServer``. Credentials only for a participant who has joined:
        the unauthenticated ``/api/config`` must not hand out the relay's password."""
        if with_credentials and self.username is not None:
            return {"urls": self.url, "username": self.username, "credential": self.credential}
        return {"urls": self.url}


def parse_ice_server(text: str) -> IceServerSpec:
    """``ValueError`` naming what is wrong (an unknown scheme, credentials on STUN, a TURN user
    without a password, no host), never with the password in it."""
    scheme = next((s for s in SCHEMES if text.startswith(s)), None)
    if scheme is None:
        shown = text.rsplit("@", 1)[-1]
        raise ValueError(f"ICE server URL must start with stun:, turn: or turns:: {shown}")
    rest = text[len(scheme) :]
    username = credential = None
    if "@" in rest:
        userinfo, rest = rest.rsplit("@", 1)
        if scheme == "stun:":
            raise ValueError(f"a STUN URL carries no credentials: stun:…@{rest}")
        username, sep, password = userinfo.partition(":")
        if not username or not sep or not password:
            raise ValueError(f"TURN credentials must be USER:PASSWORD@host: {scheme}…@{rest}")
        username, credential = unquote(username), unquote(password)
    host = rest.split("?", 1)[0]
    if not host or host.startswith(":") or any(c in host for c in "/ @"):
        raise ValueError(f"ICE server URL names no usable host: {scheme}{rest}")
    if scheme != "stun:" and username is None:
        raise ValueError(f"a TURN URL needs USER:PASSWORD@ before the host: {scheme}{rest}")
    return IceServerSpec(scheme + rest, username, credential)
