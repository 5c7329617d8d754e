"""The pages' case verifier (web/js/case-verify.js) in Chromium, fed an archive on disk, beside
``takan verify`` on the same archive: what each says (None for intact, else where and why).

The archive is served as the pages read one (a listing of the case's files and each file's
bytes) by a small HTTP server on 127.0.0.1 whose root a test points at the copy it changed.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from playwright.sync_api import Page

from recorder.errors import IntegrityError
from recorder.receipt import parse_receipt
from recorder.storage import LocalStorage
from recorder.verify import verify_case
from server.cli.verify_receipts import check_receipts, receipt_where

WEB_JS = Path(__file__).resolve().parents[2] / "web" / "js"
SCRIPTS = ("evidence-core.js", "python-words.js", "timestamp-token.js", "case-verify.js")

PAGE = (
    "<!doctype html><meta charset=utf-8><title>verify harness</title>"
    + "".join(f'<script src="/js/{name}"></script>' for name in SCRIPTS)
    + """<script>
window.verifyCase = async (caseId, options) => {
  const source = {
    async list() {
      const response = await fetch(`/list/${caseId}`, { cache: 'no-store' });
      return (await response.json()).objects;
    },
    async get(rel) {
      const response = await fetch(`/object/${caseId}/${rel}`, { cache: 'no-store' });
      if (response.status === 404) {
        const err = new Error(`${rel} is missing`);
        err.missing = true;
        throw err;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    },
  };
  const receipts = options.receipts.map(({ name, data }) => ({
    name,
    bytes: Uint8Array.from(atob(data), (c) => c.charCodeAt(0)),
  }));
  const verifier = new TakanVerify.CaseVerifier(source, caseId, {
    trustedKeys: options.trusted === null ? null : [options.trusted],
    requireSignedTail: !options.allowUnsignedTail,
    receipts,
  });
  const result = await verifier.run();
  return { ok: result.ok, where: result.where, reason: result.reason };
};
</script>"""
)

Verdict = tuple[str, str] | None


@dataclass(frozen=True)
class Options:
    """What a verifier is told besides the archive: as ``takan verify``'s options."""

    trusted: str | None = None  # --key FINGERPRINT
    allow_unsigned_tail: bool = False
    receipts: tuple[tuple[str, bytes], ...] = ()  # --receipt FILE: (name, bytes)


@dataclass
class ArchiveServer:
    """Serves ``root`` (an archive directory: cases/<case>/...) and the page."""

    root: Path | None = None
    url: str = ""
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)

    def case_dir(self, case_id: str) -> Path:
        assert self.root is not None, "no archive to serve"
        return self.root / "cases" / case_id

    def listing(self, case_id: str) -> list[str]:
        base = self.case_dir(case_id)
        return sorted(
            path.relative_to(base).as_posix()
            for path in base.rglob("*")
            if path.is_file() and not path.is_symlink()
        )


def _handler(served: ArchiveServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = unquote(self.path.split("?", 1)[0])
            if path == "/":
                self._send(200, PAGE.encode(), "text/html; charset=utf-8")
            elif path.startswith("/js/") and path[4:] in SCRIPTS:
                self._send(200, (WEB_JS / path[4:]).read_bytes(), "text/javascript")
            elif path.startswith("/list/"):
                body = json.dumps({"objects": served.listing(path[6:])}).encode()
                self._send(200, body, "application/json")
            elif path.startswith("/object/"):
                case_id, _, rel = path[8:].partition("/")
                file = served.case_dir(case_id) / rel
                if ".." in rel.split("/") or not file.is_file() or file.is_symlink():
                    self._send(404, b"not found", "text/plain")
                else:
                    self._send(200, file.read_bytes(), "application/octet-stream")
            else:
                self._send(404, b"not found", "text/plain")

    return Handler


@contextmanager
def archive_server() -> Iterator[ArchiveServer]:
    served = ArchiveServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    served.url = f"http://127.0.0.1:{server.server_address[1]}/"
    served._server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def page_verdict(page: Page, case_id: str, options: Options) -> Verdict:
    """What the pages' verifier says of the served archive."""
    result = page.evaluate(
        "([caseId, options]) => window.verifyCase(caseId, options)",
        [
            case_id,
            {
                "trusted": options.trusted,
                "allowUnsignedTail": options.allow_unsigned_tail,
                "receipts": [
                    {"name": name, "data": base64.b64encode(data).decode()}
                    for name, data in options.receipts
                ],
            },
        ],
    )
    return None if result["ok"] else (result["where"], result["reason"])


def cli_verdict(root: Path, case_id: str, options: Options) -> Verdict:
    """What ``takan verify CASE [--key K] [--allow-unsigned-tail] [--receipt F]...`` says, as
    server/cli/verify.py runs it (receipts read first, then the case, then each receipt);
    timestamp tokens unchecked against a TSA certificate, as the pages leave them."""
    storage = LocalStorage(root)
    try:
        receipts = [
            (name, parse_receipt(data, receipt_where(name))) for name, data in options.receipts
        ]
        report = verify_case(
            storage,
            case_id,
            require_signed_tail=not options.allow_unsigned_tail,
            trusted_keys=None if options.trusted is None else {options.trusted},
        )
        check_receipts(
            storage, case_id, receipts, {u.fingerprint: u.retired_at for u in report.signers}
        )
    except IntegrityError as exc:
        return exc.where, exc.reason
    return None


# Reasons whose detail comes from a parsing library (the TSA reply's ASN.1 decoder): the pages
# give the same place and the same words up to that detail.
LIBRARY_DETAIL = ("not a timestamp reply: ", "not a timestamp token: ")


def same_verdict(cli: Verdict, page: Verdict) -> bool:
    if cli is None or page is None:
        return cli == page
    if cli[0] != page[0]:
        return False
    for prefix in LIBRARY_DETAIL:
        if cli[1].startswith(prefix):
            return page[1].startswith(prefix)
    return cli[1] == page[1]
