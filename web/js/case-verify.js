// The case verifier of the pages: recorder/verify.py's rules, in its order and with its words,
// so that the replay page, the offline page and takan verify give one verdict and name one
// place ("FAILED: <where>: <reason>"). Trust as takan verify applies it: the keys given (the
// server's key history, or a pinned fingerprint) or else the chain's first key, each followed
// through the rotations it signed; every signature (checkpoint, manifest, conclusion) by a
// trusted key that the chain recorded at or before what it signs and had not rotated away from.
// Receipts, when given, as takan verify --receipt checks them. A CLASSIC script after
// evidence-core.js and python-words.js: it defines globalThis.TakanVerify and nothing else.

(function (root) {
  'use strict';

  const E = root.TakanEvidence;
  const P = root.TakanPython;
  const { PyValueError, repr, str, isDict, isInt, has, reprSorted } = P;
  const encoder = new TextEncoder();

  const TRACKS = ['applicant-video', 'applicant-audio', 'inspector-audio'];
  const KEY_KINDS = ['signing_key', 'key_rotated'];
  const FLAG_KINDS = ['foreign_tail', 'chain_cut'];
  const UNSIGNED_TAIL_KINDS = ['timestamp'];
  const MAX_CHAIN_SEQ = 999999999999;
  const MAX_CLOCK_LENGTH = 128;
  const ZERO_HASH = '0'.repeat(64);
  const CASE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
  const HEX32 = /^[0-9a-f]{32}$/;
  const HEX64 = /^[0-9a-f]{64}$/;
  const FINGERPRINT = /^sha256:[0-9a-f]{64}$/;
  const KIND = /^[a-z][a-z0-9_.-]{0,63}$/;
  const CODEC = /^[A-Za-z0-9._-]{1,32}$/;
  const TIME_BASE = /^([1-9][0-9]{0,9})\/([1-9][0-9]{0,9})$/;
  const ENTRY_FIELDS = ['case_id', 'seq', 'kind', 'at', 'clock', 'body', 'prev', 'hash'];
  const SEGMENT_FIELDS = ['inspection_id', 'track', 'seq', 'key', 'sha256', 'size', 'codec', 'first_pts', 'last_pts', 'time_base', 'start_utc', 'end_utc', 'frames', 'partial'];
  const CHECKPOINT_FIELDS = ['case_id', 'seq', 'head', 'at', 'key_fingerprint'];
  const MANIFEST_FIELDS = ['case_id', 'inspection_id', 'segments', 'merkle_root', 'chain_head_seq', 'chain_head', 'created_at', 'key_fingerprint'];
  const TIMESTAMP_FIELDS = ['document', 'document_sha256', 'tsa', 'gen_time', 'key', 'sha256', 'size'];
  const RECEIPT_FIELDS = ['case_id', 'inspection_id', 'manifest_key', 'manifest_sha256', 'chain_head_seq', 'chain_head', 'started_at', 'ended_at', 'clock', 'issued_at', 'key_fingerprint'];
  const OUTCOMES = ['pass', 'fail', 'correction'];
  const MAX_RECEIPT_BYTES = 1024 * 1024;
  const ENROLMENT_FIELDS = ['username', 'credential_id', 'public_key', 'algorithm', 'rp_id', 'origin', 'registered_at'];
  const ASSERTION_FIELDS = ['credential_id', 'authenticator_data', 'client_data_json', 'signature'];
  const P256_SPKI_PREFIX = '3059301306072a8648ce3d020106082a8648ce3d03010703420004';
  const P256_SPKI_SIZE = 91;

  // An IntegrityError of recorder/errors.py: the place and the reason.
  class Failure extends Error {
    constructor(where, reason) {
      super(`${where}: ${reason}`);
      this.where = where;
      this.reason = reason;
    }
  }

  const chainWhere = (seq) => `chain entry ${seq}`;
  const pad12 = (n) => String(n).padStart(12, '0');

  // ---------------------------------------------------------------- the layout (recorder/layout.py)

  function layoutOf(caseId) {
    const prefix = `cases/${caseId}/`;
    const at = (pattern) => (key) => {
      if (typeof key !== 'string' || !key.startsWith(prefix)) return null;
      return pattern.exec(key.slice(prefix.length));
    };
    return {
      prefix,
      chainKey: (seq) => `${prefix}chain/${pad12(seq)}.json`,
      checkpointKey: (seq) => `${prefix}checkpoints/${pad12(seq)}.json`,
      manifestKey: (inspectionId) => `${prefix}inspections/${inspectionId}/manifest.json`,
      publicKeyKey: (fingerprint) => `${prefix}keys/${fingerprint.replace(/^sha256:/, '')}.pub`,
      chain: at(/^chain\/([0-9]{12})\.json$/),
      checkpoint: at(/^checkpoints\/([0-9]{12})\.json$/),
      publicKey: at(/^keys\/([0-9a-f]{64})\.pub$/),
      manifest: at(/^inspections\/([0-9a-f]{32})\/manifest\.json$/),
      segment: at(/^inspections\/([0-9a-f]{32})\/segments\/(applicant-video|applicant-audio|inspector-audio)\/([0-9]{6})\.webm$/),
      markedUp: at(/^inspections\/([0-9a-f]{32})\/annotations\/([0-9a-f]{32})-v([1-9][0-9]{0,2})\.png$/),
      timestamp: at(/^timestamps\/([0-9a-f]{16})\/(?:checkpoints\/([0-9]{12})|inspections\/([0-9a-f]{32})\/manifest)\.tsr$/),
    };
  }

  // layout.segment_key_parts: (case, inspection, track, seq) of any well-formed segment key.
  function segmentKeyParts(key) {
    const match = /^cases\/([A-Za-z0-9][A-Za-z0-9._-]{0,63})\/inspections\/([0-9a-f]{32})\/segments\/(applicant-video|applicant-audio|inspector-audio)\/([0-9]{6})\.webm$/.exec(key);
    if (!match || match[1].includes('..')) return null;
    return [match[1], match[2], match[3], Number(match[4])];
  }

  // storage.is_object_key: what every backend lists (no dot segments, no temporaries).
  function isObjectKey(key) {
    if (!/^[A-Za-z0-9._/-]{1,1024}$/.test(key) || key.endsWith('.tmp')) return false;
    return key.split('/').every((segment) => segment && !segment.startsWith('.'));
  }

  function checkCaseId(value) {
    if (typeof value !== 'string' || !CASE_ID.test(value) || value.includes('..')) {
      throw new PyValueError(`case_id ${repr(value)} must be 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit, without '..'`);
    }
  }

  function checkInspectionId(value) {
    if (typeof value !== 'string' || !HEX32.test(value)) throw new PyValueError(`inspection_id ${repr(value)} must be 32 lower-case hex digits`);
  }

  function checkHex64(value, name) {
    if (typeof value !== 'string' || !HEX64.test(value)) throw new PyValueError(`${name} ${repr(value)} must be 64 lower-case hex digits`);
  }

  function checkFingerprint(value) {
    if (typeof value !== 'string' || !FINGERPRINT.test(value)) throw new PyValueError(`key_fingerprint ${repr(value)} must be 'sha256:' and 64 hex digits`);
  }

  function exactFields(obj, fields, what) {
    if (!isDict(obj)) throw new PyValueError(`${what} must be a JSON object`);
    const names = Object.keys(obj);
    const missing = fields.filter((f) => !names.includes(f));
    const extra = names.filter((n) => !fields.includes(n));
    if (missing.length || extra.length) throw new PyValueError(`${what} fields wrong: missing ${reprSorted(missing)}, unexpected ${reprSorted(extra)}`);
    return obj;
  }

  // manifest.decode_signature: standard base64 in its one spelling, of 64 bytes.
  function decodeSignature(text) {
    if (typeof text !== 'string') throw new PyValueError('signature must be a base64 string');
    let raw;
    try {
      raw = P.b64decode(text);
    } catch {
      throw new PyValueError('signature is not base64');
    }
    if (raw.length !== 64 || P.b64encode(raw) !== text) throw new PyValueError('signature is not the canonical base64 of 64 bytes');
    return raw;
  }

  // ---------------------------------------------------------------- passkeys (recorder/passkey.py)

  function b64url(bytes) {
    return P.b64encode(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  // from_b64url: unpadded base64url in its one spelling.
  function fromB64url(text, name) {
    if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) throw new PyValueError(`${name} is not unpadded base64url`);
    const standard = text.replace(/-/g, '+').replace(/_/g, '/');
    const raw = Uint8Array.from(atob(standard + '='.repeat((4 - (standard.length % 4)) % 4)), (c) => c.charCodeAt(0));
    if (b64url(raw) !== text) throw new PyValueError(`${name} is not unpadded base64url`);
    return raw;
  }

  // _public_key's checks that need no curve arithmetic (the point is checked on import).
  function spkiOf(text) {
    if (typeof text !== 'string') throw new PyValueError('public_key must be a base64 string');
    let der;
    try {
      der = P.b64decode(text);
    } catch {
      throw new PyValueError('public_key is not base64');
    }
    if (P.b64encode(der) !== text) throw new PyValueError('public_key is not base64 in its one spelling');
    if (der.length !== P256_SPKI_SIZE || E.bytesToHex(der.slice(0, P256_SPKI_PREFIX.length / 2)) !== P256_SPKI_PREFIX) {
      throw new PyValueError('public_key is not an uncompressed P-256 SubjectPublicKeyInfo');
    }
    return der;
  }

  async function importP256(der) {
    try {
      return await crypto.subtle.importKey('spki', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
    } catch {
      throw new PyValueError('public_key is not a point of P-256');
    }
  }

  // PasskeyEnrolment.from_body, its __post_init__ in its order.
  async function parseEnrolment(body) {
    const e = exactFields(body, ENROLMENT_FIELDS, 'passkey enrolment');
    if (typeof e.username !== 'string' || !e.username) throw new PyValueError('username must be a non-empty string');
    const credential = fromB64url(e.credential_id, 'credential_id');
    if (credential.length < 1 || credential.length > 1023) throw new PyValueError('credential_id must be 1-1023 bytes');
    const der = spkiOf(e.public_key);
    const key = await importP256(der);
    if (e.algorithm !== 'ES256') throw new PyValueError(`algorithm ${repr(e.algorithm)} is not ES256`);
    if (typeof e.rp_id !== 'string' || !e.rp_id) throw new PyValueError('rp_id must be a non-empty string');
    if (typeof e.origin !== 'string' || !(e.origin.startsWith('https://') || e.origin.startsWith('http://'))) throw new PyValueError('origin must be an http(s) origin');
    P.parseUtc(e.registered_at);
    return { ...Object.fromEntries(ENROLMENT_FIELDS.map((f) => [f, e[f]])), key, fingerprint: `sha256:${E.bytesToHex(await E.sha256(der))}` };
  }

  function parseAssertion(obj) {
    const a = exactFields(obj, ASSERTION_FIELDS, 'passkey assertion');
    for (const name of [...ASSERTION_FIELDS].sort()) {
      if (typeof a[name] !== 'string') throw new PyValueError(`${name} must be a string`);
    }
    return Object.fromEntries(ASSERTION_FIELDS.map((f) => [f, a[f]]));
  }

  // A strict DER ECDSA signature as WebCrypto's r || s, or null (OpenSSL refuses what is not DER).
  function derToRaw(der) {
    const integer = (at) => {
      if (der[at] !== 0x02) return null;
      const length = der[at + 1];
      if (length === undefined || length < 1 || length > 33 || at + 2 + length > der.length) return null;
      const value = der.slice(at + 2, at + 2 + length);
      if (value[0] & 0x80) return null; // negative
      if (length > 1 && value[0] === 0 && !(value[1] & 0x80)) return null; // not minimal
      const bare = value[0] === 0 ? value.slice(1) : value;
      if (bare.length > 32) return null;
      const out = new Uint8Array(32);
      out.set(bare, 32 - bare.length);
      return { out, end: at + 2 + length };
    };
    if (der.length < 8 || der[0] !== 0x30 || der[1] !== der.length - 2 || der[1] > 0x7f) return null;
    const r = integer(2);
    const s = r && integer(r.end);
    if (!r || !s || s.end !== der.length) return null;
    return E.concat(r.out, s.out);
  }

  // passkey.assertion_fault: why the assertion is not the enrolled passkey's over message.
  async function assertionFault(enrolment, assertion, message) {
    if (assertion.credential_id !== enrolment.credential_id) {
      return `the passkey assertion is by credential ${assertion.credential_id}, not the enrolled ${enrolment.credential_id}`;
    }
    let authenticatorData;
    let clientData;
    let signature;
    try {
      authenticatorData = fromB64url(assertion.authenticator_data, 'authenticator_data');
      clientData = fromB64url(assertion.client_data_json, 'client_data_json');
      signature = fromB64url(assertion.signature, 'signature');
    } catch (err) {
      return `the passkey assertion's ${err.message}`;
    }
    if (clientData.length > 4096 || authenticatorData.length > 4096) return 'the passkey assertion is larger than any authenticator writes';
    let collected;
    try {
      collected = P.parseJson(clientData);
    } catch {
      return "the passkey's client data is not JSON";
    }
    if (!isDict(collected)) return "the passkey's client data is not a JSON object";
    const get = (name) => (has(collected, name) ? collected[name] : null);
    if (get('type') !== 'webauthn.get') return `the passkey's client data is of type ${repr(get('type'))}, not webauthn.get`;
    const challenge = b64url(await E.sha256(message));
    if (get('challenge') !== challenge) return "the passkey signed another challenge than this conclusion's";
    if (get('origin') !== enrolment.origin) return `the passkey signed for origin ${repr(get('origin'))}, not ${enrolment.origin}`;
    if (get('crossOrigin') === true) return 'the passkey signed inside a cross-origin frame';
    if (authenticatorData.length < 37) return "the passkey's authenticator data is shorter than 37 bytes";
    const rpHash = await E.sha256(encoder.encode(enrolment.rp_id));
    if (E.bytesToHex(authenticatorData.slice(0, 32)) !== E.bytesToHex(rpHash)) {
      return `the passkey's authenticator data is for another relying party than ${enrolment.rp_id}`;
    }
    if (!(authenticatorData[32] & 0x01)) return "the passkey's authenticator did not see the user present";
    const raw = derToRaw(signature);
    const signed = E.concat(authenticatorData, await E.sha256(clientData));
    let valid = false;
    if (raw) {
      try {
        valid = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, enrolment.key, raw, signed);
      } catch {
        valid = false;
      }
    }
    return valid ? null : 'the passkey signature does not verify';
  }

  // ---------------------------------------------------------------- the domain objects

  function chainEntry(obj) {
    if (!isDict(obj)) throw new PyValueError('a chain entry must be a JSON object');
    const names = Object.keys(obj);
    if (names.length !== ENTRY_FIELDS.length || !ENTRY_FIELDS.every((f) => has(obj, f))) {
      const missing = ENTRY_FIELDS.filter((f) => !names.includes(f));
      const extra = names.filter((n) => !ENTRY_FIELDS.includes(n));
      throw new PyValueError(`chain entry fields wrong: missing ${reprSorted(missing)}, unexpected ${reprSorted(extra)}`);
    }
    for (const name of ['case_id', 'kind', 'at', 'clock', 'prev', 'hash']) {
      if (typeof obj[name] !== 'string') throw new PyValueError(`${name} must be a string`);
    }
    checkCaseId(obj.case_id);
    if (!isInt(obj.seq)) throw new PyValueError(`seq ${repr(obj.seq)} is not an integer`);
    if (obj.seq < 0 || obj.seq > MAX_CHAIN_SEQ) throw new PyValueError(`seq ${obj.seq} is outside 0..${MAX_CHAIN_SEQ}`);
    if (!KIND.test(obj.kind)) throw new PyValueError(`kind ${repr(obj.kind)} must match [a-z][a-z0-9_.-]{0,63}`);
    P.parseUtc(obj.at);
    if ([...obj.clock].length === 0 || [...obj.clock].length > MAX_CLOCK_LENGTH) {
      throw new PyValueError(`clock must be a source name of 1-${MAX_CLOCK_LENGTH} characters`);
    }
    if (!isDict(obj.body)) throw new PyValueError('body must be a JSON object');
    checkHex64(obj.prev, 'prev');
    checkHex64(obj.hash, 'hash');
    return obj;
  }

  function segmentRecord(obj) {
    const r = exactFields(obj, SEGMENT_FIELDS, 'segment record');
    checkInspectionId(r.inspection_id);
    if (!TRACKS.includes(r.track)) throw new PyValueError(`track ${repr(r.track)} is not one of ${TRACKS.join(', ')}`);
    for (const name of ['seq', 'size', 'first_pts', 'last_pts', 'frames']) {
      if (!isInt(r[name])) throw new PyValueError(`${name} must be an integer`);
    }
    if (r.seq < 0 || r.size < 0 || r.frames < 0) throw new PyValueError('seq, size and frames must not be negative');
    const parts = typeof r.key === 'string' ? segmentKeyParts(r.key) : null;
    if (!parts || parts[1] !== r.inspection_id || parts[2] !== r.track || parts[3] !== r.seq) {
      throw new PyValueError(`key ${repr(r.key)} is not this segment's object key`);
    }
    checkHex64(r.sha256, 'sha256');
    if (typeof r.codec !== 'string' || !CODEC.test(r.codec)) throw new PyValueError(`codec ${repr(r.codec)} must match [A-Za-z0-9._-]{1,32}`);
    if (r.last_pts < r.first_pts) throw new PyValueError('last_pts is before first_pts');
    if (typeof r.time_base !== 'string' || !TIME_BASE.test(r.time_base)) throw new PyValueError(`time_base ${repr(r.time_base)} must look like 1/90000`);
    const end = P.parseUtc(r.end_utc);
    if (end < P.parseUtc(r.start_utc)) throw new PyValueError('end_utc is before start_utc');
    if (typeof r.partial !== 'boolean') throw new PyValueError('partial must be true or false');
    return { ...r, caseId: parts[0] };
  }

  function splitSigned(obj, name) {
    const doc = exactFields(obj, [name, 'signature'], `signed ${name}`);
    return [doc[name], decodeSignature(doc.signature)];
  }

  function checkpointOf(content) {
    const c = exactFields(content, CHECKPOINT_FIELDS, 'checkpoint');
    checkCaseId(c.case_id);
    if (!isInt(c.seq) || c.seq < 0 || c.seq > MAX_CHAIN_SEQ) throw new PyValueError(`seq ${repr(c.seq)} must be an integer in 0..${MAX_CHAIN_SEQ}`);
    checkHex64(c.head, 'head');
    P.parseUtc(c.at);
    checkFingerprint(c.key_fingerprint);
    return c;
  }

  // Manifest.from_signed_json: the shape, in its order (the signature is checked later).
  async function manifestOf(obj) {
    const [content, signature] = splitSigned(obj, 'manifest');
    const m = exactFields(content, MANIFEST_FIELDS, 'manifest');
    if (!Array.isArray(m.segments)) throw new PyValueError('segments must be a list');
    const segments = m.segments.map(segmentRecord);
    checkCaseId(m.case_id);
    checkInspectionId(m.inspection_id);
    for (const record of segments) {
      if (record.inspection_id !== m.inspection_id || record.caseId !== m.case_id) throw new PyValueError(`segment ${record.key} belongs to another inspection`);
    }
    for (let i = 1; i < segments.length; i += 1) {
      const [a, b] = [segments[i - 1], segments[i]];
      if (!(a.track < b.track || (a.track === b.track && a.seq < b.seq))) throw new PyValueError('segments are not in (track, seq) order without duplicates');
    }
    checkHex64(m.merkle_root, 'merkle_root');
    if (m.merkle_root !== (await E.merkleRoot(segments.map((s) => E.hexToBytes(s.sha256))))) throw new PyValueError('merkle_root is not the root over the segments');
    if (!isInt(m.chain_head_seq) || m.chain_head_seq < -1) throw new PyValueError('chain_head_seq must be an integer >= -1');
    if (m.chain_head_seq === -1) {
      if (m.chain_head !== '' || segments.length) throw new PyValueError("chain_head_seq -1 (empty chain) needs chain_head '' and no segments");
    } else {
      checkHex64(m.chain_head, 'chain_head');
    }
    P.parseUtc(m.created_at);
    checkFingerprint(m.key_fingerprint);
    return { ...m, segments, signature };
  }

  // The segment records as the manifest lists them (the JSON a record has).
  const recordJson = (r) => E.canonical(Object.fromEntries(SEGMENT_FIELDS.map((f) => [f, r[f]])));

  async function verifySignature(publicKey, message, signature) {
    if (publicKey.length !== 32 || signature.length !== 64) return false;
    try {
      return await E.verifyEd25519(publicKey, signature, message);
    } catch {
      return false;
    }
  }

  const fingerprintOf = async (publicKey) => `sha256:${await E.sha256Hex(publicKey)}`;
  const signedMessage = (name, content) => encoder.encode(E.canonical({ [name]: content }));

  // ---------------------------------------------------------------- reading

  // source.get with verify.py's words for what cannot be read.
  async function read(source, rel, key, where = null) {
    try {
      return await source.get(rel);
    } catch (err) {
      if (err.missing) throw new Failure(where ?? key, `missing (${key})`);
      throw new Failure(where ?? key, `unreadable: ${err.message}`);
    }
  }

  // _parse_canonical: the value, if the bytes are exactly its canonical JSON.
  function parseCanonical(raw, where) {
    let value;
    try {
      value = P.parseJson(raw);
      P.checkCanonical(value);
    } catch (err) {
      if (err instanceof PyValueError) throw new Failure(where, err.message);
      throw err;
    }
    const text = E.canonical(value);
    const bytes = encoder.encode(text);
    if (bytes.length !== raw.length || bytes.some((b, i) => b !== raw[i])) throw new Failure(where, 'not in canonical JSON form');
    return value;
  }

  // A ValueError inside a check becomes a Failure with `prefix` (or is passed on).
  function as(where, prefix, fn) {
    try {
      return fn();
    } catch (err) {
      if (err instanceof PyValueError) throw new Failure(where, `${prefix}${err.message}`);
      throw err;
    }
  }

  async function asAsync(where, prefix, fn) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof PyValueError) throw new Failure(where, `${prefix}${err.message}`);
      throw err;
    }
  }

  // Up to `width` promises at a time over `items`, results in order (a failure is returned).
  async function mapLimited(items, width, fn) {
    const out = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        try {
          out[i] = await fn(items[i]);
        } catch (err) {
          out[i] = err instanceof Error ? err : new Error(String(err));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
    return out;
  }

  // ---------------------------------------------------------------- the chain (recorder/chain.py)

  async function computedHashes(entries) {
    return Promise.all(entries.map((e) => E.entryHash(e)));
  }

  // chain.verify_entries from seq 0 with anchors ({seq, head, source}): the lowest failure,
  // named as verify_entries names it (a range when the change can only be placed in one).
  function verifyEntries(entries, hashes, caseId, anchors) {
    const failures = new Map();
    const ranged = new Set();
    const fail = (position, reason) => {
      if (!failures.has(position)) failures.set(position, reason);
    };
    const end = entries.length;
    const bySeq = new Map();
    for (const anchor of anchors) {
      if (anchor.seq >= end) fail(end, `missing: the chain ends at seq ${end - 1}, ${anchor.source} signed seq ${anchor.seq}`);
      else if (anchor.seq >= 0) {
        if (!bySeq.has(anchor.seq)) bySeq.set(anchor.seq, []);
        bySeq.get(anchor.seq).push(anchor);
      }
    }
    const top = bySeq.size ? Math.max(...bySeq.keys()) : -1;
    let trusted = null;
    for (let position = Math.min(top, entries.length - 1); position >= 0; position -= 1) {
      const entry = entries[position];
      const computed = hashes[position];
      const vouchers = (bySeq.get(position) ?? []).map((a) => [a.head, a.source]);
      if (trusted !== null) vouchers.push([trusted, `the prev of chain entry ${position + 1}`]);
      const wrong = vouchers.filter(([head]) => head !== computed).map(([, source]) => source);
      if (wrong.length && entry.hash === computed && !failures.has(position)) {
        fail(position, `changed with its hash recomputed (so may be every entry up to it): entry ${position} no longer has the hash committed by ${wrong[0]}`);
        ranged.add(position);
        trusted = null;
      } else if (wrong.length) {
        fail(position, `content does not match the hash committed by ${wrong[0]}`);
        trusted = null;
      } else if (entry.hash !== computed) {
        fail(position, 'stored hash is not the hash of the entry');
        trusted = null;
      } else {
        trusted = vouchers.length ? entry.prev : null;
      }
    }
    for (let position = Math.max(top + 1, 0); position < entries.length; position += 1) {
      const entry = entries[position];
      const linked = position === 0 ? ZERO_HASH : hashes[position - 1];
      if (entry.hash !== hashes[position]) fail(position, 'stored hash is not the hash of the entry');
      else if (entry.prev !== linked) fail(position, `prev does not match the hash of chain entry ${position - 1}`);
    }
    if (entries.length && entries[0].prev !== ZERO_HASH) fail(0, `prev is ${entries[0].prev}, expected ${ZERO_HASH}`);
    let previous = null;
    entries.forEach((entry, position) => {
      if (entry.seq !== position) fail(position, `holds seq ${entry.seq}`);
      if (entry.case_id !== caseId) fail(position, `belongs to case ${repr(entry.case_id)}, not ${repr(caseId)}`);
      const when = P.parseUtc(entry.at);
      if (previous !== null && when < previous) fail(position, `time ${entry.at} is earlier than the previous entry's`);
      previous = when;
    });
    if (!failures.size) return;
    const position = Math.min(...failures.keys());
    let where = chainWhere(position);
    if (ranged.has(position)) {
      let low = Math.max(0, ...[...bySeq.keys()].filter((seq) => seq < position).map((seq) => seq + 1));
      let start = position;
      while (start > low && entries[start].prev === hashes[start - 1]) start -= 1;
      low = start;
      if (low < position) where = `between chain entry ${low} and ${position}`;
    }
    throw new Failure(where, failures.get(position));
  }

  // ---------------------------------------------------------------- flags (recorder/tail.py)

  // recorder/marked_up.py check_marked_up: each annotation_rendered entry records its copy under
  // the marked-up key of its inspection and annotation and names an earlier snapshot entry (its
  // original) and an earlier annotation entry of that snapshot; no other kind records such a key.
  function checkMarkedUp(L, entries) {
    const text = (body, name) => (typeof body[name] === 'string' ? body[name] : null);
    const earlier = (body, name, before) => {
      const seq = body[name];
      if (typeof seq !== 'number' || !isInt(seq) || seq < 0 || seq >= before) return null;
      return entries[seq] ?? null;
    };
    for (const entry of entries) {
      const body = entry.body;
      const where = chainWhere(entry.seq);
      const key = text(body, 'key');
      const parsed = key === null ? null : L.markedUp(key);
      if (entry.kind !== 'annotation_rendered') {
        if (parsed) throw new Failure(where, `records the marked-up copy ${key} as ${entry.kind}`);
        continue;
      }
      const inspectionId = text(body, 'inspection_id');
      const annotationId = text(body, 'annotation_id');
      if (!parsed || parsed[1] !== inspectionId || parsed[2] !== annotationId) {
        throw new Failure(where, `a marked-up copy's key must name its inspection and annotation: ${str(key)}`);
      }
      const snapshotId = text(body, 'snapshot_id');
      const originalKey = text(body, 'original_key');
      const originalSha256 = text(body, 'original_sha256');
      const original = earlier(body, 'original_seq', entry.seq);
      if (!(original && snapshotId !== null && originalKey !== null && originalSha256 !== null
        && original.kind === 'snapshot' && original.body.key === originalKey
        && original.body.sha256 === originalSha256 && original.body.snapshot_id === snapshotId)) {
        throw new Failure(where, `renders the original ${str(originalKey)}, which no earlier snapshot entry records`);
      }
      const annotationKey = text(body, 'annotation_key');
      const annotationSha256 = text(body, 'annotation_sha256');
      const annotation = earlier(body, 'annotation_seq', entry.seq);
      if (!(annotation && annotationKey !== null && annotationSha256 !== null
        && annotation.kind === 'annotation' && annotation.body.key === annotationKey
        && annotation.body.sha256 === annotationSha256 && annotation.body.annotation_id === annotationId
        && annotation.body.snapshot_id === snapshotId)) {
        throw new Failure(where, `renders the annotation ${str(annotationKey)}, which no earlier annotation entry of that snapshot records`);
      }
    }
  }

  function flagFailure(entry) {
    const body = entry.body;
    const first = body.first_seq;
    const last = body.last_seq;
    const span = first === last ? `chain entry ${str(first)}` : `chain entries ${str(first)} to ${str(last)}`;
    let reason;
    if (entry.kind === 'chain_cut') {
      const held = isInt(first) && first ? `up to chain entry ${first - 1}` : 'none';
      reason = `missing: the chain was cut; Takan had written up to chain entry ${str(last)}, the archive held ${held}`;
    } else if (body.trusted_seq === -1) {
      reason = 'not written by Takan: nothing it signed or wrote vouches for them';
    } else {
      reason = `not written by Takan: the last entry it vouches for is ${str(body.trusted_seq)} (${str(body.vouched_by)})`;
    }
    return new Failure(span, `${reason} (flagged by chain entry ${entry.seq}, ${entry.kind})`);
  }

  // ---------------------------------------------------------------- the verifier

  // One case of a source ({list(), get(rel)}; relative keys under cases/{case}/). Options:
  // trustedKeys (fingerprints, or null: the chain's first key), requireSignedTail (true),
  // receipts ([{name, bytes}]), digests (rel → Promise<{sha256, size}|{missing}|{error}>: bytes
  // already read, e.g. played). run() resolves to {ok, where, reason, report}; structure()
  // and objects() are its two halves, for a page that plays between them.
  class CaseVerifier {
    constructor(source, caseId, options = {}) {
      this.source = source;
      this.caseId = caseId;
      this.layout = layoutOf(caseId);
      this.trustedKeys = options.trustedKeys ?? null;
      this.requireSignedTail = options.requireSignedTail ?? true;
      this.receipts = options.receipts ?? [];
      this.digests = new Map(Object.entries(options.digests ?? {}));
    }

    // Bytes of a stored object already read by someone else (the player): their digest.
    recordDigest(rel, digest) {
      this.digests.set(rel, Promise.resolve(digest));
    }

    async run() {
      try {
        await this.structure();
        await this.objects();
        return { ok: true, where: null, reason: null, report: this.report() };
      } catch (err) {
        if (err instanceof Failure) return { ok: false, where: err.where, reason: err.reason, report: null };
        throw err;
      }
    }

    // Everything verify_case checks before the recorded objects' bytes. Throws Failure.
    async structure() {
      // Receipts first, as takan verify reads them before the case.
      this.parsedReceipts = [];
      for (const { name, bytes } of this.receipts) this.parsedReceipts.push(await this.#parseReceipt(bytes, `receipt ${name}`));
      const listing = await this.#list();
      this.listing = listing;
      const entries = await this.#loadChain(listing);
      this.entries = entries;
      const publicKeys = await this.#loadPublicKeys(listing);
      this.publicKeys = publicKeys;
      const documents = await this.#loadDocuments(listing);
      const { checkpoints, manifests } = await this.#verifySignatures(documents, publicKeys);
      this.checkpoints = checkpoints;
      this.manifests = manifests;
      this.usedKeys = [...new Set([...documents.values()].map((d) => d.fingerprint))];
      const records = await this.#keyRecords(entries, publicKeys);
      this.keyRecords = records;
      const trusted = this.#trusted(records);
      this.trusted = trusted;
      const hashes = await computedHashes(entries);
      this.hashes = hashes;
      this.#checkSigners(checkpoints, manifests, records, trusted, entries, hashes);
      const anchors = [
        ...[...checkpoints].map(([key, c]) => ({ seq: c.seq, head: c.head, source: key })),
        ...[...manifests].filter(([, m]) => m.chain_head_seq >= 0).map(([key, m]) => ({ seq: m.chain_head_seq, head: m.chain_head, source: key })),
      ];
      verifyEntries(entries, hashes, this.caseId, anchors);
      this.chainVerified = true; // every link, hash and signed head holds
      const latest = anchors.length ? Math.max(...anchors.map((a) => a.seq)) : null;
      this.latestSigned = latest;
      const tail = entries.filter((e) => latest === null || e.seq > latest);
      const unsigned = tail.filter((e) => !UNSIGNED_TAIL_KINDS.includes(e.kind)).map((e) => e.seq);
      if (this.requireSignedTail && unsigned.length) {
        throw new Failure(chainWhere(unsigned[unsigned.length - 1]), `not covered by a signed checkpoint or manifest (the last signed entry is ${latest === null ? 'none' : latest})`);
      }
      const flag = entries.find((e) => FLAG_KINDS.includes(e.kind));
      if (flag) throw flagFailure(flag);
      await this.#checkConclusions(entries, publicKeys, records, trusted);
      const { segments, references } = this.#readChain(entries);
      this.segments = segments;
      this.references = references;
      this.#checkTracks(segments, this.#unreadableSegments(entries));
      checkMarkedUp(this.layout, entries);
      const referenced = new Set(references.map((r) => r.key));
      const recordedOnly = [...listing.publicKeys.values(), ...listing.manifests.keys()];
      for (const key of [...listing.segments, ...listing.others, ...recordedOnly]) {
        if (!referenced.has(key)) throw new Failure(key, 'stored object is not referenced by any chain entry');
      }
      for (const [key, manifest] of manifests) this.#checkManifest(key, manifest, segments);
      this.stored = new Set([...listing.segments, ...listing.others, ...recordedOnly]);
      this.documents = documents;
    }

    // The recorded objects' bytes, the timestamp tokens, then the receipts. Throws Failure.
    async objects() {
      const pending = this.references.filter((ref) => this.stored.has(ref.key));
      const found = await mapLimited(pending, 4, (ref) => this.#digest(ref.key));
      const digests = new Map(pending.map((ref, i) => [ref.key, found[i]]));
      for (const ref of this.references) {
        const by = `recorded by chain entry ${ref.seq}`;
        const result = digests.get(ref.key) ?? { missing: true };
        if (result.missing) throw new Failure(ref.key, `missing (${by})`);
        if (result.error || result instanceof Error) throw new Failure(ref.key, `unreadable: ${result.error ?? result.message}`);
        const recorded = `chain entry ${ref.seq} recorded`;
        if (result.size > ref.size) throw new Failure(ref.key, `size is more than ${ref.size} bytes; ${recorded} ${ref.size}`);
        if (result.size !== ref.size) throw new Failure(ref.key, `size is ${result.size} bytes; ${recorded} ${ref.size}`);
        if (result.sha256 !== ref.sha256) throw new Failure(ref.key, `SHA-256 is ${result.sha256}; ${recorded} ${ref.sha256}`);
      }
      this.timestamps = await this.#verifyTimestamps();
      for (const receipt of this.parsedReceipts) await this.#checkReceipt(receipt);
    }

    #digest(key) {
      const rel = key.slice(this.layout.prefix.length);
      if (!this.digests.has(rel)) {
        this.digests.set(
          rel,
          this.source.get(rel).then(
            async (bytes) => ({ sha256: await E.sha256Hex(bytes), size: bytes.length }),
            (err) => (err.missing ? { missing: true } : { error: err.message }),
          ),
        );
      }
      return this.digests.get(rel);
    }

    // -------------------------------------------------------------- listing and loading

    async #list() {
      const L = this.layout;
      let rels;
      try {
        rels = await this.source.list();
      } catch (err) {
        throw new Failure(L.prefix, `cannot list: ${err.message}`);
      }
      if (!rels.some((r) => isObjectKey(L.prefix + r))) throw new Failure(L.prefix, 'no objects: unknown case');
      const listing = { chain: new Map(), checkpoints: new Map(), publicKeys: new Map(), manifests: new Map(), segments: [], others: [] };
      for (const rel of [...rels].filter((r) => isObjectKey(L.prefix + r)).sort()) {
        const key = L.prefix + rel;
        let m;
        if ((m = L.chain(key))) listing.chain.set(Number(m[1]), key);
        else if ((m = L.checkpoint(key))) listing.checkpoints.set(Number(m[1]), key);
        else if ((m = L.publicKey(key))) listing.publicKeys.set(`sha256:${m[1]}`, key);
        else if ((m = L.manifest(key))) listing.manifests.set(key, m[1]);
        else if (L.segment(key)) listing.segments.push(key);
        else listing.others.push(key);
      }
      return listing;
    }

    async #loadChain(listing) {
      if (!listing.chain.size) throw new Failure(chainWhere(0), 'missing: the case has no chain');
      const top = Math.max(...listing.chain.keys());
      for (let seq = 0; seq <= top; seq += 1) {
        if (!listing.chain.has(seq)) throw new Failure(chainWhere(seq), `missing (${this.layout.chainKey(seq)} not found)`);
      }
      const seqs = [...listing.chain.keys()].sort((a, b) => a - b);
      const raws = await mapLimited(seqs, 8, (seq) => this.source.get(listing.chain.get(seq).slice(this.layout.prefix.length)));
      return seqs.map((seq, i) => {
        const where = chainWhere(seq);
        const raw = raws[i];
        if (raw instanceof Error) throw new Failure(where, `unreadable: ${raw.message}`);
        const value = parseCanonical(raw, where);
        return as(where, 'malformed: ', () => chainEntry(value));
      });
    }

    async #loadPublicKeys(listing) {
      const found = new Map();
      for (const [fingerprint, key] of listing.publicKeys) {
        const raw = await read(this.source, key.slice(this.layout.prefix.length), key);
        if (raw.length !== 32) throw new Failure(key, `${raw.length} bytes, not a raw Ed25519 public key`);
        const actual = await fingerprintOf(raw);
        if (actual !== fingerprint) throw new Failure(key, `holds key ${actual}, not the one its name says`);
        found.set(fingerprint, raw);
      }
      return found;
    }

    // Signed documents by key: {type, value, fingerprint, raw}.
    async #loadDocuments(listing) {
      const documents = new Map();
      for (const key of listing.checkpoints.values()) {
        const raw = await read(this.source, key.slice(this.layout.prefix.length), key);
        const value = parseCanonical(raw, key);
        const fingerprint = as(key, 'not a valid signed checkpoint: ', () => checkpointOf(P.subscript(value, 'checkpoint')).key_fingerprint);
        documents.set(key, { type: 'checkpoint', value, fingerprint, raw });
      }
      for (const key of listing.manifests.keys()) {
        const raw = await read(this.source, key.slice(this.layout.prefix.length), key);
        const value = parseCanonical(raw, key);
        const manifest = await asAsync(key, 'not a valid signed manifest: ', () => manifestOf(value));
        documents.set(key, { type: 'manifest', value, fingerprint: manifest.key_fingerprint, manifest, raw });
      }
      return documents;
    }

    async #verifySignatures(documents, publicKeys) {
      const uses = new Map();
      for (const d of documents.values()) uses.set(d.fingerprint, (uses.get(d.fingerprint) ?? 0) + 1);
      const checkpoints = new Map();
      const manifests = new Map();
      for (const key of [...documents.keys()].sort()) {
        const { type, value, fingerprint, manifest } = documents.get(key);
        const publicKey = publicKeys.get(fingerprint);
        if (!publicKey) {
          const keyObject = this.layout.publicKeyKey(fingerprint);
          if (uses.get(fingerprint) > 1) throw new Failure(keyObject, `missing; ${uses.get(fingerprint)} documents are signed by it`);
          throw new Failure(key, `names signing key ${fingerprint}, absent (${keyObject})`);
        }
        if (type === 'checkpoint') {
          const [content, signature] = as(key, 'not a valid signed checkpoint: ', () => splitSigned(value, 'checkpoint'));
          const checkpoint = checkpointOf(content);
          if (!(await verifySignature(publicKey, signedMessage('checkpoint', content), signature))) {
            throw new Failure(key, `signature does not verify with key ${checkpoint.key_fingerprint}`);
          }
          const storedAt = Number(this.layout.checkpoint(key)[1]);
          if (checkpoint.case_id !== this.caseId || checkpoint.seq !== storedAt) {
            throw new Failure(key, `signs case ${checkpoint.case_id} seq ${checkpoint.seq}, not this key's`);
          }
          checkpoints.set(key, checkpoint);
        } else {
          const content = Object.fromEntries(MANIFEST_FIELDS.map((f) => [f, value.manifest[f]]));
          if (!(await verifySignature(publicKey, signedMessage('manifest', content), manifest.signature))) {
            throw new Failure(key, `signature does not verify with key ${manifest.key_fingerprint}`);
          }
          if (manifest.case_id !== this.caseId || manifest.inspection_id !== this.layout.manifest(key)[1]) {
            throw new Failure(key, `is for case ${manifest.case_id} inspection ${manifest.inspection_id}, not this key's`);
          }
          manifests.set(key, manifest);
        }
      }
      return { checkpoints, manifests };
    }

    // -------------------------------------------------------------- signing keys

    // Each key a signing_key or key_rotated entry records, in chain order.
    async #keyRecords(entries, publicKeys) {
      const records = new Map();
      let current = null;
      for (const entry of entries) {
        if (!KEY_KINDS.includes(entry.kind)) continue;
        const where = chainWhere(entry.seq);
        const body = entry.body;
        const fingerprint = body.fingerprint;
        const hex = typeof fingerprint === 'string' ? fingerprint.replace(/^sha256:/, '') : null;
        if (typeof fingerprint !== 'string' || !HEX64.test(hex) || body.key !== this.layout.publicKeyKey(fingerprint)) {
          throw new Failure(where, 'a key entry names its fingerprint and key object');
        }
        if (records.has(fingerprint)) throw new Failure(where, `records ${fingerprint} again`);
        let previous = null;
        if (entry.kind === 'key_rotated') {
          previous = has(body, 'previous') ? body.previous : null;
          if (previous !== current || current === null) throw new Failure(where, `rotates from ${str(previous)}, but the key in use is ${str(current)}`);
          const publicKey = publicKeys.get(fingerprint);
          const old = publicKeys.get(current);
          if (!publicKey || !old) throw new Failure(where, 'the keys of this rotation are not stored');
          const at = has(body, 'at') ? body.at : null;
          const signatureText = has(body, 'signature') ? body.signature : null;
          const signature = as(where, 'bad key rotation: ', () => {
            if (typeof previous !== 'string' || typeof at !== 'string') throw new PyValueError('previous and at must be strings');
            if (typeof signatureText !== 'string') throw new PyValueError('s must be a base64 string');
            try {
              return P.b64decode(signatureText);
            } catch {
              throw new PyValueError('s is not base64');
            }
          });
          if ((await fingerprintOf(publicKey)) !== fingerprint) throw new Failure(where, 'bad key rotation: fingerprint is not the public key\'s');
          const statement = encoder.encode(
            E.canonical({ type: 'takan.key-rotation', previous, next: fingerprint, public_key: P.b64encode(publicKey), at }),
          );
          if (!(await verifySignature(old, statement, signature))) throw new Failure(where, `the rotation is not signed by ${previous}`);
          records.get(current).retiredAt = entry.seq;
        } else if (current !== null) {
          throw new Failure(where, `records a second signing key ${fingerprint} without a rotation`);
        }
        records.set(fingerprint, { seq: entry.seq, kind: entry.kind, rotatedFrom: previous, retiredAt: null });
        current = fingerprint;
      }
      return records;
    }

    #trusted(records) {
      const trusted = new Set(this.trustedKeys ?? [...records].filter(([, r]) => r.kind === 'signing_key').map(([f]) => f));
      for (const [fingerprint, record] of records) if (trusted.has(record.rotatedFrom)) trusted.add(fingerprint);
      return trusted;
    }

    #signerFault(fingerprint, seq, records, trusted, inclusive) {
      const record = records.get(fingerprint);
      if (!record) return `signed by ${fingerprint}, which no chain entry records`;
      if (!trusted.has(fingerprint)) return `signed by ${fingerprint}, which is not a trusted signing key of this case`;
      if (record.seq > seq || (record.seq === seq && !inclusive)) return `signed by ${fingerprint}, which chain entry ${record.seq} records only later`;
      if (record.retiredAt !== null && seq >= record.retiredAt) return `signed by ${fingerprint} after chain entry ${record.retiredAt} rotated away from it`;
      return null;
    }

    #checkSigners(checkpoints, manifests, records, trusted, entries, hashes) {
      const signed = [
        ...[...checkpoints].map(([key, c]) => [key, c.key_fingerprint, c.seq, c.head]),
        ...[...manifests].map(([key, m]) => [key, m.key_fingerprint, m.chain_head_seq, m.chain_head]),
      ];
      for (const fingerprint of [...new Set(signed.map((s) => s[1]))].sort()) {
        if (records.has(fingerprint) && !trusted.has(fingerprint)) {
          throw new Failure(this.layout.publicKeyKey(fingerprint), `${fingerprint} is not one of the trusted signing keys`);
        }
      }
      const order = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
      for (const [key, fingerprint, seq] of [...signed].sort(order)) {
        const fault = this.#signerFault(fingerprint, seq, records, trusted, true);
        if (fault === null) continue;
        if (!records.has(fingerprint)) this.#checkKeyNotMisrecorded(entries, fingerprint);
        if (!records.has(fingerprint) && trusted.has(fingerprint)) {
          // A key the verifier was given signed it: if the chain contradicts what such keys
          // signed, the chain is what changed.
          const anchors = signed
            .filter(([, signer, at]) => trusted.has(signer) && at >= 0 && (!records.has(signer) || this.#signerFault(signer, at, records, trusted, true) === null))
            .map(([source, , at, head]) => ({ seq: at, head, source }));
          verifyEntries(entries, hashes, this.caseId, anchors);
        }
        throw new Failure(key, fault);
      }
    }

    #checkKeyNotMisrecorded(entries, fingerprint) {
      const keyObject = this.layout.publicKeyKey(fingerprint);
      for (const entry of entries) {
        if (!KEY_KINDS.includes(entry.kind) && entry.body.key === keyObject) {
          throw new Failure(chainWhere(entry.seq), `refers to ${keyObject}, which is not a recorded object`);
        }
      }
    }

    async #checkConclusions(entries, publicKeys, records, trusted) {
      const enrolled = new Map();
      this.inspectorSignatures = [];
      for (const entry of entries) {
        if (entry.kind === 'passkey_enrolled') {
          await this.#enrol(entry, enrolled);
          continue;
        }
        if (entry.kind !== 'conclusion') continue;
        const where = chainWhere(entry.seq);
        const body = entry.body;
        const fingerprint = has(body, 'key_fingerprint') ? body.key_fingerprint : null;
        const publicKey = typeof fingerprint === 'string' ? publicKeys.get(fingerprint) : null;
        if (!publicKey) throw new Failure(where, `conclusion names signing key ${str(fingerprint)}, absent`);
        const fault = this.#signerFault(fingerprint, entry.seq, records, trusted, false);
        if (fault !== null) throw new Failure(where, `the conclusion is ${fault}`);
        if (!(await this.#conclusionVerifies(publicKey, body))) throw new Failure(where, "the conclusion's signature does not verify");
        if (has(body, 'passkey')) this.inspectorSignatures.push(await this.#inspectorSignature(entry, enrolled));
      }
    }

    async #enrol(entry, enrolled) {
      const where = chainWhere(entry.seq);
      let enrolment;
      try {
        enrolment = await parseEnrolment(entry.body);
      } catch (err) {
        if (err instanceof PyValueError) throw new Failure(where, `bad passkey enrolment: ${err.message}`);
        throw err;
      }
      const earlier = enrolled.get(enrolment.credential_id);
      if (earlier && ENROLMENT_FIELDS.some((f) => earlier[f] !== enrolment[f])) {
        throw new Failure(where, `enrols passkey ${enrolment.credential_id} again, with other values`);
      }
      enrolled.set(enrolment.credential_id, enrolment);
    }

    // verify._inspector_signature: the conclusion's passkey, enrolled for its author, signed it.
    async #inspectorSignature(entry, enrolled) {
      const where = chainWhere(entry.seq);
      const body = entry.body;
      let assertion;
      try {
        assertion = parseAssertion(body.passkey);
      } catch (err) {
        if (err instanceof PyValueError) throw new Failure(where, `bad passkey assertion: ${err.message}`);
        throw err;
      }
      const enrolment = enrolled.get(assertion.credential_id);
      if (!enrolment) throw new Failure(where, `the conclusion's passkey ${assertion.credential_id} is not enrolled by an earlier chain entry`);
      const by = has(body, 'by') ? body.by : null;
      if (enrolment.username !== by) throw new Failure(where, `the conclusion by ${str(by)} is signed with the passkey of ${enrolment.username}`);
      const names = ['inspection_id', 'outcome', 'reason', 'by', 'at', 'refers_to'];
      const message = signedMessage('conclusion', Object.fromEntries(names.map((n) => [n, body[n]])));
      const fault = await assertionFault(enrolment, assertion, message);
      if (fault !== null) throw new Failure(where, fault);
      const flags = fromB64url(assertion.authenticator_data, 'authenticator_data')[32];
      return { seq: entry.seq, username: enrolment.username, fingerprint: enrolment.fingerprint, userVerified: Boolean(flags & 0x04) };
    }

    // conclusion.verify_conclusion: any malformed field or signature is "does not verify".
    async #conclusionVerifies(publicKey, body) {
      const names = ['inspection_id', 'outcome', 'reason', 'by', 'at', 'refers_to'];
      if (!names.every((n) => has(body, n))) return false;
      const c = Object.fromEntries(names.map((n) => [n, body[n]]));
      try {
        checkInspectionId(c.inspection_id);
        if (!OUTCOMES.includes(c.outcome)) return false;
        if (typeof c.reason !== 'string' || !c.reason.trim() || [...c.reason].length > 2000) return false;
        if (typeof c.by !== 'string' || !c.by) return false;
        P.parseUtc(c.at);
        if (c.refers_to !== null && !isInt(c.refers_to)) return false;
      } catch {
        return false;
      }
      let signature;
      try {
        signature = P.b64decode(has(body, 'signature') ? str(body.signature) : '');
      } catch {
        return false;
      }
      return verifySignature(publicKey, signedMessage('conclusion', c), signature);
    }

    // -------------------------------------------------------------- what the chain says

    #readChain(entries) {
      const segments = new Map(); // "inspection/track" → [{seq, record}]
      const references = [];
      const seen = new Map();
      const L = this.layout;
      for (const entry of entries) {
        const where = chainWhere(entry.seq);
        const body = entry.body;
        if (entry.kind === 'segment') {
          const record = as(where, 'bad segment record: ', () => segmentRecord(body));
          if (record.caseId !== this.caseId) throw new Failure(where, `segment ${record.key} is outside this case`);
          const id = `${record.inspection_id}/${record.track}`;
          if (!segments.has(id)) segments.set(id, []);
          segments.get(id).push({ seq: entry.seq, record });
        } else if (!(has(body, 'key') && has(body, 'sha256'))) {
          continue;
        }
        const { key, sha256, size } = body;
        if (!(typeof key === 'string' && key.startsWith(L.prefix) && typeof sha256 === 'string' && HEX64.test(sha256) && isInt(size) && size >= 0)) {
          throw new Failure(where, 'object reference needs key (in this case), sha256, size');
        }
        if (L.chain(key) || L.checkpoint(key) || Boolean(L.publicKey(key)) !== KEY_KINDS.includes(entry.kind)) {
          throw new Failure(where, `refers to ${key}, which is not a recorded object`);
        }
        if (seen.has(key)) throw new Failure(where, `refers to ${key}, already recorded by entry ${seen.get(key)}`);
        seen.set(key, entry.seq);
        references.push({ seq: entry.seq, key, sha256, size });
      }
      return { segments, references };
    }

    #unreadableSegments(entries) {
      const found = new Set();
      for (const entry of entries) {
        const b = entry.body;
        if (entry.kind === 'recovered' && b.readable === false) {
          const seq = typeof b.seq === 'boolean' ? Number(b.seq) : b.seq;
          if (typeof b.inspection_id === 'string' && typeof b.track === 'string' && isInt(seq)) found.add(`${b.inspection_id}/${b.track}/${seq}`);
        }
      }
      return found;
    }

    #checkTracks(segments, unreadable) {
      for (const [id, list] of segments) {
        let previous = null;
        let expected = 0;
        for (const { seq, record } of list) {
          const where = chainWhere(seq);
          while (unreadable.has(`${id}/${expected}`) && record.seq !== expected) expected += 1;
          if (record.seq !== expected) throw new Failure(where, `${record.track} segment seq ${record.seq}, expected ${expected}`);
          if (previous && (P.parseUtc(record.start_utc) < P.parseUtc(previous.start_utc) || P.parseUtc(record.end_utc) < P.parseUtc(previous.end_utc))) {
            throw new Failure(where, `${record.track} segment ${record.seq} starts or ends before segment ${previous.seq}`);
          }
          previous = record;
          expected += 1;
        }
      }
    }

    #checkManifest(key, manifest, segments) {
      const chained = [...segments.values()].flat().filter(({ record }) => record.inspection_id === manifest.inspection_id);
      for (const { seq, record } of chained) {
        if (seq > manifest.chain_head_seq) throw new Failure(key, `chain entry ${seq} adds segment ${record.key} after this manifest`);
      }
      const order = (a, b) => (a.track < b.track ? -1 : a.track > b.track ? 1 : a.seq - b.seq);
      const ordered = chained.map(({ record }) => record).sort(order);
      if (ordered.map(recordJson).join('\n') === manifest.segments.map(recordJson).join('\n')) return;
      const listed = new Set(manifest.segments.map((s) => s.key));
      const inChain = new Set(ordered.map((s) => s.key));
      const onlyListed = [...listed].filter((k) => !inChain.has(k)).sort();
      const onlyChained = [...inChain].filter((k) => !listed.has(k)).sort();
      throw new Failure(
        key,
        "segments differ from the chain's" + (onlyListed.length ? `; not in the chain: ${onlyListed[0]}` : '') + (onlyChained.length ? `; not in the manifest: ${onlyChained[0]}` : ''),
      );
    }

    // -------------------------------------------------------------- timestamps (recorder/timestamps.py)

    async #verifyTimestamps() {
      const found = [];
      const L = this.layout;
      for (const entry of this.entries) {
        const key = entry.body.key;
        const isToken = typeof key === 'string' && Boolean(L.timestamp(key));
        if (entry.kind !== 'timestamp') {
          if (isToken) throw new Failure(chainWhere(entry.seq), `records the timestamp token ${key} as ${entry.kind}`);
          continue;
        }
        found.push(await this.#verifyTimestamp(entry));
      }
      return found;
    }

    async #verifyTimestamp(entry) {
      const where = chainWhere(entry.seq);
      const L = this.layout;
      const record = as(where, 'bad timestamp record: ', () => {
        const body = entry.body;
        const names = Object.keys(body);
        if (names.length !== TIMESTAMP_FIELDS.length || !TIMESTAMP_FIELDS.every((f) => has(body, f))) {
          throw new PyValueError(`members must be exactly ${[...TIMESTAMP_FIELDS].sort().join(', ')}`);
        }
        if (!TIMESTAMP_FIELDS.filter((f) => f !== 'size').every((f) => typeof body[f] === 'string')) throw new PyValueError('every member but size must be a string');
        if (!isInt(body.size) || body.size < 0) throw new PyValueError('size must be a non-negative integer');
        checkHex64(body.document_sha256, 'document_sha256');
        checkHex64(body.sha256, 'sha256');
        return body;
      });
      const parsed = L.timestamp(record.key);
      if (!parsed) throw new Failure(where, `${record.key} is not a timestamp token key of this case`);
      const stamped = parsed[2] !== undefined ? L.checkpointKey(Number(parsed[2])) : L.manifestKey(parsed[3]);
      const key = record.key;
      if (stamped !== record.document) throw new Failure(key, `is the token of ${stamped}; chain entry ${entry.seq} says ${record.document}`);
      const document = this.documents.get(record.document);
      if (!document) throw new Failure(key, `stamps ${record.document}, which is not stored`);
      const digest = await E.sha256Hex(document.raw);
      if (digest !== record.document_sha256) {
        throw new Failure(key, `chain entry ${entry.seq} says it stamps ${record.document} with SHA-256 ${record.document_sha256}; that object's is ${digest}`);
      }
      const reply = await read(this.source, key.slice(L.prefix.length), key);
      let token;
      try {
        token = root.TakanTimestamp.checkToken(reply, digest);
      } catch (err) {
        if (err instanceof root.TakanTimestamp.TokenError) throw new Failure(key, err.message);
        throw err;
      }
      if (token.genTime !== record.gen_time) throw new Failure(key, `genTime is ${token.genTime}; chain entry ${entry.seq} recorded ${record.gen_time}`);
      const seq = L.checkpoint(record.document);
      return { key, document: record.document, genTime: token.genTime, seq: entry.seq, stamps: seq ? `checkpoint ${seq[1]}` : `manifest ${L.manifest(record.document)[1]}`, checked: false };
    }

    // -------------------------------------------------------------- receipts (recorder/receipt.py)

    async #checkReceipt(signed) {
      const where = signed.name;
      const r = signed.receipt;
      if (r.case_id !== this.caseId) throw new Failure(where, `is a receipt for case ${r.case_id}, not ${this.caseId}`);
      const fingerprint = r.key_fingerprint;
      const caseKeys = new Map([...this.keyRecords].map(([f, rec]) => [f, rec.retiredAt]));
      if (!caseKeys.has(fingerprint)) throw new Failure(where, `is signed by key ${fingerprint}, which does not sign this case`);
      const retired = caseKeys.get(fingerprint);
      if (retired !== null && retired <= r.chain_head_seq) {
        throw new Failure(where, `is signed by key ${fingerprint}, retired by chain entry ${retired}, at or before the receipted entry ${r.chain_head_seq}`);
      }
      const L = this.layout;
      const get = async (key) => {
        try {
          return await this.source.get(key.slice(L.prefix.length));
        } catch (err) {
          if (err.missing) return null;
          throw new Failure(where, `cannot read the archive: ${err.message}`);
        }
      };
      const keyObject = L.publicKeyKey(fingerprint);
      const publicKey = await get(keyObject);
      if (!publicKey) throw new Failure(where, `is signed by key ${fingerprint}, absent (${keyObject})`);
      const actual = await fingerprintOf(publicKey);
      if (actual !== fingerprint) throw new Failure(where, `names key ${fingerprint}, not ${actual}`);
      if (!(await verifySignature(publicKey, signedMessage('receipt', r), signed.signature))) {
        throw new Failure(where, `signature does not verify with key ${fingerprint}`);
      }
      const issued = `receipt issued ${r.issued_at}`;
      const seq = r.chain_head_seq;
      const raw = await get(L.chainKey(seq));
      if (!raw) throw new Failure(where, `${chainWhere(seq)} is missing; the ${issued} says the chain reached it`);
      let entry;
      try {
        entry = chainEntry(P.parseJson(raw));
      } catch (err) {
        if (err instanceof PyValueError) throw new Failure(where, `${chainWhere(seq)} is malformed: ${err.message}`);
        throw err;
      }
      if (entry.hash !== r.chain_head) throw new Failure(where, `${chainWhere(seq)} has hash ${entry.hash}; the ${issued} says ${r.chain_head}`);
      if (entry.body.key !== r.manifest_key || entry.body.sha256 !== r.manifest_sha256) throw new Failure(where, `${chainWhere(seq)} does not record the receipted manifest`);
      const covered = [[r.manifest_key, r.manifest_sha256]];
      if (r.timestamp) covered.push([r.timestamp.key, r.timestamp.sha256]);
      for (const [key, sha256] of covered) {
        const data = await get(key);
        if (!data) throw new Failure(where, `${key} is missing; the ${issued} names it`);
        const digest = await E.sha256Hex(data);
        if (digest !== sha256) throw new Failure(where, `${key} has SHA-256 ${digest}; the ${issued} says ${sha256}`);
      }
    }

    // receipt.parse_receipt: any JSON spelling; the signed bytes are recomputed canonically.
    async #parseReceipt(bytes, where) {
      if (bytes.length > MAX_RECEIPT_BYTES) throw new Failure(where, `${bytes.length} bytes: too large for a receipt`);
      const fields = (obj, required, optional, what) => {
        if (!isDict(obj)) throw new PyValueError(`${what} must be a JSON object`);
        const names = Object.keys(obj);
        const missing = required.filter((f) => !names.includes(f));
        const extra = names.filter((n) => !required.includes(n) && !optional.includes(n));
        if (missing.length || extra.length) throw new PyValueError(`${what} fields wrong: missing ${reprSorted(missing)}, unexpected ${reprSorted(extra)}`);
        return obj;
      };
      return asAsync(where, 'not a valid signed receipt: ', async () => {
        const doc = fields(P.parseJson(bytes), ['receipt', 'signature'], [], '');
        const r = fields(P.subscript(doc, 'receipt'), RECEIPT_FIELDS, ['timestamp'], 'receipt');
        if (has(r, 'timestamp')) {
          const t = fields(r.timestamp, ['key', 'sha256', 'token'], [], 'receipt timestamp');
          if (typeof t.key !== 'string' || !t.key.startsWith('cases/')) throw new PyValueError(`timestamp key ${repr(t.key)} is not an archive key`);
          checkHex64(t.sha256, 'timestamp sha256');
          if (typeof t.token !== 'string') throw new PyValueError('timestamp token must be a base64 string');
          let token;
          try {
            token = P.b64decode(t.token);
          } catch {
            throw new PyValueError('timestamp token is not base64');
          }
          if (P.b64encode(token) !== t.token) throw new PyValueError('timestamp token is not in canonical base64');
          if ((await E.sha256Hex(token)) !== t.sha256) throw new PyValueError('timestamp token does not have the SHA-256 the receipt names');
        }
        checkCaseId(r.case_id);
        checkInspectionId(r.inspection_id);
        if (r.manifest_key !== layoutOf(r.case_id).manifestKey(r.inspection_id)) throw new PyValueError(`manifest_key ${repr(r.manifest_key)} is not this inspection's`);
        checkHex64(r.manifest_sha256, 'manifest_sha256');
        if (!isInt(r.chain_head_seq) || r.chain_head_seq < 0 || r.chain_head_seq > MAX_CHAIN_SEQ) {
          throw new PyValueError(`chain_head_seq ${repr(r.chain_head_seq)} must be an integer in 0..${MAX_CHAIN_SEQ}`);
        }
        checkHex64(r.chain_head, 'chain_head');
        const ended = P.parseUtc(r.ended_at);
        if (ended < P.parseUtc(r.started_at)) throw new PyValueError('ended_at is before started_at');
        P.parseUtc(r.issued_at);
        if (typeof r.clock !== 'string' || ![...r.clock].length || [...r.clock].length > MAX_CLOCK_LENGTH) {
          throw new PyValueError(`clock must be a source name of 1-${MAX_CLOCK_LENGTH} characters`);
        }
        if (typeof r.key_fingerprint !== 'string' || !FINGERPRINT.test(r.key_fingerprint)) throw new PyValueError(`key_fingerprint ${repr(r.key_fingerprint)} is not sha256:<64 hex>`);
        if (r.timestamp && !r.timestamp.key.startsWith(`cases/${r.case_id}/`)) throw new PyValueError(`timestamp key ${repr(r.timestamp.key)} is outside the case`);
        const signature = decodeSignature(P.subscript(doc, 'signature'));
        return { name: where, receipt: r, signature };
      });
    }

    // -------------------------------------------------------------- the summary

    // What takan verify prints of the keys: each recorded key, what it signed, its rotation.
    report() {
      const count = (values, fingerprint) => values.filter((f) => f === fingerprint).length;
      const byCheckpoints = [...this.checkpoints.values()].map((c) => c.key_fingerprint);
      const byManifests = [...this.manifests.values()].map((m) => m.key_fingerprint);
      const byConclusions = this.entries.filter((e) => e.kind === 'conclusion').map((e) => e.body.key_fingerprint);
      const signers = [...this.keyRecords].map(([fingerprint, record]) => ({
        fingerprint,
        recordedBy: record.seq,
        checkpoints: count(byCheckpoints, fingerprint),
        manifests: count(byManifests, fingerprint),
        conclusions: count(byConclusions, fingerprint),
        rotatedFrom: record.rotatedFrom,
        retiredAt: record.retiredAt,
      }));
      return {
        caseId: this.caseId,
        chainEntries: this.entries.length,
        checkpoints: this.checkpoints.size,
        manifests: this.manifests.size,
        signers,
        pinned: this.trustedKeys !== null,
        severalSigners: signers.filter((s) => s.checkpoints + s.manifests + s.conclusions > 0).length > 1,
        timestamps: this.timestamps ?? [],
        receipts: this.receipts.length,
        inspectorSignatures: this.inspectorSignatures ?? [],
      };
    }
  }

  root.TakanVerify = { CaseVerifier, Failure, verifyEntries, chainEntry, segmentRecord, parseCanonical };
})(globalThis);
