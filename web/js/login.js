// /login: username and password → POST /api/login; the server sets the HttpOnly session cookie,
// nothing is kept in the page.

import { api } from './api.js';
import { setupLangToggle, t } from './i18n.js';
import { $, countdown } from './ui.js';

setupLangToggle();

const form = $('login-form');
const submit = $('login-submit');
const errorBox = $('login-error');
let stopCountdown = null;

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

function nextPage() {
  const next = new URLSearchParams(location.search).get('next');
  // Only same-site paths, never another origin.
  return next && next.startsWith('/') && !next.startsWith('//') ? next : '/cases';
}

// Already signed in (the cookie is valid): no need to sign in again.
api('/api/me').then(
  () => location.replace(nextPage()),
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
    await api('/api/login', { method: 'POST', body: { username, password } });
    location.assign(nextPage());
    return;
  } catch (err) {
    if (err.status === 429) {
      stopCountdown?.();
      stopCountdown = countdown(
        err.retryAfter ?? 60,
        (seconds) => {
          showError(t('common.rate_limited', { seconds }));
          submit.disabled = true;
        },
        () => {
          showError('');
          submit.disabled = false;
        },
      );
      submit.textContent = t('login.submit');
      return;
    }
    showError(err.status === 401 || err.code === 'unauthorized' ? t('login.invalid') : err.describe());
  }
  submit.disabled = false;
  submit.textContent = t('login.submit');
});
