// /join/{invite_token}: the applicant's phone page. Consent, then the rear camera and the
// microphone go to the server; the inspector's voice comes back. The inspector may switch the
// camera, turn the torch on or zoom; every request is answered with a control_result. After consent
// the phone's position is shared, and the inspector's liveness challenges are shown and answered.

import './strings-inspection.js';
import { LocationShare } from './location-share.js';
import { FATAL_ERRORS, PeerSession, Signalling, StatsMeter, preferCodec } from './rtc.js';
import { lang, onLangChange, setupLangToggle, t } from './i18n.js';
import { $, ChatView, formatTime, renderStats, startQualityLoop } from './ui.js';
import { inviteInspection, showReceipt } from './receipt-view.js';

setupLangToggle();

const token = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() ?? '');
const SCREENS = ['connecting', 'consent', 'declined', 'media-error', 'live', 'replaced', 'ended', 'invalid'];
const meter = new StatsMeter('outbound');

const state = {
  screen: 'connecting',
  myId: null,
  welcome: null,
  consentSent: false, // the applicant agreed in this page
  stream: null,
  videoTrack: null,
  audioTrack: null,
  videoSender: null,
  facing: 'environment',
  micMissing: false,
  finished: false,
  connStatus: 'connecting',
  mediaState: 'new',
  mediaError: null,
  stats: null,
  wakeLock: null,
  participants: [],
  location: { state: 'idle' },
  challenge: null, // {challenge_id, kind, prompt, answered}
};

const chat = new ChatView($('chat-log'), { myId: () => state.myId });
const locationShare = new LocationShare({
  send: (type, fields) => signalling.send(type, fields),
  onState(update) {
    state.location = update;
    renderLocation();
  },
});

function videoConstraints(extra = {}) {
  return { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 }, ...extra };
}

function showScreen(name) {
  state.screen = name;
  for (const screen of SCREENS) $(`screen-${screen}`).hidden = screen !== name;
  document.body.dataset.state = name;
  if (name === 'consent') document.body.dataset.consentShown = 'true';
}

// ---------------------------------------------------------------- signalling

const signalling = new Signalling({
  hello: () => ({ type: 'hello', token }),
  onMessage: handleMessage,
  onStatus(status) {
    state.connStatus = status;
    renderConn();
  },
});

const peer = new PeerSession({
  signalling,
  setup(pc) {
    const video = pc.addTransceiver(state.videoTrack, { direction: 'sendonly', streams: [state.stream] });
    preferCodec(video, 'video/VP8');
    state.videoSender = video.sender;
    pc.addTransceiver(state.audioTrack ?? 'audio', { direction: 'sendrecv', streams: [state.stream] });
  },
  onTrack(event) {
    if (event.track.kind !== 'audio') return;
    const audio = $('remote-audio');
    audio.srcObject = new MediaStream([event.track]);
    audio.play().catch(() => {
      $('btn-enable-sound').hidden = false; // autoplay refused without a tap (e.g. after reload)
    });
  },
  onState(mediaState) {
    state.mediaState = mediaState;
    renderConn();
  },
});

function handleMessage(msg) {
  switch (msg.type) {
    case 'welcome':
      welcome(msg);
      break;
    case 'answer':
      peer.handleAnswer(msg.sdp);
      break;
    case 'ice':
      peer.addRemoteIce(msg);
      break;
    case 'chat':
      chat.addMessage(msg);
      break;
    case 'control':
      queueControl(msg);
      break;
    case 'ended':
      finish('ended');
      break;
    case 'error':
      handleError(msg);
      break;
    case 'presence':
      renderPresence(msg.participants ?? []);
      break;
    case 'challenge':
      state.challenge = { challenge_id: msg.challenge_id, kind: msg.kind, prompt: msg.prompt, answered: false };
      renderChallenge();
      break;
    case 'challenge_closed':
      if (state.challenge?.challenge_id === msg.challenge_id) {
        state.challenge = null;
        renderChallenge();
      }
      break;
    default:
      break; // peer_stats: nothing to show here
  }
}

function welcome(msg) {
  state.myId = msg.participant_id;
  state.welcome = msg;
  document.body.dataset.resumed = String(Boolean(msg.resumed));
  peer.setIceServers(msg.ice_servers);
  renderInfo();
  renderPresence(msg.participants ?? []);
  if (msg.inspection?.status === 'ended') {
    finish('ended');
    return;
  }
  if (msg.consented || state.consentSent) {
    // A resumed session: consent was given before, go straight back to streaming.
    if (!msg.consented) sendConsent();
    startStreaming();
    locationShare.rejoined();
  } else {
    showScreen('consent');
  }
}

function handleError(msg) {
  console.warn('server error', msg);
  if (msg.code === 'unauthorized') finish('invalid');
  else if (msg.code === 'inspection_ended') finish('ended');
  else if (msg.code === 'replaced') pause();
  else if (FATAL_ERRORS.has(msg.code)) finish('invalid');
  else if (msg.code === 'notice_changed') {
    // Agreed to a notice that is no longer the deployment's: read the new one (a new welcome).
    state.consentSent = false;
    sessionStorage.setItem('takan-notice-changed', '1');
    location.reload();
  } else if (msg.code === 'consent_required') {
    if (state.consentSent) {
      sendConsent();
      peer.retrySoon('consent_required');
    } else {
      showScreen('consent');
    }
  } else if (msg.code === 'negotiation_failed') peer.retrySoon('negotiation_failed');
  else if (msg.ref === 'chat') chat.addSystem(`${msg.code}: ${msg.reason}`);
  else if (msg.ref === 'challenge_shown' && state.challenge) {
    state.challenge = null; // answered or judged meanwhile
    renderChallenge();
  }
}

// Opened again elsewhere (another tab, the same link on another phone): stop here instead of
// taking the session back and forth; the applicant may take over explicitly.
function pause() {
  locationShare.stop();
  signalling.stop();
  peer.close();
  stopMedia();
  state.stream = null;
  state.videoTrack = null;
  state.audioTrack = null;
  showScreen('replaced');
}

function finish(screen) {
  if (state.finished) return;
  state.finished = true;
  locationShare.stop();
  state.challenge = null;
  renderChallenge();
  signalling.stop();
  peer.close();
  stopMedia();
  releaseWakeLock();
  $('control-toast').hidden = true;
  showScreen(screen);
  renderConn();
  if (screen === 'ended') {
    const inspectionId = state.welcome?.inspection?.inspection_id ?? inviteInspection(token).inspectionId;
    if (inspectionId) showReceipt(token, inspectionId);
  }
}

// ---------------------------------------------------------------- camera and microphone

async function acquireMedia() {
  const video = videoConstraints({ facingMode: 'environment', zoom: true });
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ video, audio: true }), micMissing: false };
  } catch (err) {
    if (err.name === 'OverconstrainedError' || err.name === 'TypeError') throw err;
    // Maybe only the microphone is refused or missing: stream the picture anyway.
    try {
      return { stream: await navigator.mediaDevices.getUserMedia({ video }), micMissing: true };
    } catch {
      throw err;
    }
  }
}

let starting = null;

// Camera on (once), live screen, offer. Concurrent calls (a welcome during the consent click)
// share one run.
function startStreaming() {
  starting ??= doStartStreaming().finally(() => {
    starting = null;
  });
  return starting;
}

async function doStartStreaming() {
  if (state.finished) return;
  if (!state.stream) {
    if (!navigator.mediaDevices?.getUserMedia) {
      showMediaError('getUserMedia unavailable (HTTPS required)');
      return;
    }
    try {
      const { stream, micMissing } = await acquireMedia();
      if (state.finished) {
        for (const track of stream.getTracks()) track.stop();
        return;
      }
      state.stream = stream;
      state.micMissing = micMissing;
      state.videoTrack = stream.getVideoTracks()[0];
      state.audioTrack = stream.getAudioTracks()[0] ?? null;
      watchVideoTrack(state.videoTrack);
    } catch (err) {
      console.warn('camera unavailable', err);
      showMediaError(err.name === 'NotAllowedError' ? 'permission denied' : `${err.name}`);
      return;
    }
  }
  $('local-video').srcObject = state.stream;
  $('mic-warning').hidden = !state.micMissing;
  showScreen('live');
  requestWakeLock();
  locationShare.start();
  if (signalling.joined) peer.negotiate();
}

function showMediaError(reason) {
  state.mediaError = reason;
  $('media-error-text').textContent = t('join.media_denied', { reason });
  showScreen('media-error');
}

function stopMedia() {
  if (!state.stream) return;
  for (const track of state.stream.getTracks()) {
    track.stoppedByUs = true;
    track.stop();
  }
  $('local-video').srcObject = null;
}

// If the camera goes away on its own (another app took it, the OS paused it), take it back.
function watchVideoTrack(track) {
  track.addEventListener('ended', () => {
    if (state.finished || track !== state.videoTrack || track.stoppedByUs) return;
    console.warn('camera track ended, reopening');
    replaceVideo({ facingMode: state.facing }).catch((err) => console.warn('could not reopen camera', err));
  });
}

async function replaceVideo(selector) {
  const old = state.videoTrack;
  if (old) {
    old.stoppedByUs = true;
    old.stop(); // many phones cannot open a second camera while the first is open
  }
  const stream = await navigator.mediaDevices.getUserMedia({ video: videoConstraints({ ...selector, zoom: true }) });
  const track = stream.getVideoTracks()[0];
  if (old) state.stream.removeTrack(old);
  state.stream.addTrack(track);
  state.videoTrack = track;
  watchVideoTrack(track);
  if (state.videoSender) await state.videoSender.replaceTrack(track); // no renegotiation
  $('local-video').srcObject = state.stream;
  return track;
}

async function videoInputs() {
  try {
    return (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
  } catch {
    return [];
  }
}

function facingOf(device) {
  const modes = device.getCapabilities?.().facingMode;
  return Array.isArray(modes) && modes.length ? modes : null;
}

async function switchCamera(facing) {
  const current = state.videoTrack;
  const currentId = current.getSettings().deviceId;
  const currentFacing = current.getSettings().facingMode;
  if (currentFacing === facing) return { ok: true, value: facing };
  const devices = await videoInputs();
  const known = devices.filter((d) => facingOf(d));
  let selector;
  if (known.length) {
    const match = known.find((d) => facingOf(d).includes(facing) && d.deviceId !== currentId);
    if (!match) return { ok: false, reason: `this device has no ${facing === 'user' ? 'front' : 'rear'} camera`, value: facing };
    selector = { deviceId: { exact: match.deviceId } };
  } else if (devices.length === 1 && devices[0].deviceId) {
    return { ok: false, reason: 'this device has only one camera', value: facing };
  } else if (devices.length > 1 && devices.every((d) => d.deviceId)) {
    // Facing unknown (desktop): take the next camera.
    const index = devices.findIndex((d) => d.deviceId === currentId);
    selector = { deviceId: { exact: devices[(index + 1) % devices.length].deviceId } };
  } else {
    selector = { facingMode: { exact: facing } }; // browsers without device capabilities
  }
  try {
    await replaceVideo(selector);
  } catch (err) {
    console.warn('camera switch failed', err);
    await replaceVideo(currentId ? { deviceId: { exact: currentId } } : { facingMode: state.facing }).catch(() => {});
    const reason = err.name === 'OverconstrainedError' || err.name === 'NotFoundError'
      ? `this device has no ${facing === 'user' ? 'front' : 'rear'} camera`
      : `camera error: ${err.name}`;
    return { ok: false, reason, value: facing };
  }
  state.facing = facing;
  return { ok: true, value: facing };
}

async function setTorch(on) {
  const track = state.videoTrack;
  const caps = track.getCapabilities?.() ?? {};
  if (!('torch' in caps) || caps.torch === false) return { ok: false, reason: 'this camera has no torch', value: on };
  try {
    await track.applyConstraints({ advanced: [{ torch: on }] });
  } catch (err) {
    return { ok: false, reason: `torch failed: ${err.name}`, value: on };
  }
  return { ok: true, value: on };
}

async function setZoom(value) {
  const track = state.videoTrack;
  const caps = track.getCapabilities?.() ?? {};
  if (!caps.zoom || typeof caps.zoom.max !== 'number') return { ok: false, reason: 'this camera cannot zoom', value };
  const zoom = Math.min(caps.zoom.max, Math.max(caps.zoom.min ?? 1, value));
  try {
    await track.applyConstraints({ advanced: [{ zoom }] });
  } catch (err) {
    return { ok: false, reason: `zoom failed: ${err.name}`, value };
  }
  const applied = track.getSettings().zoom ?? zoom;
  return { ok: true, value: applied, ...(applied !== value ? { reason: `camera zoom range is ${caps.zoom.min}–${caps.zoom.max}` } : {}) };
}

// ---------------------------------------------------------------- inspector's requests

let controlChain = Promise.resolve();

function queueControl(msg) {
  controlChain = controlChain.then(() => runControl(msg)).catch((err) => console.warn('control failed', err));
}

function describeAction(action, value) {
  if (action === 'switch_camera') return t(`action.switch_camera.${value === 'user' ? 'user' : 'environment'}`);
  if (action === 'torch') return t(`action.torch.${Boolean(value)}`);
  if (action === 'zoom') return t('action.zoom', { value });
  return action;
}

let toastTimer = null;
function toast(text, { action = '', fail = false } = {}) {
  const el = $('control-toast');
  el.textContent = text;
  el.classList.toggle('fail', fail);
  el.dataset.action = action;
  el.dataset.count = String(Number(el.dataset.count ?? 0) + 1);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.hidden = true;
  }, 4000);
}

async function runControl(msg) {
  if (state.finished) return;
  const { action, value } = msg;
  toast(t('join.request', { what: describeAction(action, value) }), { action });
  let result;
  if (!state.videoTrack || state.videoTrack.readyState !== 'live') {
    result = { ok: false, reason: 'camera is not on', value };
  } else if (action === 'switch_camera') {
    result = await switchCamera(value === 'user' ? 'user' : 'environment');
  } else if (action === 'torch') {
    result = await setTorch(Boolean(value));
  } else if (action === 'zoom') {
    result = await setZoom(Number(value));
  } else {
    result = { ok: false, reason: `unknown action ${action}` };
  }
  const reply = { action, ok: result.ok };
  if (result.reason) reply.reason = result.reason.slice(0, 200);
  if (result.value !== undefined) reply.value = result.value;
  signalling.send('control_result', reply);
  if (!result.ok) {
    const key = { switch_camera: 'join.reason.no_camera', torch: 'join.reason.torch', zoom: 'join.reason.zoom' }[action];
    // Not the applicant's mistake: said plainly, not in red.
    toast(t('join.request_failed', { what: describeAction(action, value), reason: key ? t(key) : result.reason }), { action, fail: true });
  }
}

// ---------------------------------------------------------------- location and challenges

function renderLocation() {
  const { state: where, fix, error, sentAt } = state.location;
  const el = $('location-status');
  el.dataset.state = where;
  el.classList.toggle('notice', where === 'denied' || where === 'unsupported');
  if (where === 'sent' && fix) {
    el.textContent = `📍 ${t('join.location.sent', { accuracy: Math.round(fix.accuracy), time: formatTime(sentAt?.toISOString()) })}`;
  } else if (where === 'idle') {
    el.textContent = '';
  } else {
    el.textContent = t(`join.location.${where}`, { reason: error ?? '' });
  }
}

function renderChallenge() {
  const challenge = state.challenge;
  $('challenge-card').hidden = !challenge;
  if (!challenge) return;
  $('challenge-card').dataset.kind = challenge.kind;
  $('challenge-card').dataset.challengeId = challenge.challenge_id;
  $('challenge-lead').textContent = t(challenge.kind === 'code' ? 'join.challenge.code' : 'join.challenge.instruction');
  $('challenge-prompt').textContent = challenge.prompt;
  $('challenge-prompt').classList.toggle('code', challenge.kind === 'code');
  $('challenge-shown').hidden = challenge.answered;
  $('challenge-waiting').hidden = !challenge.answered;
}

$('challenge-shown').addEventListener('click', () => {
  const challenge = state.challenge;
  if (!challenge || challenge.answered) return;
  if (signalling.send('challenge_shown', { challenge_id: challenge.challenge_id })) {
    challenge.answered = true;
    renderChallenge();
  }
});

// ---------------------------------------------------------------- page

function renderInfo() {
  const msg = state.welcome;
  if (!msg) return;
  const staff = msg.inspection?.inspectors ?? [];
  const inspector = staff.length ? staff.join('、') : msg.inspection?.inspector_name ?? '';
  const c = msg.case ?? {};
  $('consent-intro').textContent = t('join.intro', { name: inspector || t('role.inspector') });
  for (const prefix of ['consent', 'live']) {
    $(`${prefix}-inspector`).textContent = inspector;
    $(`${prefix}-case-id`).textContent = c.case_number || c.case_id || '';
    $(`${prefix}-case-title`).textContent = c.title ?? '';
    $(`${prefix}-address`).textContent = c.address ?? '';
  }
  renderNotice(msg.notice);
}

function renderNotice(notice) {
  if (!notice) return;
  const text = (part) => notice[part]?.[lang()] ?? notice[part]?.['zh-CN'] ?? '';
  for (const part of ['agency', 'purpose', 'retention', 'contact']) $(`notice-${part}`).textContent = text(part);
  $('notice-version').textContent = t('join.notice.version', { version: notice.version, sha: notice.sha256.slice(0, 16) });
  $('consent-notice').dataset.version = notice.version;
  $('consent-notice').dataset.sha256 = notice.sha256;
  if (sessionStorage.getItem('takan-notice-changed')) {
    sessionStorage.removeItem('takan-notice-changed');
    $('notice-changed').hidden = false;
  }
}

function renderPresence(participants) {
  state.participants = participants;
  const online = participants.some((p) => p.role === 'inspector' && p.connected);
  const el = $('inspector-presence');
  el.className = `badge ${online ? 'live' : ''}`;
  el.dataset.online = String(online);
  el.textContent = t(online ? 'presence.connected' : 'presence.disconnected');
}

function renderConn() {
  const joined = state.connStatus === 'joined';
  $('conn-dot').className = `dot ${state.finished ? 'off' : joined && state.mediaState === 'connected' ? 'on' : 'wait'}`;
  let key = 'conn.connecting';
  if (state.connStatus === 'reconnecting') key = 'conn.reconnecting';
  else if (joined) key = { connected: 'conn.media_connected', failed: 'conn.media_failed', disconnected: 'conn.media_failed' }[state.mediaState] ?? 'conn.media_connecting';
  $('conn-badge').textContent = t(key);
  $('connecting-text').textContent = t(state.connStatus === 'reconnecting' ? 'conn.reconnecting' : 'conn.connecting');
  $('consent-accept').disabled = !joined;
  document.body.dataset.conn = state.connStatus;
  document.body.dataset.media = state.mediaState;
}

async function requestWakeLock() {
  try {
    if (navigator.wakeLock && !state.wakeLock && document.visibilityState === 'visible') {
      state.wakeLock = await navigator.wakeLock.request('screen');
      state.wakeLock.addEventListener('release', () => {
        state.wakeLock = null;
      });
    }
  } catch {
    // not granted: the screen may sleep, nothing else to do
  }
}

function releaseWakeLock() {
  state.wakeLock?.release().catch(() => {});
  state.wakeLock = null;
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && state.screen === 'live') requestWakeLock();
});

// Consent names the notice the page showed; the server refuses it if that is no longer the one.
function sendConsent() {
  const sha = state.welcome?.notice?.sha256;
  return signalling.send('consent', { accepted: true, lang: lang(), ...(sha ? { notice_sha256: sha } : {}) });
}

$('consent-accept').addEventListener('click', () => {
  if (!signalling.joined) return;
  state.consentSent = sendConsent();
  if (state.consentSent) startStreaming();
});
$('consent-decline').addEventListener('click', () => showScreen('declined'));
$('btn-declined-back').addEventListener('click', () => showScreen('consent'));
$('btn-take-over').addEventListener('click', () => {
  showScreen('connecting');
  signalling.start();
});
$('btn-media-retry').addEventListener('click', () => startStreaming());
$('btn-enable-sound').addEventListener('click', () => {
  $('remote-audio').play().catch(() => {});
  $('btn-enable-sound').hidden = true;
});

$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('chat-input');
  const text = input.value.trim().slice(0, 2000);
  if (!text) return;
  if (!signalling.send('chat', { text })) {
    chat.addSystem(t('conn.reconnecting'));
    return;
  }
  chat.addPending(text);
  input.value = '';
});

startQualityLoop({
  meter,
  peer,
  signalling,
  dl: $('stats-own'),
  active: () => !state.finished && state.screen === 'live',
  onSample: (stats) => { state.stats = stats; },
});

onLangChange(() => {
  renderInfo();
  renderPresence(state.participants);
  renderConn();
  renderStats($('stats-own'), state.stats);
  renderLocation();
  renderChallenge();
  if (state.mediaError) $('media-error-text').textContent = t('join.media_denied', { reason: state.mediaError });
});

showScreen('connecting');
renderConn();
if (!token) finish('invalid');
else signalling.start();
