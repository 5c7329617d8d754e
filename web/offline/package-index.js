// The package index of an evidence package (docs/archive.md, "Exports"), checked in the browser
// on the files of the unzipped folder: the rules, order and words of `takan verify EXPORT.zip`
// (recorder/package_index.py, recorder/package_verify.py), hashes and signatures by WebCrypto.
// A classic script after evidence-core.js: it defines globalThis.TakanPackage and nothing else.
//
// Rules 1-6 come before the case's own rules and rule 8 after them, as in takan verify; the
// page shows the first failure as "FAILED: <where>: <reason>". What a folder cannot show as a
// zip does (a name twice, a directory entry) is the zip's alone; files whose name or folder
// starts with a dot (.DS_Store and the like, left by file managers; a package never holds one)
// are not part of the package.

(function (root) {
  'use strict';

  const E = root.TakanEvidence;
  const INDEX_NAME = 'package-index.json';
  const PUBLIC_KEY_TEXT = 'public-key.txt';
  const DOCUMENT_TYPE = 'package_index';
  const NAME_CHARS = /^[A-Za-z0-9._/-]{1,1024}$/;
  const CASE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
  const FINGERPRINT = /^sha256:[0-9a-f]{64}$/;
  const HEX64 = /^[0-9a-f]{64}$/;
  const UTC = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$/;
  const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
  const CHECKPOINT = /^checkpoints\/[0-9]{12}\.json$/;
  const CHAIN_ENTRY = /^chain\/[0-9]{12}\.json$/;
  const MAX_CLOCK_LENGTH = 128;
  const MAX_SIZE = Number.MAX_SAFE_INTEGER;
  const HASHING = 3; // files hashed at a time

  const failure = (where, reason) => ({ where, reason });

  // A failure of the index's own form: the reason Python's ValueError gives (its repr of values).
  class Malformed extends Error {}

  function repr(value) {
    if (typeof value === 'string') return `'${value}'`;
    if (value === null || value === undefined) return 'None';
    if (value === true) return 'True';
    if (value === false) return 'False';
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }

  const list = (names) => `[${names.map(repr).join(', ')}]`;

  function exactFields(obj, fields, what) {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new Malformed(`${what} must be a JSON object`);
    const names = Object.keys(obj);
    if (names.length !== fields.length || !fields.every((f) => names.includes(f))) {
      const missing = fields.filter((f) => !names.includes(f)).sort();
      const extra = names.filter((n) => !fields.includes(n)).sort();
      throw new Malformed(`${what} fields wrong: missing ${list(missing)}, unexpected ${list(extra)}`);
    }
    return obj;
  }

  // Why `name` cannot be a member's name (the rules of object keys), or null.
  function nameProblem(name) {
    if (typeof name !== 'string' || !NAME_CHARS.test(name)) return `object key ${repr(name)} is empty, too long or has a forbidden character`;
    if (name.split('/').some((s) => !s || s.startsWith('.'))) return `object key ${repr(name)} has an empty or dot segment`;
    return null;
  }

  function memberCase(name) {
    const parts = name.split('/');
    return parts.length > 2 && parts[0] === 'cases' ? parts[1] : null;
  }

  function isInteger(value) {
    return typeof value === 'number' && Number.isInteger(value);
  }

  function checkMember(obj) {
    const member = exactFields(obj, ['name', 'size', 'sha256'], 'a member');
    const problem = nameProblem(member.name);
    if (problem) throw new Malformed(problem);
    if (member.name === INDEX_NAME) throw new Malformed(`the index cannot list itself (${INDEX_NAME})`);
    if (!isInteger(member.size)) throw new Malformed(`${member.name}: size must be an integer`);
    if (member.size < 0 || member.size > MAX_SIZE) throw new Malformed(`${member.name}: size ${member.size} is out of range`);
    if (typeof member.sha256 !== 'string' || !HEX64.test(member.sha256)) {
      throw new Malformed(`${member.name}: sha256 ${repr(member.sha256)} must be 64 lower-case hex digits`);
    }
    return member;
  }

  function checkIndex(obj) {
    const index = exactFields(obj, ['case_id', 'exported_at', 'clock', 'key_fingerprint', 'members'], 'the index');
    if (!Array.isArray(index.members)) throw new Malformed('members must be a list');
    index.members.forEach(checkMember);
    const caseId = index.case_id;
    if (typeof caseId !== 'string' || !CASE_ID.test(caseId) || caseId.includes('..')) {
      throw new Malformed(
        `case_id ${repr(caseId)} must be 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit, without '..'`,
      );
    }
    if (typeof index.exported_at !== 'string' || !UTC.test(index.exported_at)) {
      throw new Malformed(`time ${repr(index.exported_at)} is not UTC ISO 8601 like 2026-01-31T08:00:00.000Z`);
    }
    if (typeof index.clock !== 'string' || !index.clock.length || index.clock.length > MAX_CLOCK_LENGTH) {
      throw new Malformed(`clock must be a source name of 1-${MAX_CLOCK_LENGTH} characters`);
    }
    if (typeof index.key_fingerprint !== 'string' || !FINGERPRINT.test(index.key_fingerprint)) {
      throw new Malformed(`key_fingerprint ${repr(index.key_fingerprint)} must be 'sha256:' and 64 hex digits`);
    }
    const seen = new Set();
    for (const { name } of index.members) {
      if (seen.has(name)) throw new Malformed(`lists ${name} twice`);
      seen.add(name);
      const other = memberCase(name);
      if (other !== null && other !== caseId) throw new Malformed(`lists ${name}, a member of another case`);
    }
    return index;
  }

  function decodeSignature(text) {
    if (typeof text !== 'string') throw new Malformed('signature must be a base64 string');
    if (!BASE64.test(text)) throw new Malformed('signature is not base64');
    const raw = E.base64ToBytes(text);
    if (raw.length !== 64) throw new Malformed('signature is not the canonical base64 of 64 bytes');
    return raw;
  }

  // {index, signature} of the package-index.json bytes, or throws a failure naming the index.
  function parseIndex(bytes) {
    let value;
    try {
      value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
      E.canonical(value);
    } catch (err) {
      throw failure(INDEX_NAME, `not JSON: ${err.message}`);
    }
    if (E.canonical(value) !== new TextDecoder().decode(bytes)) throw failure(INDEX_NAME, 'not in canonical JSON form');
    try {
      const document = exactFields(value, [DOCUMENT_TYPE, 'signature'], 'signed index');
      const signature = decodeSignature(document.signature);
      return { index: checkIndex(document[DOCUMENT_TYPE]), signature };
    } catch (err) {
      if (!(err instanceof Malformed)) throw err;
      throw failure(INDEX_NAME, `not a valid signed package index: ${err.message}`);
    }
  }

  // public-key.txt's keys: fingerprint → raw bytes; throws the reason of the first wrong line.
  async function publicKeysInText(bytes) {
    let text;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (err) {
      throw new Malformed(`not UTF-8: ${err.message}`);
    }
    const keys = new Map();
    let fingerprint = null;
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i += 1) {
      const number = i + 1;
      const at = lines[i].indexOf(': ');
      const name = at < 0 ? lines[i] : lines[i].slice(0, at);
      const value = at < 0 ? '' : lines[i].slice(at + 2);
      if (name === 'fingerprint') {
        if (fingerprint !== null) throw new Malformed(`line ${number}: ${fingerprint} has no public_key_base64 line`);
        if (!FINGERPRINT.test(value)) throw new Malformed(`line ${number}: ${repr(value)} is not a key fingerprint`);
        fingerprint = value;
      } else if (name === 'public_key_base64') {
        if (fingerprint === null) throw new Malformed(`line ${number}: a public key without its fingerprint`);
        if (!BASE64.test(value)) throw new Malformed(`line ${number}: the public key is not base64`);
        const raw = E.base64ToBytes(value);
        if (raw.length !== 32 || `sha256:${await E.sha256Hex(raw)}` !== fingerprint) {
          throw new Malformed(`line ${number}: the public key is not the one of ${fingerprint}`);
        }
        keys.set(fingerprint, raw);
        fingerprint = null;
      }
    }
    if (fingerprint !== null) throw new Malformed(`${fingerprint} has no public_key_base64 line`);
    return keys;
  }

  // The package's files by member name: paths relative to the folder that holds
  // package-index.json (the shallowest one), else to the folder the user picked.
  class PackageFiles {
    constructor(files) {
      const entries = [...files]
        .map((file) => ({ file, path: (file.webkitRelativePath || file.relativePath || file.name).split('/') }))
        .filter(({ path }) => !path.some((part) => part.startsWith('.')));
      const indexes = entries.filter(({ path }) => path[path.length - 1] === INDEX_NAME).sort((a, b) => a.path.length - b.path.length);
      const base = indexes.length ? indexes[0].path.slice(0, -1) : entries.length && entries[0].path.length > 1 ? entries[0].path.slice(0, 1) : [];
      this.files = new Map();
      for (const { file, path } of entries) {
        if (path.length > base.length && base.every((part, i) => path[i] === part)) this.files.set(path.slice(base.length).join('/'), file);
      }
    }

    names() {
      return [...this.files.keys()].sort();
    }

    has(name) {
      return this.files.has(name);
    }

    async get(name) {
      const file = this.files.get(name);
      if (!file) throw failure(name, 'missing');
      try {
        return new Uint8Array(await file.arrayBuffer());
      } catch (err) {
        throw failure(name, `unreadable: ${err.message}`);
      }
    }
  }

  // The rules on one package. index(): rules 1-2; members(): 3-6; first(): 1-6, the package
  // rules before the case's; last(): rule 8, after them. Each answers a failure or null.
  class PackageCheck {
    constructor(files) {
      this.files = new PackageFiles(files);
      this.digests = new Map(); // member name → Promise<{sha256, size} | {missing} | {error}>
    }

    index() {
      this.indexed ??= this.#index();
      return this.indexed;
    }

    first() {
      this.firstVerdict ??= this.index().then(async ({ verdict }) => verdict ?? (await this.#members()));
      return this.firstVerdict;
    }

    // A member's digest, hashed once for the package and the case's rules alike.
    digest(name) {
      if (!this.digests.has(name)) {
        this.digests.set(
          name,
          this.files.get(name).then(
            async (bytes) => ({ sha256: await E.sha256Hex(bytes), size: bytes.length }),
            (err) => (err.reason === 'missing' ? { missing: true } : { error: err.reason.replace(/^unreadable: /, '') }),
          ),
        );
      }
      return this.digests.get(name);
    }

    async #index() {
      const names = this.files.names();
      for (const name of names) {
        const problem = nameProblem(name);
        if (problem) return { verdict: failure(name, `not a valid member name: ${problem}`) };
      }
      if (!names.includes(INDEX_NAME)) return { verdict: failure(INDEX_NAME, 'missing: the package has no index of its members') };
      let signed;
      try {
        signed = parseIndex(await this.files.get(INDEX_NAME));
      } catch (err) {
        if (err.where === undefined) throw err;
        return { verdict: err };
      }
      const { index, signature } = signed;
      const fingerprintHex = index.key_fingerprint.slice('sha256:'.length);
      const keyName = `cases/${index.case_id}/keys/${fingerprintHex}.pub`;
      if (!this.files.has(keyName)) {
        return { index, verdict: failure(INDEX_NAME, `names signing key ${index.key_fingerprint}, absent (${keyName})`) };
      }
      const publicKey = await this.files.get(keyName);
      if (publicKey.length !== 32) return { index, verdict: failure(keyName, `${publicKey.length} bytes, not a raw Ed25519 public key`) };
      const actual = `sha256:${await E.sha256Hex(publicKey)}`;
      if (actual !== index.key_fingerprint) return { index, verdict: failure(keyName, `holds key ${actual}, not the one its name says`) };
      const message = new TextEncoder().encode(E.canonical({ [DOCUMENT_TYPE]: index }));
      let valid = false;
      try {
        valid = await E.verifyEd25519(publicKey, signature, message);
      } catch {
        valid = false;
      }
      if (!valid) return { index, verdict: failure(INDEX_NAME, `signature does not verify with key ${index.key_fingerprint}`) };
      this.publicKey = publicKey;
      return { index, verdict: null };
    }

    async #members() {
      const { index } = await this.index();
      const names = new Set(this.files.names());
      const listed = new Set(index.members.map((m) => m.name));
      for (const name of [...names].sort()) {
        if (listed.has(name) || name === INDEX_NAME) continue;
        const other = memberCase(name);
        if (other !== null && other !== index.case_id) return failure(name, `a member of case ${other}; this package is of case ${index.case_id}`);
        return failure(name, 'not listed in the package index');
      }
      for (const { name } of index.members) {
        if (!names.has(name)) return failure(name, 'listed in the package index but absent');
      }
      let next = 0;
      const worker = async () => {
        while (next < index.members.length) await this.digest(index.members[next++].name);
      };
      await Promise.all(Array.from({ length: HASHING }, worker));
      for (const member of index.members) {
        const found = await this.digest(member.name);
        if (found.error) return failure(member.name, `unreadable: ${found.error}`);
        if (found.size > member.size) return failure(member.name, `size is more than ${member.size} bytes; the package index records ${member.size}`);
        if (found.size !== member.size) return failure(member.name, `size is ${found.size} bytes; the package index records ${member.size}`);
        if (found.sha256 !== member.sha256) return failure(member.name, `SHA-256 is ${found.sha256}; the package index records ${member.sha256}`);
      }
      if (!names.has(PUBLIC_KEY_TEXT)) return failure(PUBLIC_KEY_TEXT, 'missing');
      try {
        const keys = await publicKeysInText(await this.files.get(PUBLIC_KEY_TEXT));
        if (!keys.has(index.key_fingerprint)) return failure(PUBLIC_KEY_TEXT, `does not name the package's signing key ${index.key_fingerprint}`);
      } catch (err) {
        if (!(err instanceof Malformed)) throw err;
        return failure(PUBLIC_KEY_TEXT, err.message);
      }
      return null;
    }

    // Rule 8: the index's key is the case's at its end: no key_rotated entry retired it, and it
    // signs one of the case's checkpoints (the signature checked here).
    async last() {
      const { index, verdict } = await this.index();
      if (verdict) return verdict;
      const prefix = `cases/${index.case_id}/`;
      const fingerprint = index.key_fingerprint;
      for (const name of this.files.names()) {
        if (!name.startsWith(prefix) || !CHAIN_ENTRY.test(name.slice(prefix.length))) continue;
        try {
          const entry = E.parseCanonical(await this.files.get(name));
          if (entry.kind === 'key_rotated' && entry.body?.previous === fingerprint) {
            return failure(INDEX_NAME, `signed by ${fingerprint} after chain entry ${entry.seq} rotated away from it`);
          }
        } catch {
          // the case's rules name an unreadable entry
        }
      }
      for (const name of this.files.names()) {
        if (!name.startsWith(prefix) || !CHECKPOINT.test(name.slice(prefix.length))) continue;
        try {
          const document = E.parseCanonical(await this.files.get(name));
          const checkpoint = document.checkpoint;
          if (checkpoint?.key_fingerprint !== fingerprint) continue;
          const message = new TextEncoder().encode(E.canonical({ checkpoint }));
          if (await E.verifyEd25519(this.publicKey, E.base64ToBytes(document.signature), message)) return null;
        } catch {
          // not a checkpoint this key signs; the case's rules name a broken one
        }
      }
      return failure(INDEX_NAME, `signed by ${fingerprint}, which signs no checkpoint of case ${index.case_id}`);
    }
  }

  root.TakanPackage = { INDEX_NAME, PackageCheck, PackageFiles, parseIndex, publicKeysInText };
})(globalThis);
