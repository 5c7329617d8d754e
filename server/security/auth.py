"""Who is asking: bearer tokens and the session cookie, users, roles."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable

from aiohttp import web

from server.errors import Forbidden, Unauthorized
from server.security.passwords import check_password
from server.security.tokens import SessionToken, TokenError
from server.services import SERVICES, Services
from server.store.models import User

COOKIE_NAME = "takan_session"
ROLES = ("inspector", "auditor", "admin")


def bearer_or_cookie(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Authorization header must be 'Bearer <token>'")
        return value.strip()
    return request.cookies.get(COOKIE_NAME)


async def open_session(services: Services, token: str) -> SessionToken:
    now = services.clock.now()
    try:
        session = services.signer.open_session(token, now)
    except TokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    if not await services.store.users.session_is_live(session.session_id, int(now)):
        raise Unauthorized("token revoked or expired")
    return session


def is_invite(services: Services, token: str) -> bool:
    """Whether ``token`` is an applicant invite signed by this server (expired or not)."""
    try:
        # Expiry does not matter here: a signed invite names an applicant, live or not.
        services.signer.open_invite(token, now=0.0)
    except TokenError:
        return False
    return True


def requester(request: web.Request) -> tuple[str, str] | None:
    """``(by, role)`` of whoever the request's credentials name, for audit records: a user's
    name and role, ``("applicant", "applicant")`` for an invite token, None otherwise."""
    try:
        token = bearer_or_cookie(request)
    except Unauthorized:
        return None
    if not token:
        return None
    services = request.app[SERVICES]
    try:
        session = services.signer.open_session(token, services.clock.now())
    except TokenError:
        return ("applicant", "applicant") if is_invite(services, token) else None
    return session.username, session.role


async def current_user(request: web.Request, roles: Iterable[str] = ROLES) -> SessionToken:
    """The logged-in user, who must hold one of ``roles``. An applicant's invite token is
    refused with 403: it is a valid credential, just not for anything but the applicant's own."""
    token = bearer_or_cookie(request)
    if not token:
        raise Unauthorized("login required")
    services = request.app[SERVICES]
    try:
        session = await open_session(services, token)
    except Unauthorized:
        if is_invite(services, token):
            raise Forbidden("an applicant's invite token cannot be used here") from None
        raise
    allowed = tuple(roles)
    if session.role not in allowed:
        raise Forbidden(f"role '{session.role}' may not do this (needs {' or '.join(allowed)})")
    return session


async def login(services: Services, username: str, password: str) -> tuple[User, str, int]:
    """Check the password and issue a session token: (user, token, expires_at)."""
    store = services.store
    user = await store.users.by_name(username)
    # Hash even for an unknown user so response time does not reveal which usernames exist.
    stored = user.password_hash if user else "scrypt$16384$8$1$00$00"
    # scrypt takes tens of milliseconds by design: keep it off the event loop.
    if not await asyncio.to_thread(check_password, password, stored) or user is None:
        raise Unauthorized("invalid username or password")
    expires_at = int(services.clock.now()) + services.settings.session_ttl_s
    session_id = secrets.token_urlsafe(18)
    await store.users.add_session(session_id, user.id, expires_at)
    token = services.signer.sign_session(
        SessionToken(user.id, user.username, user.role, session_id, expires_at)
    )
    return user, token, expires_at
