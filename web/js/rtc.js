// Signalling socket with automatic reconnection, one peer connection per negotiation with trickle
// ICE, and a getStats summary. The protocol is docs/signalling.md (version 1).

export const PROTOCOL_VERSION = 1;

// Error codes after which reconnecting cannot help.
export const FATAL_ERRORS = new Set(['unauthorized', 'inspection_ended']);

const log = (...args) => console.debug('[takan]', ...args);

export function signallingUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

// At most 3 s apart: a node that died is replaced once its lease lapses (10 s), and a page that
// tried every 10 s would come back up to 10 s later than it could.
function backoff(attempt, baseMs = 500, maxMs = 3_000) {
  const ms = Math.min(maxMs, baseMs * 2 ** attempt);
  return Math.round(ms * (0.75 + Math.random() * 0.5));
}

// The WebSocket. `hello()` builds the hello message on every (re)connection; statuses are
// 'connecting', 'open' (hello sent), 'joined' (welcome received), 'reconnecting', 'stopped'.
export class Signalling {
  constructor({ hello, onMessage, onStatus = () => {}, url = signallingUrl() }) {
    this.hello = hello;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.url = url;
    // Where a `redirect` sent us: the node that runs the inspection. Any disconnect goes back
    // to `url`, which redirects again while that node lives, or takes the inspection over.
    this.target = null;
    this.redirects = 0;
    this.ws = null;
    this.joined = false;
    this.stopped = true;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.lastHeard = 0;
    window.addEventListener('online', () => this.#reconnectSoon());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.#reconnectSoon();
    });
  }

  start() {
    this.stopped = false;
    this.#connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    this.joined = false;
    if (ws) ws.close(1000, 'bye');
    this.onStatus('stopped');
  }

  // Sends a message once joined (hello goes by itself); false when it could not be sent.
  send(type, fields = {}) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || (!this.joined && type !== 'hello')) return false;
    ws.send(JSON.stringify({ v: PROTOCOL_VERSION, type, ...fields }));
    return true;
  }

  #connect() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    this.onStatus(this.attempt === 0 ? 'connecting' : 'reconnecting');
    let ws;
    try {
      ws = new WebSocket(this.target || this.url);
    } catch (err) {
      log('websocket failed', err);
      this.#scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.joined = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      ws.send(JSON.stringify({ v: PROTOCOL_VERSION, ...this.hello() }));
      this.onStatus('open');
    };
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      this.lastHeard = Date.now();
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        log('unreadable message', event.data);
        return;
      }
      if (!msg || typeof msg !== 'object') return;
      if (msg.type === 'redirect') {
        this.#redirect(ws, msg);
        return;
      }
      if (msg.type === 'welcome') {
        this.joined = true;
        this.attempt = 0;
        this.redirects = 0;
        this.#startKeepalive(ws);
        this.onStatus('joined');
      }
      if (msg.type === 'pong') return;
      this.onMessage(msg);
    };
    ws.onclose = (event) => {
      log('websocket closed', event.code, event.reason);
      this.#lost(ws);
    };
    ws.onerror = () => {
      // a close event follows
    };
  }

  #redirect(ws, msg) {
    if (typeof msg.url !== 'string' || !/^wss?:\/\//.test(msg.url) || this.redirects >= 3) {
      log('redirect not followed', msg);
      return;
    }
    log('redirected to node', msg.node, msg.url);
    this.redirects += 1;
    this.target = msg.url;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(1000, 'redirected');
    } catch {
      // already closed
    }
    this.#connect();
  }

  #lost(ws) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.target = null;
    this.joined = false;
    clearInterval(this.pingTimer);
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close();
    } catch {
      // already closed
    }
    if (this.stopped) return;
    this.#scheduleReconnect();
  }

  #scheduleReconnect() {
    clearTimeout(this.retryTimer);
    const delay = backoff(this.attempt);
    this.attempt += 1;
    this.onStatus('reconnecting');
    this.retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #reconnectSoon() {
    if (this.stopped || this.ws) return;
    this.attempt = 0;
    this.#connect();
  }

  // Ping every 10 s; nothing heard for 30 s means a dead connection (a phone changing networks
  // often never delivers a close), so drop it without waiting for TCP to notice.
  #startKeepalive(ws) {
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (this.ws !== ws) return;
      if (Date.now() - this.lastHeard > 30_000) {
        log('websocket silent, reconnecting');
        this.#lost(ws);
        return;
      }
      this.send('ping');
    }, 10_000);
  }
}

// Puts `mimeType` first in the transceiver's codec list (the others stay as fallbacks).
export function preferCodec(transceiver, mimeType) {
  const kind = transceiver.receiver.track.kind;
  const caps = (RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities(kind)) || null;
  if (!caps || !transceiver.setCodecPreferences) return;
  const wanted = mimeType.toLowerCase();
  const first = caps.codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== wanted);
  if (!first.length) return;
  try {
    transceiver.setCodecPreferences([...first, ...rest]);
  } catch (err) {
    log('setCodecPreferences failed', err);
  }
}

// One negotiation = one RTCPeerConnection (the server replaces a participant's connection on
// every offer). `setup(pc)` adds the transceivers; events of an older connection are ignored.
export class PeerSession {
  constructor({ signalling, setup, onTrack = () => {}, onState = () => {} }) {
    this.signalling = signalling;
    this.setup = setup;
    this.onTrack = onTrack;
    this.onState = onState;
    this.iceServers = [];
    this.pc = null;
    this.generation = 0;
    this.pendingIce = [];
    this.failures = 0;
    this.retryTimer = null;
    this.answerTimer = null;
    this.disconnectTimer = null;
    this.closed = false;
  }

  setIceServers(servers) {
    if (Array.isArray(servers)) this.iceServers = servers.filter((s) => s && s.urls);
  }

  async negotiate() {
    this.#clearTimers();
    this.closed = false;
    const generation = ++this.generation;
    const old = this.pc;
    this.pendingIce = [];
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    this.pc = pc;
    const current = () => generation === this.generation && !this.closed;
    pc.onicecandidate = ({ candidate }) => {
      if (!current()) return;
      if (candidate && candidate.candidate) {
        this.signalling.send('ice', {
          candidate: candidate.candidate,
          sdpMid: candidate.sdpMid ?? null,
          sdpMLineIndex: candidate.sdpMLineIndex ?? null,
        });
      } else if (!candidate) {
        this.signalling.send('ice', { candidate: null, sdpMid: null, sdpMLineIndex: null });
      }
    };
    pc.ontrack = (event) => current() && this.onTrack(event, pc);
    pc.onconnectionstatechange = () => current() && this.#stateChanged(pc);
    this.onState('new');
    try {
      await this.setup(pc);
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
    } catch (err) {
      log('could not create offer', err);
      if (current()) this.retrySoon('offer failed');
      return;
    } finally {
      // The new connection is ready to take over; the old one goes only now so that the
      // picture stays up while the offer is built.
      if (old && old !== pc) old.close();
    }
    if (!current()) return;
    if (!this.signalling.send('offer', { sdp: pc.localDescription.sdp })) return; // welcome renegotiates
    this.onState('connecting');
    this.answerTimer = setTimeout(() => current() && this.retrySoon('no answer'), 15_000);
  }

  async handleAnswer(sdp) {
    const pc = this.pc;
    if (!pc || pc.signalingState !== 'have-local-offer') return;
    clearTimeout(this.answerTimer);
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp });
    } catch (err) {
      log('answer rejected', err);
      this.retrySoon('bad answer');
      return;
    }
    const queued = this.pendingIce;
    this.pendingIce = [];
    for (const msg of queued) await this.#addIce(pc, msg);
  }

  async addRemoteIce(msg) {
    const pc = this.pc;
    if (!pc) return;
    if (!pc.remoteDescription) {
      this.pendingIce.push(msg);
      return;
    }
    await this.#addIce(pc, msg);
  }

  async #addIce(pc, msg) {
    try {
      if (msg.candidate) {
        await pc.addIceCandidate({
          candidate: msg.candidate,
          sdpMid: msg.sdpMid ?? null,
          sdpMLineIndex: msg.sdpMLineIndex ?? null,
        });
      } else {
        await pc.addIceCandidate();
      }
    } catch (err) {
      log('remote candidate rejected', err, msg);
    }
  }

  // Negotiate again after a backoff (ICE failure, no answer, negotiation_failed).
  retrySoon(reason) {
    if (this.closed) return;
    clearTimeout(this.retryTimer);
    const delay = backoff(this.failures, 1000, 10_000);
    this.failures += 1;
    log('renegotiating', reason, 'in', delay, 'ms');
    this.onState('failed');
    this.retryTimer = setTimeout(() => {
      if (this.closed) return;
      if (this.signalling.joined) this.negotiate();
      // otherwise the next welcome negotiates
    }, delay);
  }

  #stateChanged(pc) {
    const state = pc.connectionState;
    log('peer connection', state);
    clearTimeout(this.disconnectTimer);
    if (state === 'connected') {
      this.failures = 0;
      this.onState('connected');
    } else if (state === 'failed') {
      this.retrySoon('ice failed');
    } else if (state === 'disconnected') {
      this.onState('disconnected');
      // Often recovers by itself within a few seconds; if not, start over.
      this.disconnectTimer = setTimeout(() => {
        if (this.pc === pc && pc.connectionState === 'disconnected') this.retrySoon('ice disconnected');
      }, 5_000);
    }
  }

  #clearTimers() {
    clearTimeout(this.retryTimer);
    clearTimeout(this.answerTimer);
    clearTimeout(this.disconnectTimer);
  }

  close() {
    this.closed = true;
    this.#clearTimers();
    this.generation += 1;
    if (this.pc) this.pc.close();
    this.pc = null;
  }
}

// Quality of the video going in ('inbound') or out ('outbound') of a connection:
// {bitrate_kbps, fps, width, height, rtt_ms}, plus `frames` (decoded or sent) for display.
export class StatsMeter {
  constructor(direction) {
    this.direction = direction;
    this.previous = null;
  }

  async sample(pc) {
    if (!pc || pc.connectionState === 'closed') return null;
    let report;
    try {
      report = await pc.getStats();
    } catch {
      return null;
    }
    const rtpType = this.direction === 'inbound' ? 'inbound-rtp' : 'outbound-rtp';
    let video = null;
    let remoteInbound = null;
    let selectedPairId = null;
    const pairs = new Map();
    report.forEach((s) => {
      if (s.type === rtpType && (s.kind ?? s.mediaType) === 'video') {
        const bytes = this.#bytes(s);
        if (!video || bytes > this.#bytes(video)) video = s;
      } else if (s.type === 'remote-inbound-rtp' && s.kind === 'video') {
        remoteInbound = s;
      } else if (s.type === 'transport' && s.selectedCandidatePairId) {
        selectedPairId = s.selectedCandidatePairId;
      } else if (s.type === 'candidate-pair') {
        pairs.set(s.id, s);
      }
    });
    let pair = selectedPairId ? pairs.get(selectedPairId) : null;
    if (!pair) pair = [...pairs.values()].find((p) => p.nominated && p.state === 'succeeded') ?? null;
    let rttSeconds = pair?.currentRoundTripTime ?? remoteInbound?.roundTripTime ?? null;
    if (rttSeconds == null && remoteInbound?.totalRoundTripTime && remoteInbound.roundTripTimeMeasurements) {
      rttSeconds = remoteInbound.totalRoundTripTime / remoteInbound.roundTripTimeMeasurements;
    }

    const stats = { bitrate_kbps: null, fps: null, width: null, height: null, rtt_ms: null };
    if (rttSeconds != null) stats.rtt_ms = Math.round(rttSeconds * 1000);
    let frames = null;
    if (video) {
      const bytes = this.#bytes(video);
      frames = this.direction === 'inbound' ? video.framesDecoded ?? null : video.framesSent ?? video.framesEncoded ?? null;
      const prev = this.previous;
      if (prev && prev.pc === pc && prev.id === video.id && video.timestamp > prev.timestamp) {
        const seconds = (video.timestamp - prev.timestamp) / 1000;
        stats.bitrate_kbps = Math.max(0, Math.round(((bytes - prev.bytes) * 8) / seconds / 1000));
        if (video.framesPerSecond == null && frames != null && prev.frames != null) {
          stats.fps = Math.round((frames - prev.frames) / seconds);
        }
      }
      if (video.framesPerSecond != null) stats.fps = Math.round(video.framesPerSecond);
      stats.width = video.frameWidth ?? null;
      stats.height = video.frameHeight ?? null;
      this.previous = { pc, id: video.id, timestamp: video.timestamp, bytes, frames };
    }
    return { stats, frames };
  }

  #bytes(s) {
    return (this.direction === 'inbound' ? s.bytesReceived : s.bytesSent) ?? 0;
  }
}
