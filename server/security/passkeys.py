"""Staff passkeys (WebAuthn): registering one, and asking one to sign a given message.

The ceremonies are py_webauthn's (attestation "none": the key is trusted because the signed-in
user registered it, not because of its maker); every assertion is then checked once more with
``recorder.passkey.assertion_fault``, the rule the offline verifiers apply, so that nothing is
chained that ``takan verify`` would refuse. Challenges live in this process for five minutes and
are used once.

Passkeys need a relying party ID, the host of the deployment's public URL: browsers refuse an IP
address there, so a deployment reached by IP (``make run``'s default) has none and says so.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn import (
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import decode_credential_public_key
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidCBORData,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from recorder.passkey import (
    ALGORITHM,
    PasskeyAssertion,
    PasskeyEnrolment,
    assertion_fault,
    b64url,
    challenge_of,
    from_b64url,
    key_fingerprint,
)
from server.clock import millis, utc_iso
from server.errors import BadRequest, Conflict, NotFound, PasskeyRefused
from server.security.tokens import SessionToken
from server.services import Services
from server.store.models import Passkey
from server.store.store import Store
from server.store.users import StoredChallenge

CHALLENGE_TTL_S = 300
TIMEOUT_MS = 120_000
MAX_LABEL = 60
MAX_PASSKEYS_PER_USER = 10
MAX_PENDING_PER_USER = 20
MAX_RESPONSE_MEMBER = 8192  # characters of one base64url member of a browser's answer


@dataclass(frozen=True, slots=True)
class RelyingParty:
    rp_id: str
    origin: str


@dataclass(frozen=True, slots=True)
class NoRelyingParty:
    """Why the deployment's public URL makes no relying party: ``code`` for the pages'
    string tables (``ip_address``, ``insecure``), ``reason`` in words."""

    code: str
    reason: str


def relying_party(base_url: str) -> RelyingParty | NoRelyingParty:
    """The relying party the public URL makes, or why it makes none."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return NoRelyingParty(
            "ip_address",
            f"passkeys need the system reached by a host name, not the IP address {host}"
            " (start it with --public-url http://localhost:PORT or the deployment's domain)",
        )
    if parts.scheme != "https" and host != "localhost":
        return NoRelyingParty(
            "insecure", f"passkeys need https (or http://localhost), not {parts.scheme}://{host}"
        )
    return RelyingParty(host, f"{parts.scheme}://{parts.netloc}")


@dataclass(frozen=True, slots=True)
class Pending:
    username: str
    purpose: str
    challenge: bytes
    message: bytes  # what the challenge is the SHA-256 of (b"" for a registration)


class Challenges:
    """Outstanding challenges, each used once, by its user, within its time. They are kept in
    the database: with several nodes, the browser's answer may reach another node than the one
    that asked."""

    def __init__(self, store: Store, wall: Callable[[], float]) -> None:
        self._store = store
        self._wall = wall

    def _ms(self, offset_s: float = 0.0) -> int:
        return millis(self._wall() + offset_s)

    async def issue(self, username: str, purpose: str, challenge: bytes, message: bytes) -> str:
        token = secrets.token_urlsafe(18)
        await self._store.users.add_challenge(
            token,
            StoredChallenge(username, purpose, challenge, message),
            self._ms(CHALLENGE_TTL_S),
            self._ms(),
            MAX_PENDING_PER_USER,
        )
        return token

    async def take(self, token: Any, username: str, purpose: str) -> Pending:
        if not isinstance(token, str) or not token:
            raise BadRequest("field 'draft' must name the challenge the passkey answered")
        stored = await self._store.users.take_challenge(token, self._ms())
        if stored is None or (stored.username, stored.purpose) != (username, purpose):
            raise Conflict(
                "this passkey challenge is unknown, used or expired (five minutes); ask again",
            )
        return Pending(stored.username, stored.purpose, stored.challenge, stored.message)


async def status(services: Services, user: SessionToken) -> dict[str, Any]:
    """The deployment's passkey mode, whether passkeys can work here (if not, why: ``off``,
    ``ip_address``, ``insecure``), and the user's own passkeys."""
    party = relying_party(services.settings.base_url)
    mode = services.settings.passkeys
    missing = (
        NoRelyingParty("off", "passkeys are off in this deployment")
        if mode == "off"
        else party
        if isinstance(party, NoRelyingParty)
        else None
    )
    return {
        "mode": mode,
        "available": missing is None,
        "unavailable": missing.code if missing else None,
        "unavailable_reason": missing.reason if missing else None,
        "rp_id": party.rp_id if isinstance(party, RelyingParty) else None,
        "passkeys": [
            _passkey_json(p) for p in await services.store.users.passkeys_of(user.user_id)
        ],
    }


def _passkey_json(passkey: Passkey) -> dict[str, Any]:
    return {
        "credential_id": passkey.credential_id,
        "label": passkey.label,
        "fingerprint": key_fingerprint(passkey.public_key_spki),
        "registered_at": passkey.registered_at,
        "last_used_at": passkey.last_used_at,
    }


def _party(services: Services) -> RelyingParty:
    if services.settings.passkeys == "off":
        raise Conflict("passkeys are off in this deployment (takan serve --passkeys)")
    party = relying_party(services.settings.base_url)
    if isinstance(party, NoRelyingParty):
        raise Conflict(party.reason)
    return party


async def registration_options(services: Services, user: SessionToken) -> dict[str, Any]:
    """``PublicKeyCredentialCreationOptions`` as JSON, and the token to answer them with."""
    party = _party(services)
    existing = await services.store.users.passkeys_of(user.user_id)
    if len(existing) >= MAX_PASSKEYS_PER_USER:
        raise Conflict(f"a user may register at most {MAX_PASSKEYS_PER_USER} passkeys")
    options = generate_registration_options(
        rp_id=party.rp_id,
        rp_name="Takan 远程踏勘",
        user_name=user.username,
        user_id=f"takan-user-{user.user_id}".encode(),
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=from_b64url(p.credential_id, "credential_id"))
            for p in existing
        ],
        supported_pub_key_algs=[COSEAlgorithmIdentifier.ECDSA_SHA_256],
    )
    token = await services.challenges.issue(user.username, "register", options.challenge, b"")
    return {"token": token, "options": _json(options_to_json(options))}


def _json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):  # pragma: no cover - py_webauthn writes an object
        raise TypeError("registration options are not a JSON object")
    return value


def _browser_answer(value: Any, field: str, members: tuple[str, ...]) -> dict[str, Any]:
    """A ``PublicKeyCredential.toJSON()`` answer, its sizes bounded before any parsing."""
    if not isinstance(value, dict) or not isinstance(value.get("response"), dict):
        raise BadRequest(f"field '{field}' must be the passkey's answer (PublicKeyCredential JSON)")
    for name in ("id", "rawId"):
        if not isinstance(value.get(name), str) or len(value[name]) > MAX_RESPONSE_MEMBER:
            raise BadRequest(f"field '{field}.{name}' must be a base64url string", field=field)
    for name in members:
        member = value["response"].get(name)
        if not isinstance(member, str) or len(member) > MAX_RESPONSE_MEMBER:
            raise BadRequest(
                f"field '{field}.response.{name}' must be a base64url string of at most"
                f" {MAX_RESPONSE_MEMBER} characters",
                field=field,
                limit=MAX_RESPONSE_MEMBER,
            )
    return value


async def register(services: Services, user: SessionToken, body: dict[str, Any]) -> dict[str, Any]:
    """Check the browser's answer to the creation options and keep the credential."""
    unknown = sorted(set(body) - {"token", "label", "credential"})
    if unknown:
        raise BadRequest(f"unknown field '{unknown[0]}'")
    label = body.get("label")
    if not isinstance(label, str) or not label.strip():
        raise BadRequest("field 'label' is required: name the device (办公电脑)", field="label")
    if len(label) > MAX_LABEL:
        raise BadRequest(
            f"field 'label' must be at most {MAX_LABEL} characters", field="label", limit=MAX_LABEL
        )
    credential = _browser_answer(
        body.get("credential"), "credential", ("clientDataJSON", "attestationObject")
    )
    party = _party(services)
    pending = await services.challenges.take(body.get("token"), user.username, "register")
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=pending.challenge,
            expected_rp_id=party.rp_id,
            expected_origin=party.origin,
            supported_pub_key_algs=[COSEAlgorithmIdentifier.ECDSA_SHA_256],
        )
        spki = _spki(verified.credential_public_key)
    except (InvalidRegistrationResponse, InvalidCBORData, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRefused(f"the passkey's registration does not check: {exc}") from exc
    credential_id = b64url(verified.credential_id)
    if await services.store.users.passkey(credential_id) is not None:
        raise Conflict("this passkey is registered already")
    passkey = Passkey(
        credential_id=credential_id,
        user_id=user.user_id,
        label=label.strip(),
        public_key_cose=verified.credential_public_key,
        public_key_spki=spki,
        rp_id=party.rp_id,
        origin=party.origin,
        sign_count=verified.sign_count,
        registered_at=utc_iso(services.clock.now()),
        last_used_at=None,
    )
    await services.store.users.add_passkey(passkey)
    return _passkey_json(passkey)


def _spki(cose_key: bytes) -> str:
    """The COSE key as base64 SubjectPublicKeyInfo DER, the form verifiers import."""
    decoded = decode_credential_public_key(cose_key)
    x, y = getattr(decoded, "x", None), getattr(decoded, "y", None)
    if not isinstance(x, bytes) or not isinstance(y, bytes):
        raise ValueError(f"the credential's key is not {ALGORITHM}")
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
    )
    der = numbers.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def enrolment_of(passkey: Passkey, username: str) -> PasskeyEnrolment:
    """What a ``passkey_enrolled`` chain entry states of ``passkey``."""
    return PasskeyEnrolment(
        username=username,
        credential_id=passkey.credential_id,
        public_key=passkey.public_key_spki,
        algorithm=ALGORITHM,
        rp_id=passkey.rp_id,
        origin=passkey.origin,
        registered_at=passkey.registered_at,
    )


async def assertion_request(
    services: Services, user: SessionToken, message: bytes
) -> dict[str, Any]:
    """Ask the user's passkeys to sign ``message`` (under the challenge SHA-256(message)): the
    request options, and the token that names it until it is answered."""
    party = _party(services)
    passkeys = await services.store.users.passkeys_of(user.user_id)
    if not passkeys:
        raise Conflict("you have no passkey: register one on the dashboard (工作台)")
    challenge = challenge_of(message)
    token = await services.challenges.issue(user.username, "sign", challenge, message)
    return {
        "draft": token,
        "options": {
            "challenge": b64url(challenge),
            "rpId": party.rp_id,
            "timeout": TIMEOUT_MS,
            "userVerification": "preferred",
            "allowCredentials": [{"type": "public-key", "id": p.credential_id} for p in passkeys],
        },
    }


async def take_signature(
    services: Services, user: SessionToken, token: Any, answer: Any
) -> tuple[Pending, PasskeyEnrolment, PasskeyAssertion]:
    """The pending request ``token`` names, answered by one of the user's passkeys."""
    credential = _browser_answer(
        answer, "passkey", ("clientDataJSON", "authenticatorData", "signature")
    )
    pending = await services.challenges.take(token, user.username, "sign")
    party = _party(services)
    passkey = await services.store.users.passkey(credential["id"])
    if passkey is None or passkey.user_id != user.user_id:
        raise NotFound("this passkey is not one of yours")
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=pending.challenge,
            expected_rp_id=party.rp_id,
            expected_origin=party.origin,
            credential_public_key=passkey.public_key_cose,
            credential_current_sign_count=passkey.sign_count,
        )
    except (InvalidAuthenticationResponse, InvalidCBORData, ValueError, KeyError) as exc:
        raise PasskeyRefused(f"the passkey's signature does not check: {exc}") from exc
    response = credential["response"]
    assertion = PasskeyAssertion(
        credential_id=passkey.credential_id,
        authenticator_data=response["authenticatorData"],
        client_data_json=response["clientDataJSON"],
        signature=response["signature"],
    )
    enrolment = enrolment_of(passkey, user.username)
    fault = assertion_fault(enrolment, assertion, pending.message)
    if fault is not None:  # py_webauthn accepted what takan verify would refuse
        raise PasskeyRefused(fault)
    await services.store.users.passkey_used(
        passkey.credential_id, verified.new_sign_count, utc_iso(services.clock.now())
    )
    return pending, enrolment, assertion
