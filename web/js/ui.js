// Small DOM helpers shared by the pages: element builder, time formatting, chat transcript,
// quality table, rate-limit countdown, copying.

import { lang, t } from './i18n.js';

export const $ = (id) => document.getElementById(id);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('data-')) el.setAttribute(key, String(value));
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// A case as people know it: its number as written (榆阳食经〔2026〕0142号); when the archive
// files it under another case ID (c-2026-0142-…), that ID follows, small.
export function caseNumber(item) {
  return item?.case_number || item?.case_id || '';
}

export function caseLabel(item) {
  const number = caseNumber(item);
  const id = item?.case_id ?? '';
  const own = !id || id === number;
  return h(
    'span',
    { class: 'case-label' },
    h('span', { class: own ? 'case-number mono' : 'case-number' }, number),
    own ? null : h('span', { class: 'case-archive-id muted small mono', title: t('case.archive_id_hint') }, t('case.archive_id', { id })),
  );
}

export function formatTime(iso, withDate = false) {
  const date = iso ? new Date(iso) : new Date();
  if (Number.isNaN(date.getTime())) return '';
  const options = withDate
    ? { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }
    : { hour: '2-digit', minute: '2-digit', second: '2-digit' };
  return date.toLocaleString(lang(), options);
}

// Chat transcript. Own messages appear at once as pending and are confirmed when the server's
// echo (same sender, same text) arrives, so the transcript is right whether or not it echoes.
export class ChatView {
  constructor(log, { myId = () => null } = {}) {
    this.log = log;
    this.myId = myId;
  }

  addPending(text) {
    const item = this.#item({ mine: true, name: t('chat.me'), text });
    item.classList.add('pending');
    item.dataset.pending = 'true';
    this.#append(item);
  }

  addMessage(msg) {
    const from = msg.from ?? {};
    const mine = from.participant_id && from.participant_id === this.myId();
    if (mine) {
      const pending = [...this.log.querySelectorAll('[data-pending="true"]')].find(
        (el) => el.querySelector('.chat-text').textContent === msg.text,
      );
      if (pending) {
        pending.dataset.pending = 'false';
        pending.classList.remove('pending');
        pending.querySelector('.chat-time').textContent = formatTime(msg.at);
        return;
      }
    }
    const role = from.role ? t(`role.${from.role}`) : '';
    const name = from.name ? `${from.name}${role ? ` · ${role}` : ''}` : role;
    this.#append(this.#item({ mine, name, text: msg.text, at: msg.at, role: from.role }));
  }

  addSystem(text) {
    this.#append(h('li', { class: 'chat-system' }, text));
  }

  #item({ mine, name, text, at, role }) {
    return h(
      'li',
      { class: mine ? 'chat-mine' : 'chat-theirs', 'data-role': role ?? (mine ? 'self' : null) },
      h('div', { class: 'chat-meta' }, h('span', { class: 'chat-name' }, name), h('span', { class: 'chat-time' }, formatTime(at))),
      h('div', { class: 'chat-text' }, text),
    );
  }

  #append(item) {
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    this.log.append(item);
    if (atBottom) this.log.scrollTop = this.log.scrollHeight;
  }
}

// Fills a <dl> with the quality figures of a stats object ({bitrate_kbps, fps, width, height, rtt_ms}).
export function renderStats(dl, stats) {
  dl.replaceChildren();
  if (!stats) {
    dl.append(h('dd', { class: 'muted' }, t('stats.none')));
    return;
  }
  const dash = '–';
  const rows = [
    ['stats.bitrate', stats.bitrate_kbps == null ? dash : `${Math.round(stats.bitrate_kbps)} kbps`, 'bitrate'],
    ['stats.fps', stats.fps == null ? dash : `${Math.round(stats.fps)} fps`, 'fps'],
    ['stats.resolution', stats.width ? `${stats.width}×${stats.height}` : dash, 'resolution'],
    ['stats.rtt', stats.rtt_ms == null ? dash : `${Math.round(stats.rtt_ms)} ms`, 'rtt'],
  ];
  for (const [key, value, name] of rows) {
    dl.append(h('dt', {}, t(key)), h('dd', { 'data-stat': name }, value));
  }
}

// Every second: sample this side's quality into `dl`; every other second also send it to the
// other side. `active()` pauses the loop; `onSample(stats)` keeps the latest figures.
export function startQualityLoop({ meter, peer, signalling, dl, active, onSample }) {
  let tick = 0;
  return setInterval(async () => {
    if (!active()) return;
    const sample = await meter.sample(peer.pc);
    tick += 1;
    const stats = sample?.stats ?? null;
    onSample(stats);
    renderStats(dl, stats);
    dl.dataset.frames = String(sample?.frames ?? 0);
    if (tick % 2 === 0 && stats) signalling.send('stats', { stats });
  }, 1000);
}

// A rate limit on a form: keeps `button` disabled and counts the seconds down through
// `showError` until the user may try again. Returns a function that stops the count early.
export function waitOutRateLimit(seconds, button, showError, onDone = () => {}) {
  let left = Math.max(1, Math.ceil(seconds));
  const tick = () => {
    showError(t('common.rate_limited', { seconds: left }));
    button.disabled = true;
  };
  tick();
  const timer = setInterval(() => {
    left -= 1;
    if (left > 0) {
      tick();
      return;
    }
    clearInterval(timer);
    showError('');
    button.disabled = false;
    onDone();
  }, 1000);
  return () => clearInterval(timer);
}

export function copyText(text, input) {
  if (navigator.clipboard && window.isSecureContext) {
    return navigator.clipboard.writeText(text).then(() => true, () => legacyCopy(input));
  }
  return Promise.resolve(legacyCopy(input));
}

function legacyCopy(input) {
  if (!input) return false;
  input.focus();
  input.select();
  try {
    return document.execCommand('copy');
  } catch {
    return false;
  }
}
