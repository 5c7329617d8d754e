// /login: username and password → POST /api/login; the server sets the HttpOnly session cookie,
// nothing is kept in the page.

import { api } from './api.js';
import { setupLangToggle, t } from './i18n.js';
import { $, waitOutRateLimit } from './ui.js';

setupLangToggle();

const form = $('login-form');
const submit = $('login-submit');
const errorBox = $('login-error');
let stopCountdown = null;

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

// Auditors and admins land on the case search, inspectors on their cases.
function nextPage(role) {
  const next = new URLSearchParams(location.search).get('next');
  // Only same-site paths, never another origin.
  if (next && next.startsWith('/') && !next.startsWith('//')) return next;
  return role === 'auditor' || role === 'admin' ? '/audit' : '/cases';
}

// Already signed in (the cookie is valid): no need to sign in again.
api('/api/me').then(
  (me) => location.replace(nextPage(me?.role)),
  () => {},
);

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const username = $('username').value.trim();
  const password = $('password').value;
  if (!username || !password) {
    showError(t('login.required'));
    return;
  }
  showError('');
  submit.disabled = true;
  submit.textContent = t('login.busy');
  try {
    const session = await api('/api/login', { method: 'POST', body: { username, password } });
    location.assign(nextPage(session?.role));
    return;
  } catch (err) {
    const left = err.body?.attempts_left;
    if (err.status === 429 || (err.status === 401 && left === 0)) {
      stopCountdown?.();
      stopCountdown = waitOutRateLimit(err.retryAfter ?? err.body?.retry_after ?? 60, submit, showError);
      submit.textContent = t('login.submit');
      return;
    }
    if (err.status === 401 && Number.isInteger(left)) {
      showError(t(left === 1 ? 'login.invalid_left_one' : 'login.invalid_left', { left }));
    } else {
      showError(err.status === 401 || err.code === 'unauthorized' ? t('login.invalid') : err.describe());
    }
  }
  submit.disabled = false;
  submit.textContent = t('login.submit');
});
