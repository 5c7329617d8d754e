// RFC 3161 timestamp replies, read in the browser as recorder/timestamps.py check_token reads
// them without TSA certificates: granted, one signer, a SHA-256 message imprint equal to the
// stamped document's digest, and a carried signing certificate that is for time stamping.
// (With --tsa-cert, takan verify also checks the token's signature up to the TSA's root; the
// pages report each token as not checked against a TSA certificate, as takan verify does
// without one.) A CLASSIC script: it defines globalThis.TakanTimestamp and nothing else.

(function (root) {
  'use strict';

  const MAX_REPLY_BYTES = 64 * 1024;
  const SHA256_OID = '2.16.840.1.101.3.4.2.1';
  const EKU_OID = '2.5.29.37';
  const TIME_STAMPING_OID = '1.3.6.1.5.5.7.3.8';

  class TokenError extends Error {}

  // One DER element at `at`: {tag, start (of content), end, next, bytes (the whole element)}.
  function element(bytes, at) {
    if (at + 2 > bytes.length) throw new Error('truncated');
    const tag = bytes[at];
    if ((tag & 0x1f) === 0x1f) throw new Error('unsupported tag');
    let length = bytes[at + 1];
    let start = at + 2;
    if (length & 0x80) {
      const n = length & 0x7f;
      if (n === 0 || n > 4 || start + n > bytes.length) throw new Error('bad length');
      length = 0;
      for (let i = 0; i < n; i += 1) length = length * 256 + bytes[start + i];
      start += n;
    }
    const end = start + length;
    if (end > bytes.length) throw new Error('truncated');
    return { tag, start, end, next: end, raw: bytes.subarray(at, end) };
  }

  function children(bytes, parent) {
    const out = [];
    for (let at = parent.start; at < parent.end; ) {
      const child = element(bytes, at);
      out.push(child);
      at = child.next;
    }
    return out;
  }

  function expect(el, tag, what) {
    if (!el || el.tag !== tag) throw new Error(`expected ${what}`);
    return el;
  }

  function oid(bytes, el) {
    const b = bytes.subarray(el.start, el.end);
    if (!b.length) throw new Error('empty OID');
    const parts = [];
    let value = 0;
    for (const byte of b) {
      value = value * 128 + (byte & 0x7f);
      if (!(byte & 0x80)) {
        parts.push(value);
        value = 0;
      }
    }
    const first = parts.shift();
    const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
    return [...head, ...parts].join('.');
  }

  function integer(bytes, el) {
    let value = 0n;
    for (const byte of bytes.subarray(el.start, el.end)) value = value * 256n + BigInt(byte);
    return value;
  }

  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

  // GeneralizedTime YYYYMMDDHHMMSS[.f*]Z as gen_time_iso prints it.
  function genTime(text) {
    const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d+))?Z$/.exec(text);
    if (!m) throw new Error(`bad genTime ${text}`);
    const frac = (m[7] || '').slice(0, 6).padEnd(6, '0').replace(/0+$/, '');
    return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${frac ? `.${frac}` : ''}Z`;
  }

  // The parts check_token looks at, or an Error saying why the reply is not one.
  function parse(bytes) {
    const response = expect(element(bytes, 0), 0x30, 'TimeStampResp');
    if (response.end !== bytes.length) throw new Error('trailing data');
    const [statusInfo, token] = children(bytes, response);
    const statusParts = children(bytes, expect(statusInfo, 0x30, 'PKIStatusInfo'));
    const status = Number(integer(bytes, expect(statusParts[0], 0x02, 'status')));
    const texts = statusParts[1]?.tag === 0x30 ? children(bytes, statusParts[1]).map((t) => new TextDecoder().decode(bytes.subarray(t.start, t.end))) : [];
    if (!token) return { status, texts };
    const [contentType, explicit] = children(bytes, expect(token, 0x30, 'ContentInfo'));
    if (oid(bytes, expect(contentType, 0x06, 'contentType')) !== '1.2.840.113549.1.7.2') throw new Error('not SignedData');
    const signedData = expect(children(bytes, expect(explicit, 0xa0, 'content'))[0], 0x30, 'SignedData');
    const parts = children(bytes, signedData);
    const encap = children(bytes, expect(parts[2], 0x30, 'EncapsulatedContentInfo'));
    const octets = expect(children(bytes, expect(encap[1], 0xa0, 'eContent'))[0], 0x04, 'eContent');
    const certificates = parts.find((p) => p.tag === 0xa0);
    const signerInfos = expect(parts[parts.length - 1], 0x31, 'signerInfos');
    return { status, texts, tstInfo: bytes.subarray(octets.start, octets.end), certificates: certificates ? children(bytes, certificates) : [], signers: children(bytes, signerInfos), bytes };
  }

  function tstInfo(info) {
    const fields = children(info, expect(element(info, 0), 0x30, 'TSTInfo'));
    const imprint = children(info, expect(fields[2], 0x30, 'MessageImprint'));
    const algorithm = children(info, expect(imprint[0], 0x30, 'AlgorithmIdentifier'))[0];
    return {
      algorithm: oid(info, expect(algorithm, 0x06, 'hashAlgorithm')),
      message: info.subarray(expect(imprint[1], 0x04, 'hashedMessage').start, imprint[1].end),
      genTime: genTime(new TextDecoder().decode(info.subarray(expect(fields[4], 0x18, 'genTime').start, fields[4].end))),
    };
  }

  // The issuer (DER) and serial of a SignerInfo's IssuerAndSerialNumber.
  function signerId(bytes, signer) {
    const sid = children(bytes, signer)[1];
    if (sid.tag !== 0x30) return null;
    const [issuer, serial] = children(bytes, sid);
    return { issuer: issuer.raw, serial: bytes.subarray(serial.start, serial.end) };
  }

  // A certificate's issuer (DER), serial and whether its extended key usage has time stamping
  // (null when it has no EKU extension).
  function certificate(bytes, cert) {
    const tbs = children(bytes, children(bytes, cert)[0]);
    let i = tbs[0].tag === 0xa0 ? 1 : 0; // [0] version
    const serial = tbs[i];
    const issuer = tbs[i + 2];
    i += 6;
    let timeStamping = null;
    for (const ext of tbs.slice(i).filter((e) => e.tag === 0xa3)) {
      for (const item of children(bytes, children(bytes, ext)[0])) {
        const parts = children(bytes, item);
        if (oid(bytes, parts[0]) !== EKU_OID) continue;
        const value = parts[parts.length - 1];
        const usages = children(bytes, element(bytes, value.start)).map((u) => oid(bytes, u));
        timeStamping = usages.includes(TIME_STAMPING_OID);
      }
    }
    return { issuer: issuer.raw, serial: bytes.subarray(serial.start, serial.end), timeStamping };
  }

  // check_token(reply, digest, trust=None): {genTime}, or TokenError in takan verify's words.
  function checkToken(reply, digestHex) {
    if (reply.length > MAX_REPLY_BYTES) throw new TokenError(`the reply is ${reply.length} bytes, more than ${MAX_REPLY_BYTES}`);
    let response;
    try {
      response = parse(reply);
    } catch (err) {
      throw new TokenError(`not a timestamp reply: ${err.message}`);
    }
    if (response.status !== 0 && response.status !== 1) {
      throw new TokenError(`the TSA did not grant it: status ${response.status} (${response.texts.join('; ') || 'no reason given'})`);
    }
    let info;
    try {
      if (!response.tstInfo) throw new Error('no token');
      info = tstInfo(response.tstInfo);
    } catch (err) {
      throw new TokenError(`not a timestamp token: ${err.message}`);
    }
    if (info.algorithm !== SHA256_OID) throw new TokenError(`its message imprint is by ${info.algorithm}, not SHA-256`);
    if (hex(info.message) !== digestHex) {
      throw new TokenError(`its message imprint is ${hex(info.message)}, not the SHA-256 of the stamped document (${digestHex})`);
    }
    const { bytes } = response;
    if (response.signers.length !== 1) throw new TokenError(`the token has ${response.signers.length} signers, not one`);
    const id = signerId(bytes, response.signers[0]);
    let carried;
    try {
      carried = response.certificates.map((c) => certificate(bytes, c));
    } catch (err) {
      throw new TokenError(`the token carries a malformed certificate: ${err.message}`);
    }
    const signer = id && carried.find((c) => same(c.issuer, id.issuer) && same(c.serial, id.serial));
    if (signer) {
      if (signer.timeStamping === null) throw new TokenError('its signing certificate has no extended key usage');
      if (!signer.timeStamping) throw new TokenError('its signing certificate is not for time stamping');
    }
    return { genTime: info.genTime };
  }

  root.TakanTimestamp = { checkToken, TokenError };
})(globalThis);
