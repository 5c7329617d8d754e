"""RFC 3161 timestamps over signed checkpoints and manifests: requests, replies, their checks.

A timestamp authority (TSA) signs "these SHA-256 bytes existed at genTime"; the stored object is
the TSA's whole reply (a ``TimeStampResp``), chained by an entry of kind ``timestamp`` whose body
is a ``TimestampRecord``. A token authenticates itself: its message imprint must be the SHA-256 of
exactly the stored document it names, and its CMS signature must chain to a TSA certificate the
verifier trusts. So a ``timestamp`` entry is the one kind a verifier accepts after the last
signed checkpoint, and a new one never calls for a checkpoint (docs/archive.md, "Timestamps").

Pure but for ``load_tsa_trust`` (it reads the certificate files it is given).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from recorder import layout
from recorder.chain import ChainEntry, chain_where
from recorder.errors import IntegrityError

TIMESTAMP_KIND = "timestamp"
TIMESTAMP_FAILED_KIND = "timestamp_failed"
TIMESTAMP_RESUMED_KIND = "timestamp_resumed"
# Kinds a checkpoint need not cover: new entries of these kinds never call for one, and a
# verifier accepts them after the last signature (each token is checked on its own).
UNSIGNED_TAIL_KINDS = frozenset({TIMESTAMP_KIND})
SHA256_OID = x509.ObjectIdentifier("2.16.840.1.101.3.4.2.1")
MAX_REPLY_BYTES = 64 * 1024


class TokenError(ValueError):
    """A timestamp reply that is not a granted, well-formed token over the expected bytes."""


class TsaUnavailable(Exception):
    """The TSA could not be reached or did not answer with a timestamp reply."""


def tsa_id(url: str) -> str:
    """The TSA's name in object keys: the first 16 hex digits of SHA-256 of its URL."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def gen_time_iso(moment: datetime) -> str:
    """``2026-03-01T09:00:30Z`` (with the token's fraction digits, if any), UTC."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


@dataclass(frozen=True, slots=True)
class TimestampQuery:
    """A request to POST to a TSA (``application/timestamp-query``) and the nonce it carries."""

    der: bytes
    nonce: int


def build_query(document: bytes) -> TimestampQuery:
    """A SHA-256 request over ``document`` with a fresh nonce, asking for the TSA certificate."""
    request = TimestampRequestBuilder().data(document).hash_algorithm(HashAlgorithm.SHA256).build()
    nonce = request.nonce
    if nonce is None:  # pragma: no cover - the builder always sets one
        raise AssertionError("timestamp request without a nonce")
    return TimestampQuery(request.as_bytes(), nonce)


@dataclass(frozen=True, slots=True)
class TsaTrust:
    """The certificates a token may chain to: roots (self-signed CAs), intermediates, and TSA
    certificates (a token signed by one of those must be signed by exactly that certificate)."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    tsa_certificates: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        if not self.roots:
            raise ValueError(
                "no CA certificate: give the TSA's root CA certificate (a TSA certificate alone"
                " cannot anchor its chain)"
            )

    @classmethod
    def from_pem(cls, files: Iterable[tuple[str, bytes]]) -> TsaTrust:
        """From PEM files given as ``(name, contents)``; ValueError naming a bad file."""
        roots: list[x509.Certificate] = []
        intermediates: list[x509.Certificate] = []
        leaves: list[x509.Certificate] = []
        names = []
        for name, data in files:
            names.append(name)
            try:
                certificates = x509.load_pem_x509_certificates(data)
            except ValueError as exc:
                raise ValueError(f"{name}: not PEM certificates: {exc}") from exc
            for certificate in certificates:
                if not _is_ca(certificate):
                    leaves.append(certificate)
                elif certificate.issuer == certificate.subject:
                    roots.append(certificate)
                else:
                    intermediates.append(certificate)
        if not roots:
            raise ValueError(
                f"{', '.join(names)}: no root CA certificate (self-signed, CA:TRUE); a TSA"
                " certificate alone cannot anchor its chain"
            )
        return cls(tuple(roots), tuple(intermediates), tuple(leaves))

    def covers(self, response: TimeStampResponse) -> bool:
        """Whether the token's signer is one of these certificates or issued under one of them
        (by name, through the certificates the token carries): only then can it be checked."""
        issuer, serial = _signer_id(response)
        if self._pinned(issuer, serial) is not None:
            return True
        subjects = {c.subject for c in (*self.roots, *self.intermediates)}
        carried = {c.subject: c for c in _carried(response) if c.issuer != c.subject}
        seen: set[x509.Name] = set()
        name: x509.Name | None = issuer
        while name is not None and name not in seen:
            if name in subjects:
                return True
            seen.add(name)
            above = carried.get(name)
            name = above.issuer if above is not None else None
        return False

    def check(self, response: TimeStampResponse, digest: bytes) -> None:
        """TokenError unless the token's signature chains to these certificates (valid at its
        genTime, with a critical timeStamping EKU) over ``digest``."""
        issuer, serial = _signer_id(response)
        verifier = VerifierBuilder(
            tsa_certificate=self._pinned(issuer, serial),
            intermediates=list(self.intermediates),
            roots=list(self.roots),
        ).build()
        try:
            verifier.verify(response, digest)
        except VerificationError as exc:
            raise TokenError(
                f"its signature does not verify against the given TSA certificates: {_short(exc)}"
            ) from exc

    def _pinned(self, issuer: x509.Name, serial: int) -> x509.Certificate | None:
        for certificate in self.tsa_certificates:
            if certificate.issuer == issuer and certificate.serial_number == serial:
                return certificate
        return None


def load_tsa_trust(paths: Sequence[Path]) -> TsaTrust | None:
    """The trust of ``--tsa-cert`` files (None for none); ValueError naming a bad file."""
    if not paths:
        return None
    files = []
    for path in paths:
        try:
            files.append((str(path), path.read_bytes()))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read: {exc.strerror}") from exc
    return TsaTrust.from_pem(files)


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _short(exc: Exception) -> str:
    """A library error without the OpenSSL error stack it may drag along."""
    return str(exc).split(": ErrorStack(")[0].split("\n")[0]


def _signer_id(response: TimeStampResponse) -> tuple[x509.Name, int]:
    signers = list(response.signed_data.signer_infos)
    if len(signers) != 1:
        raise TokenError(f"the token has {len(signers)} signers, not one")
    return signers[0].issuer, signers[0].serial_number


def _carried(response: TimeStampResponse) -> list[x509.Certificate]:
    certificates = []
    for der in response.signed_data.certificates:
        try:
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise TokenError(f"the token carries a malformed certificate: {exc}") from exc
    return certificates


@dataclass(frozen=True, slots=True)
class Token:
    """What a granted timestamp reply says. ``signer``: the signing certificate's subject (or its
    issuer and serial when the token does not carry it). ``checked``: its signature was checked
    against trusted TSA certificates (not merely parsed)."""

    gen_time: str
    serial_number: int
    policy: str
    signer: str
    signer_issuer: str
    checked: bool


def check_token(
    reply: bytes, digest: bytes, trust: TsaTrust | None, nonce: int | None = None
) -> Token:
    """The token in a TSA ``reply``; TokenError unless it is granted, a SHA-256 imprint equal
    to ``digest`` (and ``nonce``, if given) and, when ``trust`` covers its signer, signed by it."""
    if len(reply) > MAX_REPLY_BYTES:
        raise TokenError(f"the reply is {len(reply)} bytes, more than {MAX_REPLY_BYTES}")
    try:
        response = decode_timestamp_response(reply)
    except ValueError as exc:
        raise TokenError(f"not a timestamp reply: {_short(exc)}") from exc
    if response.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        said = "; ".join(response.status_string) or "no reason given"
        raise TokenError(f"the TSA did not grant it: status {response.status} ({said})")
    try:
        info = response.tst_info
        imprint = info.message_imprint
        algorithm, message = imprint.hash_algorithm, imprint.message
        gen_time, serial, policy = info.gen_time, info.serial_number, info.policy
        token_nonce = info.nonce
    except ValueError as exc:
        raise TokenError(f"not a timestamp token: {_short(exc)}") from exc
    if algorithm != SHA256_OID:
        raise TokenError(f"its message imprint is by {algorithm.dotted_string}, not SHA-256")
    if message != digest:
        raise TokenError(
            f"its message imprint is {message.hex()}, not the SHA-256 of the stamped document"
            f" ({digest.hex()})"
        )
    if nonce is not None and token_nonce != nonce:
        raise TokenError(f"its nonce is {token_nonce}, not the request's {nonce}")
    issuer, serial_of_signer = _signer_id(response)
    carried = _carried(response)
    signer_cert = next(
        (c for c in carried if c.issuer == issuer and c.serial_number == serial_of_signer), None
    )
    if signer_cert is not None:
        _check_purpose(signer_cert)
    signer = (
        signer_cert.subject.rfc4514_string()
        if signer_cert is not None
        else f"serial {serial_of_signer} of {issuer.rfc4514_string()}"
    )
    checked = trust is not None and trust.covers(response)
    if checked and trust is not None:
        trust.check(response, digest)
    return Token(
        gen_time=gen_time_iso(gen_time),
        serial_number=serial,
        policy=policy.dotted_string,
        signer=signer,
        signer_issuer=issuer.rfc4514_string(),
        checked=checked,
    )


def _check_purpose(certificate: x509.Certificate) -> None:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound as exc:
        raise TokenError("its signing certificate has no extended key usage") from exc
    if ExtendedKeyUsageOID.TIME_STAMPING not in usage.value:
        raise TokenError("its signing certificate is not for time stamping")


# the chain entry


@dataclass(frozen=True, slots=True)
class TimestampRecord:
    """The body of a ``timestamp`` entry: which document the token at ``key`` stamps."""

    document: str
    document_sha256: str
    tsa: str
    gen_time: str
    key: str
    sha256: str
    size: int

    MEMBERS = frozenset({"document", "document_sha256", "tsa", "gen_time", "key", "sha256", "size"})

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> TimestampRecord:
        if set(body) != cls.MEMBERS:
            raise ValueError(f"members must be exactly {', '.join(sorted(cls.MEMBERS))}")
        text = {k: body[k] for k in cls.MEMBERS - {"size"}}
        if not all(isinstance(v, str) for v in text.values()):
            raise ValueError("every member but size must be a string")
        size = body["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError("size must be a non-negative integer")
        layout.check_hex64(body["document_sha256"], "document_sha256")
        layout.check_hex64(body["sha256"], "sha256")
        return cls(size=size, **text)


@dataclass(frozen=True, slots=True)
class VerifiedTimestamp:
    """A token that passed: what ``takan verify`` reports of it."""

    key: str
    document: str
    gen_time: str
    signer: str
    signer_issuer: str
    checked: bool
    seq: int  # its chain entry
    stamps: str  # ``checkpoint 000000000042`` or ``manifest <inspection_id>``


def verify_timestamps(
    case_id: str,
    entries: Sequence[ChainEntry],
    documents: Mapping[str, bytes],
    read: Callable[[str], bytes],
    trust: TsaTrust | None,
) -> list[VerifiedTimestamp]:
    """Check every ``timestamp`` entry's token against the stored document it names; a token
    key recorded by any other kind of entry fails. ``documents``: the stored checkpoints and
    manifests (key → bytes); ``read``: a token's stored bytes (already checked against its
    entry). IntegrityError naming the token's key (or the entry) on the first failure."""
    found = []
    for entry in entries:
        key = entry.body.get("key")
        is_token_key = isinstance(key, str) and layout.parse_timestamp_key(case_id, key)
        if entry.kind != TIMESTAMP_KIND:
            if is_token_key:
                raise IntegrityError(
                    chain_where(entry.seq), f"records the timestamp token {key} as {entry.kind}"
                )
            continue
        found.append(_verify_one(case_id, entry, documents, read, trust))
    return found


def _verify_one(
    case_id: str,
    entry: ChainEntry,
    documents: Mapping[str, bytes],
    read: Callable[[str], bytes],
    trust: TsaTrust | None,
) -> VerifiedTimestamp:
    where = chain_where(entry.seq)
    try:
        record = TimestampRecord.from_json(entry.body)
    except ValueError as exc:
        raise IntegrityError(where, f"bad timestamp record: {exc}") from exc
    parsed = layout.parse_timestamp_key(case_id, record.key)
    if parsed is None:
        raise IntegrityError(where, f"{record.key} is not a timestamp token key of this case")
    key = record.key
    if parsed[1] != record.document:
        raise IntegrityError(
            key, f"is the token of {parsed[1]}; chain entry {entry.seq} says {record.document}"
        )
    document = documents.get(record.document)
    if document is None:
        raise IntegrityError(key, f"stamps {record.document}, which is not stored")
    digest = hashlib.sha256(document).digest()
    if digest.hex() != record.document_sha256:
        raise IntegrityError(
            key,
            f"chain entry {entry.seq} says it stamps {record.document} with SHA-256"
            f" {record.document_sha256}; that object's is {digest.hex()}",
        )
    try:
        token = check_token(read(key), digest, trust)
    except TokenError as exc:
        raise IntegrityError(key, str(exc)) from exc
    if token.gen_time != record.gen_time:
        raise IntegrityError(
            key, f"genTime is {token.gen_time}; chain entry {entry.seq} recorded {record.gen_time}"
        )
    seq = layout.parse_checkpoint_key(case_id, record.document)
    stamps = (
        f"checkpoint {seq:012d}"
        if seq is not None
        else f"manifest {layout.parse_manifest_key(case_id, record.document)}"
    )
    return VerifiedTimestamp(
        key=key,
        document=record.document,
        gen_time=token.gen_time,
        signer=token.signer,
        signer_issuer=token.signer_issuer,
        checked=token.checked,
        seq=entry.seq,
        stamps=stamps,
    )
