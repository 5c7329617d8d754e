// /inspect/{inspection_id}: the inspector's live page. Receives the applicant's video and audio,
// sends the microphone, chats, drives the applicant's camera, shows quality, ends the inspection.
// The evidence: the applicant's location and liveness challenges (site-checks.js), snapshots,
// annotations, the checklist and the signed conclusion with its report (evidence.js).
// The session cookie authenticates both the REST calls and the WebSocket (hello with token null).

import './strings-inspection.js';
import { api, redirectIfSignedOut, redirectToLogin } from './api.js';
import { EvidencePanels } from './evidence.js';
import { PresenceView } from './presence-view.js';
import { SiteChecks } from './site-checks.js';
import { FATAL_ERRORS, PeerSession, Signalling, StatsMeter, preferCodec } from './rtc.js';
import { onLangChange, setupLangToggle, t } from './i18n.js';
import { $, caseNumber, ChatView, copyText, formatTime, h, renderStats, startQualityLoop } from './ui.js';

setupLangToggle();

const inspectionId = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() ?? '');
const video = $('remote-video');
const remoteStream = new MediaStream();
const meter = new StatsMeter('inbound');

const state = {
  myId: null,
  ended: false,
  connStatus: 'connecting',
  mediaState: 'connecting',
  facing: 'environment', // the applicant starts on the rear camera
  torch: false,
  micTrack: null,
  micDenied: false,
  peerStats: null,
  myStats: null,
  caseInfo: null,
};

const chat = new ChatView($('chat-log'), { myId: () => state.myId });
const presence = new PresenceView(video, (changed) => {
  renderConn();
  if (changed) renderPresence();
});
const siteChecks = new SiteChecks({
  send: (type, fields) => signalling.send(type, fields),
  applicantOnline: () => Boolean(presence.applicant?.connected),
});
const evidence = new EvidencePanels(inspectionId);

// ---------------------------------------------------------------- microphone

// Asked once, and only for an inspection that is live (not for an unknown or ended one); the
// offer waits for the answer to the prompt at most 10 s, then goes receive-only and
// renegotiates if the microphone comes later.
let micReady = Promise.resolve(null);
const askMicrophone = async () => {
  if (!navigator.mediaDevices?.getUserMedia) {
    state.micDenied = true;
    return null;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: false,
    });
    state.micTrack = stream.getAudioTracks()[0] ?? null;
  } catch (err) {
    console.warn('microphone unavailable', err);
    state.micDenied = true;
  }
  renderMic();
  return state.micTrack;
};

function renderMic() {
  const el = $('mic-status');
  if (state.micTrack) el.textContent = `🎙 ${t('inspect.mic_on')}`;
  else if (state.micDenied) el.textContent = `🔇 ${t('inspect.mic_denied')}`;
  else el.textContent = '';
}

// ---------------------------------------------------------------- signalling and media

let micLateHooked = false;

const signalling = new Signalling({
  hello: () => ({ type: 'hello', token: null, inspection_id: inspectionId }),
  onMessage: handleMessage,
  onStatus: (status) => {
    state.connStatus = status;
    renderConn();
  },
});

const peer = new PeerSession({
  signalling,
  async setup(pc) {
    let mic = state.micTrack;
    if (!mic && !state.micDenied) {
      mic = await Promise.race([micReady, new Promise((resolve) => setTimeout(() => resolve(null), 10_000))]);
      if (!mic && !micLateHooked) {
        micLateHooked = true; // the prompt is still open: add the microphone when it is answered
        micReady.then((track) => track && !state.ended && peer.negotiate());
      }
    }
    const videoTransceiver = pc.addTransceiver('video', { direction: 'recvonly' });
    preferCodec(videoTransceiver, 'video/VP8');
    if (mic) pc.addTransceiver(mic, { direction: 'sendrecv' });
    else pc.addTransceiver('audio', { direction: 'sendrecv' }); // nothing to send, still hears
  },
  onTrack(event) {
    const track = event.track;
    for (const old of remoteStream.getTracks()) {
      if (old.kind === track.kind && old !== track) remoteStream.removeTrack(old);
    }
    if (!remoteStream.getTracks().includes(track)) remoteStream.addTrack(track);
    if (track.kind === 'video') {
      video.srcObject = remoteStream;
      startPlayback();
    }
  },
  onState(mediaState) {
    state.mediaState = mediaState;
    renderConn();
  },
});

function startPlayback() {
  video.muted = false;
  const attempt = video.play();
  if (!attempt) return;
  attempt.catch(() => {
    // Autoplay with sound refused: play muted and offer a click to unmute.
    video.muted = true;
    video.play().catch(() => {});
    $('btn-unmute').hidden = false;
  });
}

$('btn-unmute').addEventListener('click', () => {
  video.muted = false;
  video.play().catch(() => {});
  $('btn-unmute').hidden = true;
});

video.addEventListener('playing', () => {
  $('video-placeholder').hidden = true;
});

function handleMessage(msg) {
  if (siteChecks.handle(msg)) return;
  switch (msg.type) {
    case 'welcome':
      state.myId = msg.participant_id;
      peer.setIceServers(msg.ice_servers);
      if (msg.case) renderCase(msg.case);
      presence.update(msg);
      if (msg.inspection?.status === 'ended') {
        showEnded();
        return;
      }
      peer.negotiate();
      break;
    case 'answer':
      peer.handleAnswer(msg.sdp);
      break;
    case 'ice':
      peer.addRemoteIce(msg);
      break;
    case 'presence':
      presence.update(msg);
      break;
    case 'chat':
      chat.addMessage(msg);
      break;
    case 'control_result':
      controlResult(msg);
      break;
    case 'peer_stats':
      if (msg.from?.role === 'applicant' || !msg.from?.role) {
        state.peerStats = msg.stats;
        renderStats($('stats-peer'), msg.stats);
      }
      break;
    case 'ended':
      showEnded();
      break;
    case 'error':
      handleError(msg);
      break;
    default:
      break;
  }
}

function handleError(msg) {
  console.warn('server error', msg);
  if (msg.code === 'inspection_ended') {
    showEnded();
  } else if (msg.code === 'replaced') {
    // Opened in another tab: do not fight over the session, offer to take it back.
    signalling.stop();
    peer.close();
    $('replaced-banner').hidden = false;
  } else if (msg.code === 'unauthorized') {
    signalling.stop();
    peer.close();
    redirectToLogin();
  } else if (msg.code === 'forbidden' && msg.ref === 'hello') {
    signalling.stop();
    peer.close();
    state.micTrack?.stop();
    $('live-grid').hidden = true;
    showPageError(`${t('inspect.not_found')} (${msg.reason})`);
  } else if (msg.code === 'negotiation_failed') {
    peer.retrySoon('negotiation_failed');
  } else if (FATAL_ERRORS.has(msg.code)) {
    signalling.stop();
  } else if (msg.ref === 'chat') {
    chat.addSystem(`${msg.code}: ${msg.reason}`);
  } else if (msg.ref === 'control') {
    logControl(`${msg.code}: ${msg.reason}`, { 'data-action': 'error', 'data-ok': 'false' });
  }
}

function showPageError(text) {
  const box = $('page-error');
  box.textContent = text;
  box.hidden = false;
}

// ---------------------------------------------------------------- rendering

function renderConn() {
  const dot = $('conn-dot');
  const map = { connecting: 'conn.connecting', open: 'conn.connecting', joined: 'conn.joined', reconnecting: 'conn.reconnecting', stopped: 'conn.stopped' };
  $('conn-status').textContent = t(state.ended ? 'inspect.ended' : map[state.connStatus] ?? 'conn.connecting');
  dot.className = `dot ${state.connStatus === 'joined' ? 'on' : state.connStatus === 'stopped' ? 'off' : 'wait'}`;
  // 视频已连接 only while frames arrive here; before that, who or what is awaited.
  const picture = presence.picture;
  const pcBroken = state.mediaState === 'failed' || state.mediaState === 'disconnected';
  const mediaKey =
    picture === 'ended' ? 'inspect.ended'
    : picture === 'flowing' ? 'conn.media_connected'
    : picture === 'absent' ? 'inspect.waiting_applicant'
    : picture === 'offline' ? 'presence.applicant_offline'
    : picture === 'stopped' ? 'conn.media_stopped'
    : pcBroken ? 'conn.media_failed'
    : state.mediaState === 'connected' ? 'inspect.waiting_video'
    : 'conn.media_connecting';
  $('media-status').textContent = t(mediaKey);
  $('media-status').dataset.key = mediaKey;
  $('media-dot').className = `dot ${picture === 'flowing' ? 'on' : picture === 'offline' || picture === 'stopped' || pcBroken ? 'off' : 'wait'}`;
  document.body.dataset.conn = state.connStatus;
  document.body.dataset.media = state.mediaState;
}

function renderCase(info) {
  state.caseInfo = { ...(state.caseInfo ?? {}), ...info };
  const c = state.caseInfo;
  const number = caseNumber(c);
  const archive = c.case_id && c.case_id !== number ? `(${t('case.archive_id', { id: c.case_id })})` : '';
  $('case-summary').textContent = [[number, archive].filter(Boolean).join(' '), c.title, c.address].filter(Boolean).join(' · ');
  document.title = `${number} ${t('inspect.title')} · Takan`;
}

function renderPresence() {
  const list = $('presence');
  list.replaceChildren();
  $('invite-card').classList.toggle('compact', Boolean(presence.applicant));
  for (const p of presence.participants) {
    const me = p.participant_id === state.myId;
    // An applicant that is there but whose picture stopped is said so, not 在线.
    const noPicture = p.connected && p.role === 'applicant' && presence.picture === 'stopped';
    const status = !p.connected ? 'presence.disconnected' : noPicture ? 'presence.no_picture' : 'presence.connected';
    list.append(
      h(
        'li',
        { 'data-participant-id': p.participant_id, 'data-role': p.role, 'data-connected': String(Boolean(p.connected)) },
        h('span', { class: `dot ${!p.connected ? 'off' : noPicture ? 'wait' : 'on'}` }),
        h('span', {}, `${p.name || t(`role.${p.role}`)}${me ? t('presence.you') : ''}`),
        h('span', { class: 'badge' }, t(`role.${p.role}`)),
        h('span', { class: 'muted small', 'data-status': status }, t(status)),
      ),
    );
  }
}

// Where applicants type the short code: the server's public URL (what the invite link and QR
// code use), not necessarily the address this page was opened at.
let codeUrl = `${location.origin}/j`;

function renderInvite(data) {
  const invite = data.invite ?? data;
  if (invite.applicant_url) $('invite-link').value = new URL(invite.applicant_url, location.origin).href;
  $('qr').src = invite.qr_svg_url ?? `/api/inspections/${encodeURIComponent(inspectionId)}/qr.svg`;
  $('short-code').textContent = invite.short_code ?? '';
  if (invite.code_url) codeUrl = invite.code_url;
  $('short-code-label').textContent = t('inspect.short_code', { url: codeUrl });
  const expires = invite.invite_expires_at ?? invite.expires_at;
  $('invite-expires').textContent = expires ? t('inspect.expires', { time: formatTime(expires, true) }) : '';
  $('invite-card').hidden = !invite.applicant_url && !invite.short_code;
}

function describeAction(action, value) {
  if (action === 'switch_camera') return t(`action.switch_camera.${value}`);
  if (action === 'torch') return value === undefined || value === null ? t('action.torch') : t(`action.torch.${Boolean(value)}`);
  if (action === 'zoom') return t('action.zoom', { value });
  return action;
}

function logControl(text, attrs = {}) {
  const list = $('control-results');
  list.prepend(h('li', attrs, `${formatTime()} ${text}`));
  while (list.children.length > 20) list.lastElementChild.remove();
}

function controlResult(msg) {
  const what = describeAction(msg.action, msg.value);
  const text = msg.ok ? t('inspect.result_ok', { what }) : t('inspect.result_fail', { what, reason: msg.reason || '—' });
  logControl(text, { 'data-action': msg.action, 'data-ok': String(Boolean(msg.ok)), 'data-result': 'true' });
  if (!msg.ok) return;
  if (msg.action === 'switch_camera' && (msg.value === 'user' || msg.value === 'environment')) state.facing = msg.value;
  if (msg.action === 'torch') {
    state.torch = Boolean(msg.value);
    renderTorch();
  }
  if (msg.action === 'zoom' && typeof msg.value === 'number') {
    $('zoom').value = String(msg.value);
    $('zoom-value').textContent = `${msg.value}×`;
  }
}

function renderTorch() {
  const button = $('btn-torch');
  button.setAttribute('aria-pressed', String(state.torch));
  button.dataset.i18n = state.torch ? 'inspect.torch_off' : 'inspect.torch_on';
  button.textContent = t(button.dataset.i18n);
}

function showEnded() {
  if (state.ended) return;
  state.ended = true;
  signalling.stop();
  peer.close();
  state.micTrack?.stop();
  document.body.dataset.state = 'ended';
  presence.end(); // nobody is 在线 after the end
  $('ended-banner').hidden = false;
  $('end-confirm').hidden = true;
  $('invite-card').hidden = true;
  siteChecks.disable();
  evidence.stopCapture();
  for (const id of ['btn-end', 'btn-switch-camera', 'btn-torch', 'zoom', 'chat-input', 'chat-send']) $(id).disabled = true;
  renderConn();
}

// ---------------------------------------------------------------- actions

function sendControl(action, value) {
  if (state.ended) return;
  const sent = signalling.send('control', { action, value });
  logControl(sent ? t('inspect.sent_request', { what: describeAction(action, value) }) : t('conn.reconnecting'), {
    'data-action': action,
    'data-sent': String(sent),
  });
}

$('btn-take-over').addEventListener('click', () => {
  $('replaced-banner').hidden = true;
  signalling.start();
});

$('btn-switch-camera').addEventListener('click', () => {
  sendControl('switch_camera', state.facing === 'environment' ? 'user' : 'environment');
});
$('btn-torch').addEventListener('click', () => sendControl('torch', !state.torch));
$('zoom').addEventListener('input', () => {
  $('zoom-value').textContent = `${$('zoom').value}×`;
});
$('zoom').addEventListener('change', () => sendControl('zoom', Number($('zoom').value)));

$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $('chat-input');
  const text = input.value.trim();
  if (!text) return;
  if (!signalling.send('chat', { text: text.slice(0, 2000) })) {
    chat.addSystem(t('conn.reconnecting'));
    return;
  }
  chat.addPending(text.slice(0, 2000));
  input.value = '';
});

$('btn-copy-link').addEventListener('click', async () => {
  const ok = await copyText($('invite-link').value, $('invite-link'));
  const button = $('btn-copy-link');
  if (ok) {
    button.textContent = t('common.copied');
    setTimeout(() => {
      button.textContent = t('common.copy');
    }, 1500);
  }
});

$('btn-end').addEventListener('click', () => {
  $('end-confirm').hidden = false;
  $('btn-end').hidden = true;
});
$('btn-end-cancel').addEventListener('click', () => {
  $('end-confirm').hidden = true;
  $('btn-end').hidden = false;
});
$('btn-end-confirm').addEventListener('click', async () => {
  $('btn-end-confirm').disabled = true;
  $('end-error').hidden = true;
  try {
    await api(`/api/inspections/${encodeURIComponent(inspectionId)}/end`, { method: 'POST', body: {} });
    showEnded();
  } catch (err) {
    if (err.status === 409) {
      showEnded(); // already over
      return;
    }
    if (redirectIfSignedOut(err)) return;
    // The REST call failed; the WebSocket can end it too.
    if (signalling.send('end')) return;
    $('end-error').textContent = t('inspect.end_failed', { reason: err.reason || err.code });
    $('end-error').hidden = false;
    $('btn-end-confirm').disabled = false;
  }
});

// ---------------------------------------------------------------- quality

startQualityLoop({
  meter,
  peer,
  signalling,
  dl: $('stats-mine'),
  active: () => !state.ended,
  onSample: (stats) => { state.myStats = stats; },
});

onLangChange(() => {
  renderConn();
  renderMic();
  renderTorch();
  presence.render();
  renderPresence();
  renderStats($('stats-mine'), state.myStats);
  renderStats($('stats-peer'), state.peerStats);
  if (state.caseInfo) renderCase(state.caseInfo);
  siteChecks.render();
  evidence.render();
  $('short-code-label').textContent = t('inspect.short_code', { url: codeUrl });
});

// ---------------------------------------------------------------- start

async function init() {
  renderConn();
  renderStats($('stats-mine'), null);
  renderStats($('stats-peer'), null);
  let data;
  try {
    data = await api(`/api/inspections/${encodeURIComponent(inspectionId)}`);
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
    document.body.dataset.state = 'error';
    showPageError(err.status === 404 || err.status === 403 ? t('inspect.not_found') : err.describe());
    $('live-grid').hidden = true; // nothing of a live inspection under the error
    return;
  }
  renderCase({
    case_id: data.case_id ?? data.case?.case_id,
    case_number: data.case?.case_number,
    title: data.case?.title ?? data.title,
    address: data.case?.address ?? data.address,
  });
  renderInvite(data);
  evidence.load(data);
  if (data.status === 'ended') {
    showEnded();
    return;
  }
  document.body.dataset.state = 'live';
  micReady = askMicrophone();
  signalling.start();
}

init();
