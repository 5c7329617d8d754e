"""The receipt's QR code: the receipt itself while it fits version 25, else its URL and hash;
either way a QR decoder reads back exactly that."""

from __future__ import annotations

import dataclasses
import io
import os

import cv2
import numpy as np
import pytest
import segno

from recorder.receipt import Receipt, ReceiptTimestamp, SignedReceipt, sign_receipt
from recorder.signing import Signer
from server.inspection.receipts import QR_ERROR, QR_MAX_VERSION, qr_content

INSPECTION = "0123456789abcdef0123456789abcdef"
URL = f"https://takan.example.cn/api/inspections/{INSPECTION}/receipt"


def receipt(signer: Signer, case_id: str) -> SignedReceipt:
    return sign_receipt(
        signer,
        Receipt(
            case_id=case_id,
            inspection_id=INSPECTION,
            manifest_key=f"cases/{case_id}/inspections/{INSPECTION}/manifest.json",
            manifest_sha256="ab" * 32,
            chain_head_seq=123_456,
            chain_head="cd" * 32,
            started_at="2026-03-01T09:00:00.000Z",
            ended_at="2026-03-01T09:31:12.345Z",
            clock="server-system-clock",
            issued_at="2026-03-01T09:31:12.400Z",
            key_fingerprint=signer.fingerprint,
        ),
    )


def decoded(content: bytes | str) -> bytes:
    qr = segno.make(content, error=QR_ERROR, micro=False)
    assert isinstance(qr.version, int)
    assert qr.version <= QR_MAX_VERSION
    png = io.BytesIO()
    qr.save(png, kind="png", scale=4, border=4)
    image = cv2.imdecode(np.frombuffer(png.getvalue(), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert image is not None
    text, _, _ = cv2.QRCodeDetectorAruco().detectAndDecode(image)
    return str(text).encode("utf-8")


@pytest.mark.parametrize("case_id", ["CASE-0001", "C" * 64])
def test_receipt_without_a_token_is_in_its_qr_code_whole(case_id: str) -> None:
    signed = receipt(Signer.generate(), case_id)
    content = qr_content(signed, URL)
    assert content == signed.to_bytes()
    assert decoded(content) == signed.to_bytes()


def test_receipt_with_a_token_puts_its_url_and_sha256_in_the_qr_code() -> None:
    signer = Signer.generate()
    signed = receipt(signer, "CASE-0001")
    stamp = ReceiptTimestamp.of("cases/CASE-0001/timestamps/m.tsr", os.urandom(1200))
    with_token = sign_receipt(signer, dataclasses.replace(signed.receipt, timestamp=stamp))
    content = qr_content(with_token, URL)
    assert content == f"{URL}#sha256={with_token.sha256}"
    assert decoded(content) == content.encode()
