// /dashboard: the inspector's day — inspections scheduled or created today, live ones, and those
// awaiting a conclusion (GET /api/dashboard), refreshed every 15 s.

import './strings-inspection.js';
import { api, redirectIfSignedOut } from './api.js';
import { onLangChange, setupLangToggle, t } from './i18n.js';
import { isCancelled, passkeyStatus, passkeysSupported, registerPasskey } from './passkey.js';
import { $, caseLabel, formatTime, h } from './ui.js';

setupLangToggle();

const REFRESH_MS = 15_000;
const SECTIONS = [
  ['today', 'dash-today'],
  ['live', 'dash-live'],
  ['awaiting_conclusion', 'dash-awaiting'],
];
let data = null;
let updatedAt = null;

function entry(item, section) {
  const when = item.scheduled_at
    ? t('dashboard.scheduled', { time: formatTime(item.scheduled_at, true) })
    : t('dashboard.created', { time: formatTime(item.created_at, true) });
  const action = section === 'awaiting_conclusion' ? 'dashboard.conclude' : 'dashboard.open';
  return h(
    'li',
    { 'data-inspection-id': item.inspection_id, 'data-case-id': item.case_id, 'data-status': item.status },
    h(
      'div',
      { class: 'dash-main' },
      h('div', {}, caseLabel(item), ' ', h('strong', {}, item.title ?? '')),
      h('div', { class: 'muted small' }, [item.address, when].filter(Boolean).join(' · ')),
    ),
    h('span', { class: `badge ${item.status === 'active' ? 'live' : 'ended'}` }, t(`dashboard.status.${item.status}`)),
    h('a', { class: `btn ${section === 'awaiting_conclusion' ? 'primary' : ''}`, href: `/inspect/${encodeURIComponent(item.inspection_id)}` }, t(action)),
  );
}

function render() {
  if (!data) return;
  for (const [key, id] of SECTIONS) {
    const items = Array.isArray(data[key]) ? data[key] : [];
    const section = $(id);
    section.querySelector('[data-count]').textContent = String(items.length);
    const list = section.querySelector('.dash-list');
    list.replaceChildren(...(items.length ? items.map((item) => entry(item, key)) : [h('li', { class: 'muted small' }, t('dashboard.empty'))]));
  }
  $('dash-updated').textContent = updatedAt ? t('dashboard.updated', { time: formatTime(updatedAt.toISOString()) }) : '';
}

async function load() {
  try {
    data = await api(`/api/dashboard?utc_offset_min=${-new Date().getTimezoneOffset()}`);
    updatedAt = new Date();
    $('dash-error').hidden = true;
    document.body.dataset.state = 'ready';
    render();
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
    $('dash-error').textContent = t('dashboard.failed', { reason: err.reason || err.code });
    $('dash-error').hidden = false;
    document.body.dataset.state = 'error';
  }
}

// ---------------------------------------------------------------- my passkeys

const MAX_LABEL = 60;
let passkeys = null;

function renderPasskeys() {
  if (!passkeys) return;
  const modeText = t(`passkeys.mode.${passkeys.mode}`);
  const unavailable = passkeys.available ? '' : ` ${t('passkeys.unavailable', { reason: t(`passkeys.unavailable.${passkeys.unavailable}`) })}`;
  const unsupported = passkeys.available && !passkeysSupported() ? ` ${t('passkeys.unsupported')}` : '';
  $('passkey-mode').textContent = modeText + unavailable + unsupported;
  $('passkey-form').hidden = !passkeys.available || !passkeysSupported();
  const items = passkeys.passkeys.map((p) =>
    h(
      'li',
      { 'data-credential-id': p.credential_id },
      h(
        'div',
        { class: 'dash-main' },
        h('strong', {}, p.label),
        h('div', { class: 'muted small mono wrap' }, t('passkeys.fingerprint', { fingerprint: p.fingerprint })),
        h('div', { class: 'muted small' }, [t('passkeys.registered_at', { time: formatTime(p.registered_at, true) }), p.last_used_at ? t('passkeys.used_at', { time: formatTime(p.last_used_at, true) }) : ''].filter(Boolean).join(' · ')),
      ),
    ),
  );
  $('passkey-list').replaceChildren(...(items.length ? items : [h('li', { class: 'muted small' }, t('passkeys.none'))]));
}

function passkeyMessage(error, done = '') {
  $('passkey-error').textContent = error;
  $('passkey-error').hidden = !error;
  $('passkey-done').textContent = done;
  $('passkey-done').hidden = !done;
}

async function loadPasskeys() {
  try {
    passkeys = await passkeyStatus();
    renderPasskeys();
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
    passkeyMessage(t('passkeys.failed', { reason: err.reason || err.code }));
  }
}

$('passkey-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const label = $('passkey-label').value.trim();
  if (!label) return passkeyMessage(t('passkeys.need_label'));
  if ([...label].length > MAX_LABEL) return passkeyMessage(t('passkeys.label_too_long', { limit: MAX_LABEL }));
  const button = $('btn-passkey-register');
  button.disabled = true;
  button.textContent = t('passkeys.registering');
  try {
    const passkey = await registerPasskey(label);
    $('passkey-label').value = '';
    passkeyMessage('', t('passkeys.done', { label: passkey.label }));
    await loadPasskeys();
  } catch (err) {
    passkeyMessage(isCancelled(err) ? t('passkeys.cancelled') : t('passkeys.failed', { reason: err.reason || err.message || err.code }));
  } finally {
    button.disabled = false;
    button.textContent = t('passkeys.register');
  }
});

onLangChange(render);
onLangChange(renderPasskeys);
loadPasskeys();

api('/api/me')
  .then((me) => {
    $('whoami').textContent = t('cases.signed_in_as', { name: me.username });
  })
  .catch(() => {});
load();
setInterval(() => {
  if (document.visibilityState === 'visible') load();
}, REFRESH_MS);
