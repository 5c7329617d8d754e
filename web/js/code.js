// /j: the applicant types the 6-digit short code → POST /api/join/code → the invite link.

import { api } from './api.js';
import { setupLangToggle, t, onLangChange } from './i18n.js';
import { $, waitOutRateLimit } from './ui.js';

setupLangToggle();

const form = $('code-form');
const input = $('code-input');
const submit = $('code-submit');
const errorBox = $('code-error');
let stopCountdown = null;

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

input.addEventListener('input', () => {
  const digits = input.value.replace(/\D/g, '').slice(0, 6);
  if (digits !== input.value) input.value = digits;
  if (!stopCountdown) showError('');
});

onLangChange(() => {
  if (!submit.disabled) submit.textContent = t('code.submit');
});

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const code = input.value.replace(/\D/g, '');
  if (!/^\d{6}$/.test(code)) {
    showError(t('code.invalid_format'));
    input.focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = t('code.busy');
  showError('');
  try {
    const data = await api('/api/join/code', { method: 'POST', body: { code } });
    const target = new URL(data.applicant_url, location.origin);
    if (document.documentElement.lang === 'en') target.searchParams.set('lang', 'en');
    location.assign(target.href);
    return;
  } catch (err) {
    submit.textContent = t('code.submit');
    if (err.status === 429) {
      stopCountdown?.();
      stopCountdown = waitOutRateLimit(err.retryAfter ?? 60, submit, showError, () => {
        stopCountdown = null;
      });
      return;
    }
    showError(['not_found', 'bad_request', 'unauthorized', 'conflict'].includes(err.code) ? t('code.wrong') : err.describe());
    input.select();
  }
  submit.disabled = false;
});
