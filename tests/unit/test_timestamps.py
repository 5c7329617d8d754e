"""RFC 3161 tokens over checkpoints and manifests: what a reply must be, and what verify says.

The replies are real ones, made by ``openssl ts -reply`` (tests/tsa_server.py), over the
documents of a case built with the recorder's own API (tests/unit/evidence_fixture.py).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from recorder import layout
from recorder.chain import ChainEntry
from recorder.errors import IntegrityError
from recorder.signing import Signer
from recorder.storage import LocalStorage
from recorder.timestamps import (
    TokenError,
    TsaTrust,
    build_query,
    check_token,
    load_tsa_trust,
    tsa_id,
)
from recorder.verify import verify_case
from server.cli.main import main
from server.cli.verify import run_verify
from tests.tsa_server import TsaCerts, make_tsa_certs, reply_now
from tests.unit.evidence_fixture import CaseBuilder, build_case, put
from tests.unit.test_verify import parse

CASE = "case-1"
TSA_URL = "http://tsa.test/stamp"


def trust_of(*certs: Path) -> TsaTrust:
    trust = load_tsa_trust(list(certs))
    assert trust is not None
    return trust


def stamp(
    builder: CaseBuilder, document_key: str, config: Path, over: bytes | None = None
) -> ChainEntry:
    """Ask the TSA of ``config`` for a token over the stored ``document_key`` (or over other
    bytes, ``over``) and chain it as Takan does."""
    document = builder.storage.get(document_key)
    reply = reply_now(config, build_query(document if over is None else over).der)
    token = check_token(reply, hashlib.sha256(over or document).digest(), None)
    key = layout.timestamp_key(CASE, tsa_id(TSA_URL), document_key)
    put(builder.storage, key, reply)
    return builder.append(
        "timestamp",
        {
            "document": document_key,
            "document_sha256": hashlib.sha256(document).hexdigest(),
            "tsa": TSA_URL,
            "gen_time": token.gen_time,
            "key": key,
            "sha256": hashlib.sha256(reply).hexdigest(),
            "size": len(reply),
        },
    )


@pytest.fixture
def config(tsa_certs: TsaCerts, tmp_path: Path) -> Path:
    return tsa_certs.config(tmp_path / "tsa")


@pytest.fixture
def stamped(tmp_path: Path, config: Path) -> CaseBuilder:
    """A case whose last checkpoint and both manifests carry tokens (chained after it)."""
    builder = build_case(LocalStorage(tmp_path / "archive"), Signer.generate(), CASE)
    builder.checkpoint_every = 10**9  # the tokens stay an unsigned tail
    last = layout.checkpoint_key(CASE, builder.checkpoint_seqs[-1])
    for key in (last, *builder.manifest_heads):
        stamp(builder, key, config)
    return builder


def root_of(builder: CaseBuilder) -> Path:
    assert isinstance(builder.storage, LocalStorage)
    return builder.storage.root


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return run_verify(parse(*argv), out), out.getvalue()


# what a reply must be


def test_a_granted_reply_is_a_checked_token_with_its_gen_time_and_signer(
    config: Path, tsa_certs: TsaCerts
) -> None:
    document = b'{"checkpoint":{}}'
    query = build_query(document)
    token = check_token(
        reply_now(config, query.der),
        hashlib.sha256(document).digest(),
        trust_of(tsa_certs.ca),
        nonce=query.nonce,
    )
    assert token.checked
    assert token.signer == "CN=Test TSA"
    assert token.signer_issuer == "CN=Test Root CA"
    assert token.gen_time.endswith("Z")
    assert token.policy == "1.3.6.1.4.1.99999.1"


def test_a_reply_over_other_bytes_or_to_another_request_is_refused(config: Path) -> None:
    query = build_query(b"other bytes")
    reply = reply_now(config, query.der)
    with pytest.raises(TokenError, match=r"message imprint is .* not the SHA-256"):
        check_token(reply, hashlib.sha256(b"the document").digest(), None)
    with pytest.raises(TokenError, match="nonce"):
        check_token(reply, hashlib.sha256(b"other bytes").digest(), None, nonce=query.nonce + 1)


def test_a_rejected_reply_is_refused_with_the_tsa_status(config: Path) -> None:
    with pytest.raises(TokenError, match=r"did not grant it: status 2 \(Bad request"):
        check_token(reply_now(config, b"not a query"), b"\0" * 32, None)
    with pytest.raises(TokenError, match="not a timestamp reply"):
        check_token(b"<html>502</html>", b"\0" * 32, None)


def test_a_token_whose_signature_was_changed_is_refused(config: Path, tsa_certs: TsaCerts) -> None:
    document = b"document"
    reply = bytearray(reply_now(config, build_query(document).der))
    reply[-5] ^= 0x01  # inside the ECDSA signature, the last field of the reply
    with pytest.raises(TokenError, match="does not verify against the given TSA certificates"):
        check_token(bytes(reply), hashlib.sha256(document).digest(), trust_of(tsa_certs.ca))


def test_a_token_no_given_certificate_covers_is_parsed_but_not_checked(
    config: Path, other_tsa_certs: TsaCerts
) -> None:
    document = b"document"
    reply = reply_now(config, build_query(document).der)
    token = check_token(reply, hashlib.sha256(document).digest(), trust_of(other_tsa_certs.ca))
    assert not token.checked
    assert not check_token(reply, hashlib.sha256(document).digest(), None).checked


def test_an_impostor_using_the_trusted_root_s_name_fails_the_signature_check(
    tmp_path: Path, tsa_certs: TsaCerts
) -> None:
    impostor = make_tsa_certs(tmp_path / "impostor")  # same names, other keys
    reply = reply_now(impostor.config(tmp_path / "w"), build_query(b"d").der)
    with pytest.raises(TokenError, match="does not verify"):
        check_token(reply, hashlib.sha256(b"d").digest(), trust_of(tsa_certs.ca))


def test_the_trust_needs_a_root_ca_and_names_a_bad_file(
    tsa_certs: TsaCerts, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="no root CA certificate"):
        load_tsa_trust([tsa_certs.tsa_cert])
    (tmp_path / "junk.pem").write_text("junk")
    with pytest.raises(ValueError, match=r"junk\.pem: not PEM certificates"):
        load_tsa_trust([tmp_path / "junk.pem"])
    with pytest.raises(ValueError, match=r"missing\.pem: cannot read"):
        load_tsa_trust([tmp_path / "missing.pem"])
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(tsa_certs.tsa_cert.read_bytes() + tsa_certs.ca.read_bytes())
    assert len(trust_of(bundle).tsa_certificates) == 1  # the TSA's own certificate: pinned


def test_token_keys_name_the_tsa_and_the_document_they_stamp() -> None:
    checkpoint = layout.checkpoint_key(CASE, 42)
    manifest = layout.manifest_key(CASE, "ab" * 16)
    tsa = tsa_id(TSA_URL)
    for document in (checkpoint, manifest):
        key = layout.timestamp_key(CASE, tsa, document)
        assert key.startswith(f"cases/{CASE}/timestamps/{tsa}/")
        assert layout.parse_timestamp_key(CASE, key) == (tsa, document)
        assert layout.parse_timestamp_key("case-2", key) is None
    assert layout.timestamp_key(CASE, tsa, checkpoint).endswith("/checkpoints/000000000042.tsr")
    with pytest.raises(ValueError, match="not a checkpoint or manifest"):
        layout.timestamp_key(CASE, tsa, layout.chain_entry_key(CASE, 1))


# what takan verify says


def test_tokens_verify_and_are_reported_with_gen_time_and_signer(
    stamped: CaseBuilder, tsa_certs: TsaCerts
) -> None:
    report = verify_case(stamped.storage, CASE, tsa_trust=trust_of(tsa_certs.ca))
    assert [t.stamps.split()[0] for t in report.timestamps] == [
        "checkpoint",
        "manifest",
        "manifest",
    ]
    assert all(t.checked and t.signer == "CN=Test TSA" for t in report.timestamps)
    assert report.unsigned_timestamps == 3
    code, out = run(
        CASE, "--storage", f"file://{root_of(stamped)}", "--tsa-cert", str(tsa_certs.ca)
    )
    assert code == 0, out
    last = stamped.checkpoint_seqs[-1]
    assert "timestamps   3 (all checked against --tsa-cert)" in out
    assert f"    checkpoint {last:012d} at 20" in out
    assert "Z by CN=Test TSA\n" in out


def test_tokens_no_tsa_cert_covers_are_said_to_be_not_checked(
    stamped: CaseBuilder, other_tsa_certs: TsaCerts
) -> None:
    root = f"file://{root_of(stamped)}"
    for extra in ([], ["--tsa-cert", str(other_tsa_certs.ca)]):
        code, out = run(CASE, "--storage", root, *extra)
        assert code == 0, out
        assert "timestamps   3 (0 checked against --tsa-cert, 3 not checked)" in out
        assert "NOT CHECKED: no --tsa-cert for its issuer CN=Test Root CA" in out


def test_a_changed_token_fails_naming_it(stamped: CaseBuilder) -> None:
    key = stamped.storage.list(f"cases/{CASE}/timestamps/")[0]
    path = root_of(stamped) / key
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as failed:
        verify_case(stamped.storage, CASE)
    assert failed.value.where == key
    assert failed.value.reason.startswith("SHA-256 is ")


def test_a_token_over_other_bytes_fails_naming_it(tmp_path: Path, config: Path) -> None:
    builder = build_case(LocalStorage(tmp_path / "archive"), Signer.generate(), CASE)
    document = layout.checkpoint_key(CASE, builder.checkpoint_seqs[-1])
    entry = stamp(builder, document, config, over=b"some other checkpoint")
    builder.checkpoint()
    with pytest.raises(IntegrityError) as failed:
        verify_case(builder.storage, CASE)
    assert failed.value.where == entry.body["key"]
    assert "message imprint is" in failed.value.reason


def test_a_token_for_a_checkpoint_that_is_not_there_fails_naming_it(
    tmp_path: Path, config: Path
) -> None:
    builder = build_case(LocalStorage(tmp_path / "archive"), Signer.generate(), CASE)
    document = layout.checkpoint_key(CASE, builder.checkpoint_seqs[0])  # an intermediate one
    entry = stamp(builder, document, config)
    builder.checkpoint()
    verify_case(builder.storage, CASE)
    (root_of(builder) / document).unlink()
    with pytest.raises(IntegrityError) as failed:
        verify_case(builder.storage, CASE)
    assert failed.value.where == entry.body["key"]
    assert failed.value.reason == f"stamps {document}, which is not stored"


def test_after_the_last_signature_only_timestamp_entries_may_follow(stamped: CaseBuilder) -> None:
    verify_case(stamped.storage, CASE)
    entry = stamped.append("joined", {"who": "applicant"})
    with pytest.raises(IntegrityError) as failed:
        verify_case(stamped.storage, CASE)
    assert failed.value.where == f"chain entry {entry.seq}"
    assert "not covered by a signed checkpoint" in failed.value.reason


def test_a_token_recorded_by_another_kind_of_entry_fails(stamped: CaseBuilder) -> None:
    key = stamped.storage.list(f"cases/{CASE}/timestamps/")[0]
    copy = key.replace(tsa_id(TSA_URL), tsa_id("http://other.test/"))
    data = stamped.storage.get(key)
    put(stamped.storage, copy, data)
    body = {"key": copy, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    entry = stamped.append("snapshot", body)
    stamped.checkpoint()
    with pytest.raises(IntegrityError) as failed:
        verify_case(stamped.storage, CASE)
    assert failed.value.where == f"chain entry {entry.seq}"
    assert failed.value.reason == f"records the timestamp token {copy} as snapshot"


def test_takan_serve_refuses_a_bad_tsa_url_or_certificate(
    tsa_certs: TsaCerts, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data", str(tmp_path / "data")]
    assert main(["serve", *data, "--tsa", "ftp://tsa.test/"]) == 2
    assert "TSA URL must start with http:// or https://" in capsys.readouterr().err
    assert main(["serve", *data, "--tsa-cert", str(tsa_certs.ca)]) == 2
    assert "--tsa-cert needs --tsa" in capsys.readouterr().err
    bad = ["--tsa", TSA_URL, "--tsa-cert", str(tsa_certs.tsa_cert)]
    assert main(["serve", *data, *bad]) == 2
    assert "no root CA certificate" in capsys.readouterr().err
    assert run(CASE, "--tsa-cert", str(tmp_path / "none.pem"))[0] == 2
    assert "--tsa-cert" in capsys.readouterr().err
