// Evidence core shared by the server replay page (/replay/…) and the offline package page
// (index.html of an export). A CLASSIC script (module scripts do not load from file://): it
// defines globalThis.TakanEvidence and nothing else.
//
// What it checks, as docs/archive.md specifies: canonical JSON, the hash chain (each entry's
// hash = SHA-256(prev bytes || canonical JSON without "hash")), the manifest's Ed25519 signature
// over canonical_json({"manifest": …}) with the key whose SHA-256 is its fingerprint, the
// manifest's RFC 9162 Merkle root, and the SHA-256 of every segment against the signed manifest
// before its bytes go anywhere near a SourceBuffer. The pages differ only in their ObjectSource.
// The case's verdict is takan verify's, from case-verify.js (loaded after this script, with
// python-words.js and timestamp-token.js): every rule of recorder/verify.py, in its words.

(function (root) {
  'use strict';

  const TRACKS = ['applicant-video', 'applicant-audio', 'inspector-audio'];
  const VIDEO_TRACK = 'applicant-video';
  const AHEAD_S = 45; // buffered ahead of the playhead
  const BEHIND_S = 15; // kept behind it before eviction
  const RUN_JOIN_S = 0.5; // larger jumps in media or wall time start a new run (a gap)
  const GAP_NOTICE_S = 1; // holes shorter than this are jumped without a notice
  const encoder = new TextEncoder();

  // ---------------------------------------------------------------- bytes, hashes, JSON

  function bytesToHex(bytes) {
    const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    let out = '';
    for (const b of view) out += b.toString(16).padStart(2, '0');
    return out;
  }

  function hexToBytes(hex) {
    if (typeof hex !== 'string' || hex.length % 2 || /[^0-9a-f]/.test(hex)) throw new Error(`not lower-case hex: ${hex}`);
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i += 1) out[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    return out;
  }

  function base64ToBytes(text) {
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) out[i] = binary.charCodeAt(i);
    return out;
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  }

  async function sha256Hex(bytes) {
    return bytesToHex(await sha256(bytes));
  }

  // Canonical JSON (docs/archive.md): sorted ASCII names, no whitespace, integers only, and the
  // string escaping JSON.stringify already does (it escapes exactly the characters below U+0020,
  // `"` and `\`, with lower-case hex).
  function canonical(value) {
    if (value === null) return 'null';
    if (value === true) return 'true';
    if (value === false) return 'false';
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) throw new Error(`not a canonical integer: ${value}`);
      return Object.is(value, -0) ? '0' : String(value);
    }
    if (typeof value === 'string') return JSON.stringify(value);
    if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
    if (typeof value === 'object') {
      const names = Object.keys(value).sort();
      return `{${names.map((name) => `${JSON.stringify(name)}:${canonical(value[name])}`).join(',')}}`;
    }
    throw new Error(`not a JSON value: ${typeof value}`);
  }

  // Strict parse: the bytes must BE the canonical encoding of what they parse to (this refuses
  // duplicate names, fractions, whitespace and any second spelling).
  function parseCanonical(bytes) {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    const value = JSON.parse(text);
    if (canonical(value) !== text) throw new Error('not canonical JSON');
    return value;
  }

  // ---------------------------------------------------------------- chain, Merkle, signatures

  async function entryHash(entry) {
    const { hash, ...rest } = entry;
    return sha256Hex(concat(hexToBytes(entry.prev), encoder.encode(canonical(rest))));
  }

  async function merkleRoot(leaves) {
    if (leaves.length === 0) return sha256Hex(new Uint8Array(0));
    async function mth(lo, hi) {
      if (hi - lo === 1) return sha256(concat(Uint8Array.of(0), leaves[lo]));
      let k = 1;
      while (k * 2 < hi - lo) k *= 2;
      return sha256(concat(Uint8Array.of(1), await mth(lo, lo + k), await mth(lo + k, hi)));
    }
    return bytesToHex(await mth(0, leaves.length));
  }

  async function verifyEd25519(publicKey, signature, message) {
    const key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    return crypto.subtle.verify({ name: 'Ed25519' }, key, signature, message);
  }

  // The signed manifest of one inspection, checked against its signature, key, Merkle root and
  // the chain. Throws EvidenceError when it cannot be trusted at all.
  async function verifyManifest(source, caseId, inspectionId, entries) {
    const rel = `inspections/${inspectionId}/manifest.json`;
    let doc;
    try {
      doc = parseCanonical(await source.get(rel));
    } catch (err) {
      throw new EvidenceError('manifest', rel, err.missing ? 'missing' : `unreadable: ${err.message}`);
    }
    const names = Object.keys(doc).sort().join(',');
    if (names !== 'manifest,signature') throw new EvidenceError('manifest', rel, 'not a signed manifest');
    const manifest = doc.manifest;
    if (manifest.case_id !== caseId || manifest.inspection_id !== inspectionId) {
      throw new EvidenceError('manifest', rel, 'names another case or inspection');
    }
    const fingerprint = String(manifest.key_fingerprint || '');
    const fpHex = fingerprint.replace(/^sha256:/, '');
    if (!/^[0-9a-f]{64}$/.test(fpHex)) throw new EvidenceError('manifest', rel, 'bad key fingerprint');
    const keyRel = `keys/${fpHex}.pub`;
    let publicKey;
    try {
      publicKey = await source.get(keyRel);
    } catch (err) {
      throw new EvidenceError('key', keyRel, 'public key missing');
    }
    if (publicKey.length !== 32 || (await sha256Hex(publicKey)) !== fpHex) {
      throw new EvidenceError('key', keyRel, 'public key does not match its fingerprint');
    }
    const message = encoder.encode(canonical({ manifest }));
    let valid = false;
    try {
      valid = await verifyEd25519(publicKey, base64ToBytes(doc.signature), message);
    } catch (err) {
      throw new EvidenceError('signature', rel, `cannot check the signature: ${err.message}`);
    }
    if (!valid) throw new EvidenceError('signature', rel, 'Ed25519 signature does not verify');
    const segments = manifest.segments;
    if (!Array.isArray(segments)) throw new EvidenceError('manifest', rel, 'not a signed manifest');
    const root = await merkleRoot(segments.map((s) => hexToBytes(s.sha256)));
    if (root !== manifest.merkle_root) throw new EvidenceError('merkle', rel, 'Merkle root does not match the segments');
    return { manifest, fingerprint, rel };
  }

  // ---------------------------------------------------------------- the rules every verifier applies

  // The object keys of docs/archive.md, relative to cases/{case_id}/.
  const KEYS = {
    chain: /^chain\/([0-9]{12})\.json$/,
    checkpoint: /^checkpoints\/[0-9]{12}\.json$/,
    publicKey: /^keys\/[0-9a-f]{64}\.pub$/,
    manifest: /^inspections\/([0-9a-f]{32})\/manifest\.json$/,
    segment: /^inspections\/[0-9a-f]{32}\/segments\/(applicant-video|applicant-audio|inspector-audio)\/[0-9]{6}\.webm$/,
    evidence: /^inspections\/[0-9a-f]{32}\/(snapshots\/[0-9a-f]{32}\.png|annotations\/[0-9a-f]{32}(\.json|-v[1-9][0-9]{0,2}\.png)|reports\/[0-9]{3}\.(html|pdf))$/,
    timestamp: /^timestamps\/[0-9a-f]{16}\/(checkpoints\/[0-9]{12}|inspections\/[0-9a-f]{32}\/manifest)\.tsr$/,
  };

  function isLayoutKey(rel) {
    return Object.values(KEYS).some((pattern) => pattern.test(rel));
  }

  function segmentKey(caseId, body) {
    return `cases/${caseId}/inspections/${body.inspection_id}/segments/${body.track}/${String(body.seq).padStart(6, '0')}.webm`;
  }

  class EvidenceError extends Error {
    constructor(what, where, reason) {
      super(`${where}: ${reason}`);
      this.what = what;
      this.where = where;
      this.reason = reason;
    }
  }

  // ---------------------------------------------------------------- object sources

  class MissingObject extends Error {
    constructor(rel) {
      super(`${rel} is missing`);
      this.missing = true;
    }
  }

  // Objects from the server: /api/cases/{case}/objects/<relative key> and the chain from /audit.
  class ServerSource {
    constructor(caseId, base = '') {
      this.caseId = caseId;
      this.base = base;
    }

    // Every stored object of the case (relative keys), the server's consistent cut.
    async list() {
      const url = `${this.base}/api/cases/${encodeURIComponent(this.caseId)}/objects`;
      const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!response.ok) throw new Error(`objects: HTTP ${response.status}`);
      return (await response.json()).objects;
    }

    async get(rel) {
      const url = `${this.base}/api/cases/${encodeURIComponent(this.caseId)}/objects/${rel}`;
      const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
      if (response.status === 404) throw new MissingObject(rel);
      if (!response.ok) throw new Error(`${rel}: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    }

    async chain() {
      const entries = [];
      for (;;) {
        const url = `${this.base}/api/cases/${encodeURIComponent(this.caseId)}/audit?offset=${entries.length}&limit=500`;
        const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
        if (!response.ok) throw new Error(`audit: HTTP ${response.status}`);
        const page = await response.json();
        entries.push(...page.entries);
        if (page.entries.length === 0 || entries.length >= page.total) return entries;
      }
    }
  }

  // Objects from a folder the user picked (<input webkitdirectory> or a drop): the files'
  // relative paths contain cases/<case_id>/<key>. Chain entries are read from chain/*.json.
  class FolderSource {
    constructor(files) {
      this.cases = new Map(); // case_id → Map(relative key → File)
      for (const file of files) {
        const path = (file.webkitRelativePath || file.relativePath || file.name).split('/');
        const at = path.indexOf('cases');
        if (at < 0 || path.length < at + 3) continue;
        const caseId = path[at + 1];
        if (!this.cases.has(caseId)) this.cases.set(caseId, new Map());
        this.cases.get(caseId).set(path.slice(at + 2).join('/'), file);
      }
      this.caseId = this.cases.size ? [...this.cases.keys()].sort()[0] : null;
    }

    caseIds() {
      return [...this.cases.keys()].sort();
    }

    use(caseId) {
      this.caseId = caseId;
    }

    inspectionIds() {
      const ids = [];
      for (const rel of this.cases.get(this.caseId)?.keys() ?? []) {
        const match = /^inspections\/([0-9a-f]{32})\/manifest\.json$/.exec(rel);
        if (match) ids.push(match[1]);
      }
      return ids.sort();
    }

    // Every file of the case in the folder (relative keys): what the package holds.
    async list() {
      return [...(this.cases.get(this.caseId)?.keys() ?? [])].sort();
    }

    async get(rel) {
      const file = this.cases.get(this.caseId)?.get(rel);
      if (!file) throw new MissingObject(rel);
      return new Uint8Array(await file.arrayBuffer());
    }

    async chain() {
      const files = this.cases.get(this.caseId) ?? new Map();
      const keys = [...files.keys()].filter((k) => /^chain\/[0-9]{12}\.json$/.test(k)).sort();
      const entries = [];
      for (const rel of keys) {
        try {
          entries.push(parseCanonical(await this.get(rel)));
        } catch (err) {
          throw new EvidenceError('chain', rel, `unreadable: ${err.message}`);
        }
      }
      return entries;
    }
  }

  // ---------------------------------------------------------------- timeline model

  function ms(iso) {
    return Date.parse(iso);
  }

  function timeBase(text) {
    const [num, den] = String(text).split('/').map(Number);
    return num / den;
  }

  // The segment records the chain holds for an inspection, in chain order: what is played (the
  // signed manifest must list exactly these; ArchiveRules fails the verdict where it does not).
  function chainedSegments(entries, caseId, inspectionId) {
    return entries
      .filter((e) => e.kind === 'segment' && e.body?.inspection_id === inspectionId)
      .map((e) => e.body)
      .filter((b) => TRACKS.includes(b.track) && Number.isSafeInteger(b.seq) && b.key === segmentKey(caseId, b));
  }

  // Where every segment, event and gap of one inspection sits on one timeline (seconds from t0,
  // the first segment's start_utc). Tracks have unrelated media clocks: each run of contiguous
  // segments of a track gets one offset (its start_utc minus its media time); a jump starts a
  // new run, and the hole between runs is a gap. The segments are the chain's, every one of
  // them to the last of each track.
  function buildTimeline(manifest, entries, caseId) {
    const prefix = `cases/${caseId}/`;
    const inspectionId = manifest.inspection_id;
    const segs = chainedSegments(entries, caseId, inspectionId);
    const t0 = segs.length ? Math.min(...segs.map((s) => ms(s.start_utc))) : ms(manifest.created_at);
    const at = (iso) => (ms(iso) - t0) / 1000;
    const tracks = {};
    let end = 0;
    for (const track of TRACKS) {
      const list = segs.filter((s) => s.track === track).sort((a, b) => a.seq - b.seq);
      const out = [];
      const holes = [];
      let run = null;
      let previous = null;
      for (const s of list) {
        const tb = timeBase(s.time_base);
        const first = s.first_pts * tb;
        const last = s.last_pts * tb;
        const frame = s.codec === 'vp8' ? 1 / 30 : 0.02;
        const joins =
          previous &&
          s.seq === previous.seq + 1 &&
          Math.abs(first - previous.lastMedia - previous.frame) < RUN_JOIN_S &&
          Math.abs(ms(s.start_utc) - ms(previous.record.end_utc)) < RUN_JOIN_S * 1000;
        if (!joins) run = { offset: at(s.start_utc) - first };
        const seg = {
          record: s,
          track,
          seq: s.seq,
          key: s.key,
          rel: s.key.startsWith(prefix) ? s.key.slice(prefix.length) : s.key,
          offset: run.offset,
          start: first + run.offset,
          end: last + frame + run.offset,
          lastMedia: last,
          frame,
          state: 'pending', // → verified | broken
          reason: null,
          appended: false, // its bytes went into the track's SourceBuffer
          playedTo: null, // the furthest time its track's element played inside it
        };
        if (previous && seg.start - previous.end > RUN_JOIN_S) holes.push({ start: previous.end, end: seg.start, track });
        out.push(seg);
        previous = seg;
        end = Math.max(end, seg.end);
      }
      tracks[track] = { segments: out, holes };
    }
    const events = [];
    const afterwards = []; // chained after the inspection ended: conclusions, reports, replays
    const gaps = [];
    const closing = entries.find((e) => (e.kind === 'ended' || e.kind === 'manifest') && e.body?.inspection_id === inspectionId);
    for (const entry of entries) {
      const body = entry.body || {};
      if (body.inspection_id !== inspectionId) continue;
      if (entry.kind === 'segment' || entry.kind === 'manifest') continue;
      if (closing && entry.seq > closing.seq) {
        afterwards.push({ seq: entry.seq, kind: entry.kind, at: entry.at, body });
        continue;
      }
      const t = Math.min(Math.max(at(entry.at), 0), end);
      events.push({ t, seq: entry.seq, kind: entry.kind, at: entry.at, body });
      if (entry.kind === 'gap' && body.from_utc && body.to_utc) {
        gaps.push({ track: body.track, start: Math.max(0, at(body.from_utc)), end: Math.min(end, at(body.to_utc)), reason: body.reason });
      }
    }
    return { t0, duration: end, tracks, events, afterwards, gaps, segments: TRACKS.flatMap((tr) => tracks[tr].segments) };
  }

  // The segment of `list` holding time t, or null.
  function segmentAt(list, t) {
    for (const s of list) if (t >= s.start - 0.05 && t < s.end) return s;
    return null;
  }

  // ---------------------------------------------------------------- segment verification

  // Fetches and hashes segments against the signed manifest; a segment's bytes are handed out
  // only when they match. Remembers each verdict so the timeline can colour it.
  class SegmentVerifier {
    constructor(source, onState, onDigest = null) {
      this.source = source;
      this.onState = onState;
      this.onDigest = onDigest; // (rel, {sha256, size} | {missing} | {error}): what was read
    }

    async load(seg) {
      let bytes;
      try {
        bytes = await this.source.get(seg.rel);
      } catch (err) {
        this.onDigest?.(seg.rel, err.missing ? { missing: true } : { error: err.message });
        this.#set(seg, 'broken', err.missing ? 'missing' : `unreadable: ${err.message}`);
        return null;
      }
      const digest = await sha256Hex(bytes);
      this.onDigest?.(seg.rel, { sha256: digest, size: bytes.length });
      if (bytes.length !== seg.record.size) {
        this.#set(seg, 'broken', `size ${bytes.length} ≠ ${seg.record.size}`);
        return null;
      }
      if (digest !== seg.record.sha256) {
        this.#set(seg, 'broken', 'sha256');
        return null;
      }
      this.#set(seg, 'verified', null);
      return bytes;
    }

    #set(seg, state, reason) {
      if (seg.state === state && seg.reason === reason) return;
      seg.state = state;
      seg.reason = reason;
      this.onState(seg);
    }
  }

  // ---------------------------------------------------------------- MSE players

  function mimeOf(track, codec) {
    return track === VIDEO_TRACK ? `video/webm; codecs="${codec || 'vp8'}"` : `audio/webm; codecs="${codec || 'opus'}"`;
  }

  // One track in one media element through its own MediaSource: loads verified segments ahead
  // of the playhead, evicts behind it, never appends a segment that failed its hash.
  class TrackPlayer {
    constructor(track, segments, media, verifier, duration, onAppended = null) {
      this.track = track;
      this.segments = segments;
      this.media = media;
      this.verifier = verifier;
      this.duration = duration;
      this.onAppended = onAppended;
      this.target = 0;
      this.appended = new Set();
      this.closed = false;
      this.wake = null;
    }

    async open() {
      if (!this.segments.length) return;
      const mediaSource = new MediaSource();
      this.media.src = URL.createObjectURL(mediaSource);
      await new Promise((resolve) => mediaSource.addEventListener('sourceopen', resolve, { once: true }));
      mediaSource.duration = this.duration + 1;
      this.buffer = mediaSource.addSourceBuffer(mimeOf(this.track, this.segments[0].record.codec));
      this.buffer.mode = 'segments';
      this.mediaSource = mediaSource;
      this.loop();
    }

    setTarget(t) {
      this.target = t;
      this.wake?.();
    }

    close() {
      this.closed = true;
      this.wake?.();
    }

    #next() {
      const t = this.target;
      return this.segments.find((s) => s.end > t - 0.25 && s.start < t + AHEAD_S && s.state !== 'broken' && !this.appended.has(s));
    }

    async loop() {
      while (!this.closed) {
        const seg = this.#next();
        if (seg) {
          const bytes = await this.verifier.load(seg);
          if (bytes && !this.closed) {
            const done = await this.#update(() => {
              this.buffer.timestampOffset = seg.offset;
              this.buffer.appendBuffer(bytes);
            });
            this.appended.add(seg);
            if (done && !seg.appended) {
              seg.appended = true;
              this.onAppended?.(seg);
            }
          }
          continue;
        }
        await this.#evict();
        await new Promise((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, 300);
        });
        this.wake = null;
      }
    }

    async #evict() {
      const t = this.target;
      const old = [...this.appended].filter((s) => s.end < t - BEHIND_S || s.start > t + AHEAD_S + 30);
      for (const seg of old) {
        await this.#update(() => this.buffer.remove(Math.max(0, seg.start - 0.05), seg.end + 0.05));
        this.appended.delete(seg);
      }
    }

    // Runs a SourceBuffer action; true once it ended, false if it threw or failed.
    #update(action) {
      return new Promise((resolve) => {
        let failed = false;
        const error = () => (failed = true);
        const done = () => {
          this.buffer.removeEventListener('error', error);
          resolve(!failed);
        };
        this.buffer.addEventListener('error', error, { once: true });
        this.buffer.addEventListener('updateend', done, { once: true });
        try {
          action();
        } catch (err) {
          this.buffer.removeEventListener('updateend', done);
          this.buffer.removeEventListener('error', error);
          console.warn(`${this.track}: ${err.message}`);
          resolve(false);
        }
      });
    }
  }

  // Plays the tracks together. The clock is the video element while there is video to play;
  // each audio element follows it (re-seeked when it drifts by more than 150 ms, paused where
  // its track has nothing). Holes in the video (gaps, broken segments) are jumped with a notice,
  // never played through. Past the video's last playable segment the clock runs on by itself
  // for as long as an audio track has something to play, so the last chained segment of every
  // track is played, to its end.
  class ReplayController {
    constructor(timeline, video, audios, verifier, hooks) {
      this.timeline = timeline;
      this.video = video;
      this.audios = audios;
      this.hooks = hooks;
      const appended = (seg) => hooks.onSegment?.(seg);
      this.players = [
        new TrackPlayer(VIDEO_TRACK, timeline.tracks[VIDEO_TRACK].segments, video, verifier, timeline.duration, appended),
        ...Object.entries(audios).map(
          ([track, el]) => new TrackPlayer(track, timeline.tracks[track].segments, el, verifier, timeline.duration, appended),
        ),
      ];
      this.elements = { [VIDEO_TRACK]: video, ...audios };
      this.free = null; // {t, at, playing}: the clock past the last video, else null
      this.ended = false;
      this.timer = null;
    }

    async start() {
      await Promise.all(this.players.map((p) => p.open()));
      this.video.addEventListener('play', () => this.#changed());
      this.video.addEventListener('pause', () => this.#changed());
      this.video.addEventListener('seeking', () => this.sync());
      for (const [track, el] of Object.entries(this.elements)) el.addEventListener('timeupdate', () => this.#played(track, el));
      this.timer = setInterval(() => this.tick(), 200);
      this.seek(0);
    }

    stop() {
      clearInterval(this.timer);
      for (const p of this.players) p.close();
    }

    get playing() {
      return this.free ? this.free.playing : !this.video.paused;
    }

    now() {
      const free = this.free;
      if (!free) return this.video.currentTime;
      return free.playing ? Math.min(this.timeline.duration, free.t + (performance.now() - free.at) / 1000) : free.t;
    }

    play() {
      if (this.ended) this.seek(0); // from the start again, like any player
      if (this.free) {
        if (!this.free.playing) this.free = { t: this.free.t, at: performance.now(), playing: true };
        this.#changed();
      } else {
        this.video.play().catch(() => {});
      }
    }

    pause() {
      if (this.free) {
        this.free = { t: this.now(), at: performance.now(), playing: false };
        this.#changed();
      } else {
        this.video.pause();
      }
    }

    toggle() {
      if (this.playing) this.pause();
      else this.play();
    }

    #changed() {
      this.sync();
      this.hooks.onPlayState?.(this.playing);
    }

    // The first playable video time at or after t, and the hole skipped to reach it (or null).
    // `stalled`: the video has no data beyond t, so a segment whose successor is not adjacent
    // has ended even if its last frame's duration was estimated longer. `end`: no video ahead.
    playableFrom(t, stalled = false) {
      const list = this.timeline.tracks[VIDEO_TRACK].segments;
      const here = segmentAt(list, t);
      if (here && here.state !== 'broken') {
        const after = list[list.indexOf(here) + 1];
        const adjacent = after && after.state !== 'broken' && after.start - here.end < 0.1;
        if (!stalled || adjacent || t < here.end - 0.25) return { t, hole: null };
      }
      const from = here ? here.start : t - 0.05;
      const next = list.find((s) => s.start > from && s.state !== 'broken' && s !== here);
      if (!next) return { t, hole: null, end: true };
      return { t: next.start + 0.001, hole: { start: t, end: next.start, broken: here && here.state === 'broken' ? here : null } };
    }

    // The audio segments still to play after t (not broken), in time order.
    #audioAfter(t) {
      return Object.keys(this.audios)
        .flatMap((track) => this.timeline.tracks[track].segments)
        .filter((s) => s.state !== 'broken' && s.end > t + 0.05)
        .sort((a, b) => a.start - b.start);
    }

    seek(t) {
      const target = Math.max(0, Math.min(t, this.timeline.duration));
      const playing = this.playing;
      this.ended = false;
      const { t: to, hole, end } = this.playableFrom(target);
      if (end) {
        // No video from here on: the clock runs by itself over what the audio still has.
        this.free = { t: target, at: performance.now(), playing };
        if (!this.video.paused) this.video.pause();
        for (const p of this.players) p.setTarget(target);
        this.#changed();
        return;
      }
      const wasFree = this.free;
      this.free = null;
      if (hole && hole.end - hole.start >= GAP_NOTICE_S) this.hooks.onHole?.(hole);
      this.video.currentTime = to;
      for (const p of this.players) p.setTarget(to);
      if (wasFree?.playing) this.video.play().catch(() => {});
      this.sync();
    }

    tick() {
      if (this.free) {
        this.#tickFree();
      } else {
        this.#tickVideo();
      }
      for (const [track, el] of Object.entries(this.elements)) this.#played(track, el);
      this.sync();
      this.hooks.onTime?.(this.now());
    }

    #tickVideo() {
      const t = this.video.currentTime;
      for (const p of this.players) p.setTarget(t);
      if (this.video.paused && this.video.readyState >= 3) return;
      const stalled = this.#stalledAt(t);
      this.#unstick(t, stalled);
      const jump = stalled ? this.#bufferedJump(t) : null;
      const { t: to, hole, end } = jump ? { t: jump.to, hole: jump.hole } : this.playableFrom(t, stalled);
      if (hole) {
        if (hole.end - hole.start >= GAP_NOTICE_S || hole.broken) this.hooks.onHole?.(hole);
        this.video.currentTime = to;
      } else if (jump) {
        this.video.currentTime = to; // a few frames missing inside a segment: MSE would stall
      } else if (end && stalled) {
        // The video has played its last segment. The audio may go on (the inspector speaking
        // after the applicant left): the clock runs on without the video until it ends.
        const rest = this.#audioAfter(t);
        if (!rest.length) {
          this.#finish(t);
          return;
        }
        this.free = { t, at: performance.now(), playing: !this.video.paused };
        this.video.pause();
        this.#changed();
      }
    }

    // A playing video that has data ahead but has not moved for 1.5 s (the decoder stalled) is
    // nudged by a seek to where it is.
    #unstick(t, stalled) {
      if (this.video.paused || stalled || t !== this.lastVideoTime) {
        this.stuckSince = null;
      } else if (this.stuckSince == null) {
        this.stuckSince = performance.now();
      } else if (performance.now() - this.stuckSince > 1500) {
        this.stuckSince = null;
        console.warn(`${VIDEO_TRACK}: stalled at ${t.toFixed(3)} with data ahead, nudged`);
        this.video.currentTime = t + 0.01;
      }
      this.lastVideoTime = t;
    }

    #tickFree() {
      const t = this.now();
      for (const p of this.players) p.setTarget(t);
      if (!this.free.playing) return;
      const rest = this.#audioAfter(t);
      if (!rest.length || t >= this.timeline.duration) {
        this.#finish(Math.min(t, this.timeline.duration));
        return;
      }
      if (rest[0].start > t + 0.05) {
        // Nothing plays here: jump to the next audio, as a hole in the video is jumped.
        const hole = { start: t, end: rest[0].start, broken: null };
        if (hole.end - hole.start >= GAP_NOTICE_S) this.hooks.onHole?.(hole);
        this.free = { t: rest[0].start + 0.001, at: performance.now(), playing: true };
      }
    }

    #finish(t) {
      if (this.free) this.free = { t, at: performance.now(), playing: false };
      else this.video.pause();
      this.ended = true;
      this.#changed();
      this.hooks.onEnded?.(t);
    }

    // Where each track's element has played: the furthest time inside each segment.
    #played(track, el) {
      if (el.paused || el.seeking || !el.src) return;
      const t = el.currentTime;
      const seg = this.timeline.tracks[track].segments.find((s) => t >= s.start - 0.05 && t <= s.end + 0.05);
      if (!seg || seg.state === 'broken' || (seg.playedTo !== null && seg.playedTo >= t)) return;
      seg.playedTo = t;
      this.hooks.onSegment?.(seg);
    }

    // Where to go when the video stalls at t with buffered data further on: the next range if it
    // is less than a second away (frames missing inside a segment) or inside the same loaded
    // segment (a longer hole in its media, shown as a gap); null when neither holds.
    #bufferedJump(t) {
      const list = this.timeline.tracks[VIDEO_TRACK].segments;
      const here = segmentAt(list, t);
      const ranges = this.video.buffered;
      for (let i = 0; i < ranges.length; i += 1) {
        const start = ranges.start(i);
        if (start <= t) continue;
        const broken = list.some((s) => s.state === 'broken' && s.start < start && s.end > t);
        if (start - t < 1 && !broken) return { to: start + 0.001, hole: null };
        if (here && here.state === 'verified' && this.players[0].appended.has(here) && start < here.end) {
          return { to: start + 0.001, hole: { start: t, end: start, broken: null } };
        }
        return null;
      }
      return null;
    }

    #stalledAt(t) {
      const ranges = this.video.buffered;
      for (let i = 0; i < ranges.length; i += 1) {
        if (t >= ranges.start(i) - 0.05 && t <= ranges.end(i)) return ranges.end(i) - t < 0.15;
      }
      return true;
    }

    sync() {
      const t = this.now();
      const playing = this.playing;
      for (const [track, el] of Object.entries(this.audios)) {
        const seg = segmentAt(this.timeline.tracks[track].segments, t);
        if (!seg || seg.state === 'broken' || !el.src) {
          if (!el.paused) el.pause();
          continue;
        }
        if (Math.abs(el.currentTime - t) > 0.15) el.currentTime = t;
        if (playing && el.paused) el.play().catch((err) => this.hooks.onAudioBlocked?.(err));
        if (!playing && !el.paused) el.pause();
      }
    }
  }

  // ---------------------------------------------------------------- strings

  const STRINGS = {
    'zh-CN': {
      'replay.title': '踏勘回放',
      'replay.play': '播放',
      'replay.pause': '暂停',
      'replay.sound': '开启声音',
      'replay.loading': '正在核验签名清单…',
      'replay.signature': '清单签名',
      'replay.signature_ok': 'Ed25519 签名有效',
      'replay.key': '签名公钥指纹',
      'replay.chain': '哈希链',
      'replay.chain_ok': '完整（{n} 条记录）',
      'replay.chain_bad': '断裂：{where}：{reason}',
      'replay.chain_pending': '正在核验 {n} 条记录的链接与签名…',
      'replay.keys': '签名密钥',
      'replay.key_first': '（第 {seq} 条记录登记：本案首个密钥）',
      'replay.key_rotated': '（第 {seq} 条记录登记：由 {from} 轮换而来）',
      'replay.key_retired': '，已于第 {seq} 条记录停用',
      'replay.key_signed': '；签署检查点 {checkpoints} 个、清单 {manifests} 份、结论 {conclusions} 份',
      'replay.keys_several': '警告：本案由 {n} 个密钥签署；每次交接都是由前一密钥签署的 key_rotated 记录（见上）',
      'replay.passkey_signed': '链条目 {seq} 的结论由踏勘人员 {name} 以通行密钥签署（指纹 {fingerprint}），签名已核验',
      'replay.passkey_verified': '；已验证本人',
      'replay.trust_first': '信任：本案首个密钥（未固定）。请与服务器公布的密钥（GET /api/keys）或 public-key.txt 比对。',
      'replay.trust_pinned': '信任：仅限指定的密钥及其签署的轮换。',
      'replay.trust_server': '信任：本服务器的密钥历史（GET /api/keys）。',
      'replay.timestamps': '可信时间戳 {n} 个：已核对其摘要与所盖文档；未对照 TSA 证书核验签名（takan verify --tsa-cert 可核验）。',
      'replay.receipts_held': '回执 {n} 份：档案仍保存回执所述的记录与清单。',
      'replay.segments': '视频片段核验',
      'replay.segments_progress': '已核验 {done}/{total}',
      'replay.verified': '全部 {total} 个片段与签名清单一致',
      'replay.broken': '{count} 个片段与签名清单不一致，未播放：',
      'replay.broken_item': '{track} 第 {seq} 段（{key}）：{reason}',
      'replay.verdict': '存档核验结论',
      'replay.verdict_pending': '正在核验每个存档对象…',
      'replay.verdict_ok': '完整：每个存档对象都由哈希链记录且一致，签名清单覆盖链上全部片段',
      'replay.reason.sha256': 'SHA-256 与签名清单不符',
      'replay.reason.missing': '文件缺失',
      'replay.untrusted': '无法信任该存档：{reason}',
      'replay.gap': '{from}–{to} 无画面（{why}），已跳过',
      'replay.gap_broken': '片段被篡改',
      'replay.gap_missing': '录像中断',
      'replay.events': '事件',
      'replay.afterwards': '踏勘结束后的记录',
      'replay.chat': '文字沟通记录',
      'replay.no_chat': '无文字消息',
      'replay.track.applicant-video': '申请人视频',
      'replay.track.applicant-audio': '申请人声音',
      'replay.track.inspector-audio': '检查员声音',
      'replay.track.events': '事件',
      'replay.legend': '绿色：与签名清单一致；红色：不一致（不播放）；斜线：中断',
      'event.case_created': '创建案件',
      'event.inspector_assigned': '指派踏勘人员',
      'event.inspector_unassigned': '撤回踏勘人员',
      'event.signing_key': '记录签名公钥',
      'event.key_rotated': '更换签名密钥',
      'event.foreign_tail': '发现非本系统写入的记录',
      'event.chain_cut': '发现记录被截断',
      'event.invited': '发出邀请',
      'event.joined': '加入',
      'event.left': '离开',
      'event.rejoined': '重新连接',
      'event.participant_offline': '申请人离线',
      'event.participant_online': '申请人恢复在线',
      'event.media_interrupted': '画面中断',
      'event.media_resumed': '画面恢复',
      'event.consented': '申请人同意录像',
      'event.recording_started': '开始录像',
      'event.chat': '文字消息',
      'event.control': '控制请求',
      'event.control_result': '控制结果',
      'event.gap': '录像中断',
      'event.snapshot': '截图',
      'event.annotation_rendered': '标注图',
      'event.recovered': '崩溃恢复',
      'event.ended': '结束踏勘',
      'event.concluded': '踏勘结论',
      'event.replayed': '回放',
      'event.verified': '完整性核验',
      'event.replay_verified': '回放核验结果',
      'event.exported': '导出证据包',
      'event.access_denied': '拒绝访问',
      'event.manifest': '签名清单',
      'event.segment': '录像片段',
      'offline.title': 'Takan 证据包离线核验与回放',
      'offline.pick': '选择解压后的证据包文件夹',
      'offline.hint': '本页面不联网：所选文件夹中的每个文件都在本机浏览器中读取、计算哈希并与签名清单比对。',
      'offline.case': '案件',
      'offline.inspections': '踏勘记录',
      'offline.no_case': '所选文件夹中没有 cases/<案件编号>/ 目录',
      'offline.replay': '回放并核验',
      'offline.package': '证据包',
      'offline.package_pending': '正在按签名的包索引核验每个文件…',
      'offline.package_ok': '完整：包内 {n} 个文件都与签名的包索引一致（签名公钥 {key}）',
      'offline.trust': '信任的密钥与回执（可选）',
      'offline.pin': '只信任此签名密钥（与 takan verify --key 相同）',
      'offline.pin_invalid': '密钥指纹应为 sha256: 加 64 位小写十六进制数字，例如 GET /api/keys 所列的 fingerprint',
      'offline.receipts': '回执文件（与 takan verify --receipt 相同）',
    },
    en: {
      'replay.title': 'Inspection replay',
      'replay.play': 'Play',
      'replay.pause': 'Pause',
      'replay.sound': 'Sound on',
      'replay.loading': 'Checking the signed manifest…',
      'replay.signature': 'Manifest signature',
      'replay.signature_ok': 'valid Ed25519 signature',
      'replay.key': 'Signing key fingerprint',
      'replay.chain': 'Hash chain',
      'replay.chain_ok': 'intact ({n} entries)',
      'replay.chain_bad': 'broken: {where}: {reason}',
      'replay.chain_pending': 'checking the links and signatures of {n} entries…',
      'replay.keys': 'Signing keys',
      'replay.key_first': '(chain entry {seq}: the case\'s first key)',
      'replay.key_rotated': '(chain entry {seq}: rotated from {from})',
      'replay.key_retired': ', retired by chain entry {seq}',
      'replay.key_signed': '; signed {checkpoints} checkpoints, {manifests} manifests, {conclusions} conclusions',
      'replay.keys_several': 'WARNING: {n} keys sign this case; each hand-over is a key_rotated entry signed by the key before it (listed above)',
      'replay.passkey_signed': 'The conclusion at chain entry {seq} is signed by the inspector {name} with a passkey (fingerprint {fingerprint}); the signature checks',
      'replay.passkey_verified': '; user verified',
      'replay.trust_first': 'Trust: the case\'s first key, unpinned. Compare it with the server\'s keys (GET /api/keys) or public-key.txt.',
      'replay.trust_pinned': 'Trust: only the pinned key and the rotations it signed.',
      'replay.trust_server': 'Trust: this server\'s key history (GET /api/keys).',
      'replay.timestamps': '{n} trusted timestamps: each one\'s imprint matches the document it stamps; their signatures are not checked against a TSA certificate here (takan verify --tsa-cert does).',
      'replay.receipts_held': '{n} receipts: the archive still holds the entry and manifest each names.',
      'replay.segments': 'Segments',
      'replay.segments_progress': '{done}/{total} checked',
      'replay.verified': 'all {total} segments match the signed manifest',
      'replay.broken': '{count} segment(s) do not match the signed manifest and are not played:',
      'replay.broken_item': '{track} segment {seq} ({key}): {reason}',
      'replay.verdict': 'Archive verdict',
      'replay.verdict_pending': 'checking every stored object…',
      'replay.verdict_ok': 'intact: every stored object is recorded by the chain and matches it; the manifest covers every chained segment',
      'replay.reason.sha256': 'SHA-256 differs from the signed manifest',
      'replay.reason.missing': 'missing',
      'replay.untrusted': 'This archive cannot be trusted: {reason}',
      'replay.gap': 'No picture {from}–{to} ({why}), skipped',
      'replay.gap_broken': 'tampered segment',
      'replay.gap_missing': 'recording gap',
      'replay.events': 'Events',
      'replay.afterwards': 'After the inspection ended',
      'replay.chat': 'Chat transcript',
      'replay.no_chat': 'No chat messages',
      'replay.track.applicant-video': 'Applicant video',
      'replay.track.applicant-audio': 'Applicant audio',
      'replay.track.inspector-audio': 'Inspector audio',
      'replay.track.events': 'Events',
      'replay.legend': 'green: matches the signed manifest; red: does not (not played); hatched: gap',
      'event.case_created': 'Case created',
      'event.inspector_assigned': 'Inspector assigned',
      'event.inspector_unassigned': 'Inspector taken off',
      'event.signing_key': 'Signing key recorded',
      'event.key_rotated': 'Signing key rotated',
      'event.foreign_tail': 'Entries not written by Takan found',
      'event.chain_cut': 'The chain was cut',
      'event.invited': 'Invited',
      'event.joined': 'Joined',
      'event.left': 'Left',
      'event.rejoined': 'Reconnected',
      'event.participant_offline': 'Applicant offline',
      'event.participant_online': 'Applicant back online',
      'event.media_interrupted': 'Picture interrupted',
      'event.media_resumed': 'Picture resumed',
      'event.consented': 'Applicant consented',
      'event.recording_started': 'Recording started',
      'event.chat': 'Chat',
      'event.control': 'Control request',
      'event.control_result': 'Control result',
      'event.gap': 'Recording gap',
      'event.snapshot': 'Snapshot',
      'event.annotation_rendered': 'Marked-up copy',
      'event.recovered': 'Crash recovery',
      'event.ended': 'Ended',
      'event.concluded': 'Conclusion',
      'event.replayed': 'Replayed',
      'event.verified': 'Integrity check',
      'event.replay_verified': 'Replay verification',
      'event.exported': 'Exported',
      'event.access_denied': 'Access denied',
      'event.manifest': 'Signed manifest',
      'event.segment': 'Segment',
      'offline.title': 'Takan evidence package: offline verification and replay',
      'offline.pick': 'Choose the unzipped package folder',
      'offline.hint': 'This page uses no network: every file of the chosen folder is read, hashed and compared with the signed manifest in this browser.',
      'offline.case': 'Case',
      'offline.inspections': 'Inspections',
      'offline.no_case': 'The chosen folder has no cases/<case id>/ directory',
      'offline.replay': 'Replay and verify',
      'offline.package': 'Package',
      'offline.package_pending': 'checking every file against the signed package index…',
      'offline.package_ok': 'intact: all {n} files of the package match its signed index (signing key {key})',
      'offline.trust': 'Trusted key and receipts (optional)',
      'offline.pin': 'Trust only this signing key (as takan verify --key)',
      'offline.pin_invalid': 'A key fingerprint is sha256: and 64 lower-case hex digits, like the fingerprint GET /api/keys lists',
      'offline.receipts': 'Receipt files (as takan verify --receipt)',
    },
  };

  // One line describing an audit event's body (who and what), for lists.
  function describeEvent(kind, body) {
    const parts = [];
    for (const name of ['inspector', 'by', 'name', 'role', 'participant_id', 'text', 'action', 'value', 'ok', 'reason', 'outcome', 'state', 'where', 'track', 'method', 'path']) {
      if (body[name] !== undefined && body[name] !== null && body[name] !== '') {
        const value = typeof body[name] === 'object' ? canonical(body[name]) : String(body[name]);
        parts.push(name === 'text' ? `“${value}”` : value);
      }
    }
    if (body.from && typeof body.from === 'object') parts.unshift(body.from.name || body.from.role || '');
    else if (typeof body.from === 'string') parts.unshift(body.from);
    return parts.filter(Boolean).join(' · ');
  }

  // ---------------------------------------------------------------- the replay view

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'class') node.className = value;
      else if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const mm = String(Math.floor(s / 60)).padStart(2, '0');
    return `${mm}:${String(s % 60).padStart(2, '0')}`;
  }

  function pct(t, duration) {
    return `${Math.max(0, Math.min(100, (100 * t) / (duration || 1)))}%`;
  }

  // Builds the replay page inside `container`, verifies, plays. Options: source, caseId,
  // inspectionId, t(key, params), onVerified({state, segments_checked, broken}), status(el), and
  // for an evidence package `package` (a TakanPackage.PackageCheck): its rules before the case's
  // and after them, so the verdict is takan verify EXPORT.zip's.
  // State for tests and people: container dataset.state (loading|ready|error), .verify
  // (pending|verified|broken), .signature (valid|invalid), .firstFrame (ms since the click that
  // led here, when known).
  class ReplayView {
    constructor(container, options) {
      this.container = container;
      this.o = options;
      this.t = options.t;
      this.broken = new Map();
      this.hashed = 0;
    }

    // A view replaced by another (a pinned key, a receipt, another inspection) may still be
    // hashing: once stopped, what it finds no longer reaches the shared container.
    get #data() {
      return this.stopped ? {} : this.container.dataset;
    }

    stop() {
      this.stopped = true;
      this.controller?.stop();
      this.videoEl?.pause();
      for (const audio of Object.values(this.audioEls ?? {})) audio.pause();
    }

    #label(key) {
      return el('span', { 'data-i18n': key }, this.t(key));
    }

    async run() {
      const { container, t } = this;
      this.#data.state = 'loading';
      this.#data.verify = 'pending';
      for (const name of ['verdict', 'where', 'chain', 'ended', 'firstFrame', 'reported']) delete this.#data[name];
      const status = el('p', { class: 'muted', id: 'replay-status' }, t('replay.loading'));
      container.replaceChildren(status);
      let entries;
      let result;
      try {
        entries = await this.o.source.chain();
        entries.sort((a, b) => a.seq - b.seq);
        result = await verifyManifest(this.o.source, this.o.caseId, this.o.inspectionId, entries);
      } catch (err) {
        this.#data.state = 'error';
        this.#data.signature = err.what === 'signature' ? 'invalid' : 'unknown';
        this.#data.verify = 'broken';
        status.className = 'error';
        status.textContent = t('replay.untrusted', { reason: err.message });
        return;
      }
      this.#data.signature = 'valid';
      // The case-wide verdict is takan verify's (case-verify.js: its rules, order and words):
      // everything but the recorded bytes now, beside the playback; the bytes once every
      // segment has been read (#verifyAll), the ones played counted as read. A package's own
      // rules come first: nothing is shown before they have spoken.
      const Verify = root.TakanVerify;
      this.caseCheck = new Verify.CaseVerifier(this.o.source, this.o.caseId, {
        trustedKeys: this.o.trustedKeys ?? null,
        receipts: this.o.receipts ?? [],
      });
      const pkg = this.o.package;
      if (pkg) {
        const prefix = `cases/${this.o.caseId}/`;
        for (const name of pkg.files.names()) if (name.startsWith(prefix)) this.caseCheck.recordDigest(name.slice(prefix.length), pkg.digest(name));
      }
      const verdictOf = (err) => {
        if (err instanceof Verify.Failure) return { where: err.where, reason: err.reason };
        return { where: `cases/${this.o.caseId}/`, reason: `cannot be checked: ${err.message}` };
      };
      this.structure = this.caseCheck.structure().then(() => null, verdictOf);
      this.objectsVerdict = () => this.caseCheck.objects().then(() => null, verdictOf);
      this.packageVerdict = pkg ? pkg.first() : Promise.resolve(null);
      this.timeline = buildTimeline(result.manifest, entries, this.o.caseId);
      this.#render(result, entries);
      this.packageVerdict.then(async (first) => {
        const structural = await this.structure;
        this.#showChain(structural);
        this.verdict = first ?? structural;
        this.#showVerdict(false);
      });
      this.verifier = new SegmentVerifier(
        this.o.source,
        (seg) => this.#segmentState(seg),
        (rel, digest) => this.caseCheck.recordDigest(rel, digest),
      );
      const audios = {};
      for (const track of ['applicant-audio', 'inspector-audio']) {
        if (this.timeline.tracks[track].segments.length) audios[track] = this.audioEls[track];
      }
      this.controller = new ReplayController(this.timeline, this.videoEl, audios, this.verifier, {
        onTime: (now) => this.#onTime(now),
        onHole: (hole) => this.#hole(hole),
        onSegment: (seg) => this.#segmentPlayed(seg),
        onPlayState: (playing) => this.#playState(playing),
        onEnded: (t) => {
          this.#data.ended = t.toFixed(2);
        },
        onAudioBlocked: () => {
          this.soundBtn.hidden = false;
        },
      });
      this.#watchFirstFrame();
      await this.controller.start();
      this.#data.state = 'ready';
      this.controller.play();
      this.#verifyAll();
    }

    // The verdict as takan verify prints it: "FAILED: <where>: <reason>", or intact once every
    // object has been read (`final`).
    #showVerdict(final) {
      const { container, t, verdict } = this;
      const box = this.verdictEl;
      if (verdict) {
        box.dataset.state = 'failed';
        box.dataset.where = verdict.where;
        box.className = 'bad mono';
        box.textContent = `FAILED: ${verdict.where}: ${verdict.reason}`;
        this.#data.verdict = 'failed';
        this.#data.where = verdict.where;
        this.#data.verify = 'broken';
      } else if (final) {
        box.dataset.state = 'verified';
        box.className = 'ok';
        box.textContent = t('replay.verdict_ok');
        this.#data.verdict = 'verified';
      }
    }

    // The chain's own state, once the case verifier has checked every link and signed head.
    #showChain(structural) {
      const intact = Boolean(this.caseCheck.chainVerified);
      this.#data.chain = intact ? 'intact' : 'broken';
      this.chainEl.className = intact ? 'ok' : 'bad';
      this.chainEl.textContent = intact
        ? this.t('replay.chain_ok', { n: this.caseCheck.entries.length })
        : this.t('replay.chain_bad', { where: structural?.where ?? '', reason: structural?.reason ?? '' });
    }

    // Who signed, as takan verify lists it: every key the chain records, what it signed, and
    // how far it is trusted (the server's key history, a pinned key, or the case's first key).
    #showKeys(report) {
      const { t } = this;
      const items = report.signers.map((s) =>
        el(
          'li',
          { 'data-fingerprint': s.fingerprint },
          el('span', { class: 'mono' }, s.fingerprint),
          ' ',
          el(
            'span',
            { class: 'muted' },
            t(s.rotatedFrom ? 'replay.key_rotated' : 'replay.key_first', { seq: s.recordedBy, from: s.rotatedFrom ?? '' }) +
              (s.retiredAt !== null ? t('replay.key_retired', { seq: s.retiredAt }) : '') +
              t('replay.key_signed', { checkpoints: s.checkpoints, manifests: s.manifests, conclusions: s.conclusions }),
          ),
        ),
      );
      const notes = [];
      if (report.severalSigners) notes.push(el('p', { class: 'warn', id: 'replay-keys-warning' }, t('replay.keys_several', { n: report.signers.length })));
      notes.push(el('p', { class: 'muted small', id: 'replay-trust' }, t(this.o.trustedKeys ? this.o.trustLabel ?? 'replay.trust_pinned' : 'replay.trust_first')));
      for (const signed of report.inspectorSignatures ?? []) {
        notes.push(
          el(
            'p',
            { class: 'ok small', 'data-passkey': signed.fingerprint, 'data-seq': String(signed.seq) },
            t('replay.passkey_signed', { seq: signed.seq, name: signed.username, fingerprint: signed.fingerprint }) + (signed.userVerified ? t('replay.passkey_verified') : ''),
          ),
        );
      }
      if (report.timestamps.length) notes.push(el('p', { class: 'muted small', id: 'replay-timestamps' }, t('replay.timestamps', { n: report.timestamps.length })));
      if (report.receipts) notes.push(el('p', { class: 'ok small', id: 'replay-receipts' }, t('replay.receipts_held', { n: report.receipts })));
      this.keysEl.className = '';
      this.keysEl.dataset.signers = String(report.signers.length);
      this.keysEl.replaceChildren(el('ul', { class: 'ev-keys' }, items), ...notes);
    }

    #render(result, entries) {
      const { t, timeline } = this;
      this.#data.chain = 'pending';
      this.progress = el('dd', { id: 'replay-progress' }, t('replay.segments_progress', { done: 0, total: timeline.segments.length }));
      const facts = el(
        'dl',
        { class: 'ev-facts' },
        el('dt', {}, this.#label('replay.signature')),
        el('dd', { class: 'ok', id: 'replay-signature' }, t('replay.signature_ok')),
        el('dt', {}, this.#label('replay.key')),
        el('dd', { class: 'mono', id: 'replay-fingerprint' }, result.fingerprint),
        el('dt', {}, this.#label('replay.chain')),
        (this.chainEl = el('dd', { id: 'replay-chain', class: 'muted' }, t('replay.chain_pending', { n: entries.length }))),
        el('dt', {}, this.#label('replay.keys')),
        (this.keysEl = el('dd', { id: 'replay-keys', class: 'muted' }, t('replay.verdict_pending'))),
        el('dt', {}, this.#label('replay.segments')),
        this.progress,
        el('dt', {}, this.#label('replay.verdict')),
        (this.verdictEl = el('dd', { id: 'replay-verdict', 'data-state': 'pending' }, t('replay.verdict_pending'))),
      );
      this.brokenBox = el('div', { class: 'ev-broken', id: 'replay-broken', role: 'alert', hidden: true });
      this.notice = el('p', { class: 'ev-notice', id: 'replay-notice', role: 'status', hidden: true });
      this.videoEl = el('video', { id: 'replay-video', playsinline: true, muted: true });
      this.videoEl.muted = true; // no sound of its own: the audio tracks play beside it
      this.audioEls = {
        'applicant-audio': el('audio', { id: 'replay-audio-applicant' }),
        'inspector-audio': el('audio', { id: 'replay-audio-inspector' }),
      };
      this.playBtn = el('button', { class: 'btn primary', type: 'button', id: 'replay-play', onclick: () => this.#toggle() }, t('replay.play'));
      this.soundBtn = el('button', { class: 'btn', type: 'button', id: 'replay-sound', hidden: true, onclick: () => this.#enableSound() }, this.#label('replay.sound'));
      this.timeLabel = el('span', { class: 'mono', id: 'replay-time' }, `00:00 / ${clock(timeline.duration)}`);

      this.playhead = el('div', { class: 'tl-playhead' });
      const lanes = ['applicant-video', 'applicant-audio', 'inspector-audio'].map((track) => this.#lane(track));
      this.eventsBar = el('div', { class: 'tl-bar tl-events' });
      for (const ev of timeline.events) {
        this.eventsBar.append(
          el('button', {
            class: `tl-event kind-${ev.kind}`,
            type: 'button',
            style: `left:${pct(ev.t, timeline.duration)}`,
            title: `${t(`event.${ev.kind}`)} ${ev.at}`,
            'data-kind': ev.kind,
            'data-seq': ev.seq,
            onclick: (e) => {
              e.stopPropagation();
              this.#seek(ev.t);
            },
          }),
        );
      }
      const tl = el(
        'div',
        { class: 'tl', id: 'replay-timeline' },
        lanes,
        el('div', { class: 'tl-lane' }, el('span', { class: 'tl-label' }, this.#label('replay.track.events')), this.eventsBar),
        this.playhead,
      );
      tl.addEventListener('click', (e) => {
        const bar = tl.querySelector('.tl-bar');
        const box = bar.getBoundingClientRect();
        if (e.clientX < box.left) return;
        this.#seek(((e.clientX - box.left) / box.width) * timeline.duration);
      });
      this.timelineEl = tl;

      this.eventList = el(
        'ol',
        { class: 'ev-events', id: 'replay-events' },
        timeline.events.map((ev) =>
          el(
            'li',
            { 'data-kind': ev.kind, 'data-seq': ev.seq, 'data-t': ev.t.toFixed(3) },
            el(
              'button',
              { type: 'button', class: 'btn-link', onclick: () => this.#seek(ev.t) },
              el('span', { class: 'mono' }, clock(ev.t)),
              ' ',
              el('strong', {}, t(`event.${ev.kind}`) === `event.${ev.kind}` ? ev.kind : t(`event.${ev.kind}`)),
              ' ',
              el('span', { class: 'muted' }, describeEvent(ev.kind, ev.body)),
            ),
          ),
        ),
      );
      const chats = timeline.events.filter((ev) => ev.kind === 'chat');
      // A chat entry names its sender by participant ID; the join entries carry the names.
      const names = new Map();
      for (const ev of timeline.events) {
        if ((ev.kind === 'joined' || ev.kind === 'rejoined') && ev.body.participant_id) {
          names.set(ev.body.participant_id, ev.body.name || ev.body.role || ev.body.participant_id);
        }
      }
      const sender = (body) => {
        const from = typeof body.from === 'string' ? body.from : body.from?.participant_id;
        return names.get(from) ?? body.from?.name ?? from ?? '';
      };
      this.chatLog = el(
        'ol',
        { class: 'ev-chat', id: 'replay-chat' },
        chats.length
          ? chats.map((ev) =>
              el(
                'li',
                { 'data-t': ev.t.toFixed(3), 'data-seq': ev.seq },
                el('span', { class: 'mono muted' }, clock(ev.t)),
                ' ',
                el('strong', {}, sender(ev.body)),
                ' ',
                ev.body.text ?? '',
              ),
            )
          : el('li', { class: 'muted' }, this.#label('replay.no_chat')),
      );
      this.container.replaceChildren(
        el(
          'div',
          { class: 'ev-grid' },
          el(
            'div',
            { class: 'ev-main' },
            el('div', { class: 'ev-video' }, this.videoEl),
            this.audioEls['applicant-audio'],
            this.audioEls['inspector-audio'],
            el('div', { class: 'row' }, this.playBtn, this.soundBtn, this.timeLabel),
            this.notice,
            tl,
            el('p', { class: 'muted small' }, this.#label('replay.legend')),
            this.brokenBox,
          ),
          el(
            'aside',
            { class: 'ev-side' },
            facts,
            el('h2', {}, this.#label('replay.chat')),
            this.chatLog,
            el('h2', {}, this.#label('replay.events')),
            this.eventList,
            timeline.afterwards.length ? el('h2', {}, this.#label('replay.afterwards')) : null,
            timeline.afterwards.length ? this.#afterwardsList() : null,
          ),
        ),
      );
    }

    // What was chained after the inspection ended (its conclusion, reports, who replayed and
    // checked it): listed with its UTC time, not drawn on the inspection's own timeline.
    #afterwardsList() {
      const { t } = this;
      return el(
        'ol',
        { class: 'ev-events', id: 'replay-afterwards' },
        this.timeline.afterwards.map((ev) =>
          el(
            'li',
            { 'data-kind': ev.kind, 'data-seq': ev.seq },
            el('span', { class: 'mono muted' }, `${ev.at.replace('T', ' ').replace(/\.\d+Z$/, '')} UTC`),
            ' ',
            el('strong', {}, t(`event.${ev.kind}`) === `event.${ev.kind}` ? ev.kind : t(`event.${ev.kind}`)),
            ' ',
            el('span', { class: 'muted' }, describeEvent(ev.kind, ev.body)),
          ),
        ),
      );
    }

    #lane(track) {
      const { t, timeline } = this;
      const bar = el('div', { class: 'tl-bar' });
      const holes = [...timeline.tracks[track].holes, ...timeline.gaps.filter((g) => g.track === track)];
      for (const hole of holes) {
        bar.append(el('div', { class: 'tl-gap', style: `left:${pct(hole.start, timeline.duration)};width:${pct(hole.end - hole.start, timeline.duration)}`, title: 'gap' }));
      }
      for (const seg of timeline.tracks[track].segments) {
        seg.node = el('div', {
          class: 'tl-seg',
          style: `left:${pct(seg.start, timeline.duration)};width:${pct(seg.end - seg.start, timeline.duration)}`,
          'data-track': track,
          'data-seq': seg.seq,
          'data-key': seg.rel,
          'data-state': seg.state,
          'data-start': seg.start.toFixed(3),
          'data-end': seg.end.toFixed(3),
          title: `${track} #${seg.seq}`,
        });
        bar.append(seg.node);
      }
      return el('div', { class: 'tl-lane', 'data-track': track }, el('span', { class: 'tl-label' }, this.#label(`replay.track.${track}`)), bar);
    }

    #playState(playing) {
      this.playBtn.textContent = this.t(playing ? 'replay.pause' : 'replay.play');
      this.#data.playing = String(playing);
    }

    // What a segment's track did with it: appended to its SourceBuffer, played up to a time.
    #segmentPlayed(seg) {
      if (!seg.node) return;
      if (seg.appended) seg.node.setAttribute('data-appended', 'true');
      if (seg.playedTo !== null) seg.node.setAttribute('data-played-to', seg.playedTo.toFixed(3));
    }

    #segmentState(seg) {
      seg.node?.setAttribute('data-state', seg.state);
      if (seg.state === 'broken' && !this.broken.has(seg.key)) {
        this.broken.set(seg.key, seg);
        this.#renderBroken();
      }
    }

    #renderBroken() {
      const { t } = this;
      const items = [...this.broken.values()].map((seg) => {
        const reasonKey = `replay.reason.${seg.reason}`;
        const reason = t(reasonKey) === reasonKey ? seg.reason : t(reasonKey);
        return el('li', { 'data-key': seg.rel, 'data-track': seg.track, 'data-seq': seg.seq }, t('replay.broken_item', { track: t(`replay.track.${seg.track}`), seq: seg.seq, key: seg.rel, reason }));
      });
      this.brokenBox.replaceChildren(el('p', {}, t('replay.broken', { count: this.broken.size })), el('ul', {}, items));
      this.brokenBox.hidden = false;
      this.#data.verify = 'broken';
    }

    async #verifyAll() {
      const segs = this.timeline.segments;
      let index = 0;
      const worker = async () => {
        while (index < segs.length) {
          const seg = segs[index++];
          if (seg.state === 'pending') await this.verifier.load(seg);
          this.hashed += 1;
          this.progress.textContent = this.t('replay.segments_progress', { done: this.hashed, total: segs.length });
        }
      };
      await Promise.all([worker(), worker()]);
      this.verdict =
        (await this.packageVerdict) ?? (await this.structure) ?? (await this.objectsVerdict()) ?? (await this.o.package?.last()) ?? null;
      if (!this.verdict) this.#showKeys(this.caseCheck.report());
      this.#showVerdict(true);
      const broken = segs.filter((s) => s.state === 'broken');
      const state = broken.length || this.verdict ? 'broken' : 'verified';
      this.#data.verify = state;
      this.progress.textContent = broken.length ? this.t('replay.broken', { count: broken.length }) : this.t('replay.verified', { total: segs.length });
      this.progress.className = broken.length ? 'bad' : 'ok';
      const named = broken.map((s) => s.rel);
      const finding = { state, segments_checked: segs.length, broken: named };
      if (this.verdict) {
        const prefix = `cases/${this.o.caseId}/`;
        const rel = this.verdict.where.startsWith(prefix) ? this.verdict.where.slice(prefix.length) : null;
        if (rel && isLayoutKey(rel) && !named.includes(rel)) named.unshift(rel);
        finding.where = this.verdict.where.slice(0, 300);
        finding.reason = this.verdict.reason.slice(0, 1000);
      }
      finding.broken = named.slice(0, 1000);
      if (!this.stopped) await this.o.onVerified?.(finding);
    }

    #seek(t) {
      this.controller.seek(t);
      this.controller.play();
    }

    #toggle() {
      this.controller?.toggle();
    }

    #enableSound() {
      this.soundBtn.hidden = true;
      for (const audio of Object.values(this.audioEls)) audio.muted = false;
      this.controller.sync();
    }

    #hole(hole) {
      const { t } = this;
      const why = hole.broken ? t('replay.gap_broken') : t('replay.gap_missing');
      this.notice.textContent = t('replay.gap', { from: clock(hole.start), to: clock(hole.end), why });
      this.notice.dataset.from = hole.start.toFixed(3);
      this.notice.dataset.to = hole.end.toFixed(3);
      this.notice.hidden = false;
      clearTimeout(this.noticeTimer);
      this.noticeTimer = setTimeout(() => (this.notice.hidden = true), 6000);
    }

    #onTime(now) {
      const { timeline } = this;
      this.playhead.style.left = `calc(var(--tl-label) + (100% - var(--tl-label)) * ${Math.min(1, now / (timeline.duration || 1))})`;
      this.timeLabel.textContent = `${clock(now)} / ${clock(timeline.duration)}`;
      this.#data.time = now.toFixed(2);
      let current = null;
      for (const item of this.chatLog.children) {
        const at = Number(item.dataset.t);
        item.classList.toggle('past', at <= now);
        if (at <= now) current = item;
      }
      for (const item of this.chatLog.querySelectorAll('.current')) if (item !== current) item.classList.remove('current');
      if (current && !current.classList.contains('current')) {
        current.classList.add('current');
        this.chatLog.scrollTop = current.offsetTop - this.chatLog.offsetTop - this.chatLog.clientHeight / 2;
      }
    }

    // Time to first frame, from the click that opened this replay (sessionStorage, set by the
    // case page) or from the navigation.
    #watchFirstFrame() {
      const video = this.videoEl;
      const done = () => {
        if (this.#data.firstFrame) return;
        let clicked = 0;
        try {
          clicked = Number(sessionStorage.getItem('takan.replayClickedAt') || 0);
        } catch {
          // no storage (file://, private mode): count from the navigation
        }
        if (!clicked || Date.now() - clicked > 120000) clicked = performance.timeOrigin;
        this.#data.firstFrame = String(Math.round(Date.now() - clicked));
      };
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(done);
      else video.addEventListener('playing', done, { once: true });
    }
  }

  root.TakanEvidence = {
    TRACKS,
    STRINGS,
    canonical,
    parseCanonical,
    sha256,
    sha256Hex,
    bytesToHex,
    hexToBytes,
    concat,
    base64ToBytes,
    entryHash,
    merkleRoot,
    verifyEd25519,
    verifyManifest,
    chainedSegments,
    buildTimeline,
    describeEvent,
    EvidenceError,
    ServerSource,
    FolderSource,
    SegmentVerifier,
    TrackPlayer,
    ReplayController,
    ReplayView,
  };
})(globalThis);
