"""A conclusion signed with an inspector's passkey verifies offline, and any change is named."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from recorder.conclusion import Conclusion
from recorder.passkey import (
    PasskeyAssertion,
    PasskeyEnrolment,
    assertion_fault,
    b64url,
    challenge_of,
    from_b64url,
    user_verified,
)
from tests.soft_authenticator import SoftAuthenticator

ORIGIN = "https://takan.example.gov.cn"
RP_ID = "takan.example.gov.cn"


def conclusion(reason: str = "现场与申报一致") -> Conclusion:
    return Conclusion("0" * 32, "pass", reason, "inspector1", "2026-12-07T08:00:00.000Z", None)


def enrolled(device: SoftAuthenticator, username: str = "inspector1") -> PasskeyEnrolment:
    return PasskeyEnrolment(
        username=username,
        credential_id=b64url(device.credential_id),
        public_key=device.spki_b64,
        algorithm="ES256",
        rp_id=RP_ID,
        origin=ORIGIN,
        registered_at="2026-12-01T02:00:00.000Z",
    )


def signed(device: SoftAuthenticator, message: bytes, **overrides: Any) -> PasskeyAssertion:
    answer = device.get(b64url(challenge_of(message)), **overrides)
    return PasskeyAssertion(
        credential_id=answer["id"],
        authenticator_data=answer["response"]["authenticatorData"],
        client_data_json=answer["response"]["clientDataJSON"],
        signature=answer["response"]["signature"],
    )


@pytest.fixture
def device() -> SoftAuthenticator:
    return SoftAuthenticator(ORIGIN, RP_ID)


def test_the_inspectors_signature_over_the_conclusion_verifies(device: SoftAuthenticator) -> None:
    message = conclusion().message()
    assertion = signed(device, message)
    assert assertion_fault(enrolled(device), assertion, message) is None
    assert user_verified(assertion)
    assert enrolled(device).fingerprint.startswith("sha256:")


def test_a_signature_over_another_conclusion_is_refused(device: SoftAuthenticator) -> None:
    assertion = signed(device, conclusion("现场与申报一致").message())
    fault = assertion_fault(enrolled(device), assertion, conclusion("现场与申报不一致").message())
    assert fault == "the passkey signed another challenge than this conclusion's"


def flip(text: str, at: int = -3) -> str:
    raw = bytearray(from_b64url(text, "value"))
    raw[at] ^= 0x01
    return b64url(bytes(raw))


CHANGES: list[tuple[str, Callable[[PasskeyAssertion], PasskeyAssertion], str]] = [
    (
        "signature",
        lambda a: PasskeyAssertion(
            a.credential_id, a.authenticator_data, a.client_data_json, flip(a.signature, 10)
        ),
        "the passkey signature does not verify",
    ),
    (
        "counter",
        lambda a: PasskeyAssertion(
            a.credential_id, flip(a.authenticator_data, -1), a.client_data_json, a.signature
        ),
        "the passkey signature does not verify",
    ),
    (
        "padding",
        lambda a: PasskeyAssertion(
            a.credential_id, a.authenticator_data, a.client_data_json, a.signature + "="
        ),
        "the passkey assertion's signature is not unpadded base64url",
    ),
    (
        "credential",
        lambda a: PasskeyAssertion(
            b64url(b"another"), a.authenticator_data, a.client_data_json, a.signature
        ),
        "the passkey assertion is by credential YW5vdGhlcg, not the enrolled",
    ),
]


@pytest.mark.parametrize(("name", "change", "fault"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_changed_assertion_is_named(
    device: SoftAuthenticator,
    name: str,
    change: Callable[[PasskeyAssertion], PasskeyAssertion],
    fault: str,
) -> None:
    message = conclusion().message()
    got = assertion_fault(enrolled(device), change(signed(device, message)), message)
    assert got is not None
    assert got.startswith(fault)


def test_a_signature_made_for_another_site_or_relying_party_is_refused(
    device: SoftAuthenticator,
) -> None:
    message = conclusion().message()
    phished = signed(device, message, origin="https://takan.example.com")
    assert assertion_fault(enrolled(device), phished, message) == (
        f"the passkey signed for origin 'https://takan.example.com', not {ORIGIN}"
    )
    other_rp = signed(device, message, rp_id="example.com")
    assert assertion_fault(enrolled(device), other_rp, message) == (
        f"the passkey's authenticator data is for another relying party than {RP_ID}"
    )


def test_another_key_does_not_sign_for_the_enrolled_one(device: SoftAuthenticator) -> None:
    message = conclusion().message()
    impostor = SoftAuthenticator(ORIGIN, RP_ID, credential_id=device.credential_id)
    got = assertion_fault(enrolled(device), signed(impostor, message), message)
    assert got == "the passkey signature does not verify"


def test_an_enrolment_states_a_p256_key_its_credential_and_a_utc_time(
    device: SoftAuthenticator,
) -> None:
    body = enrolled(device).to_body()
    assert PasskeyEnrolment.from_body(body) == enrolled(device)
    ed25519 = Ed25519PrivateKey.generate().public_key()
    der = ed25519.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="P-256"):
        PasskeyEnrolment.from_body({**body, "public_key": base64.b64encode(der).decode()})
    with pytest.raises(ValueError, match="fields wrong"):
        PasskeyEnrolment.from_body({**body, "extra": 1})
    with pytest.raises(ValueError, match="UTC"):
        PasskeyEnrolment.from_body({**body, "registered_at": "yesterday"})
