// /j: the applicant types the 6-digit short code → POST /api/join/code → the invite link.
// The code is read as people write it: `269 354`, `269-354`, `269—354` or in full-width digits
// (server/inspection/short_codes.py reads it by the same rules); what was typed stays as typed.

import { api } from './api.js';
import { setupLangToggle, t, onLangChange } from './i18n.js';
import { $, waitOutRateLimit } from './ui.js';

setupLangToggle();

const CODE_DIGITS = 6;
const MAX_TYPED = 64;
const form = $('code-form');
const input = $('code-input');
const submit = $('code-submit');
const errorBox = $('code-error');
let stopCountdown = null;
let shown = null; // the message on screen, as [key, params], so a language switch redraws it

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = !text;
}

function show(key, params = {}) {
  shown = key ? [key, params] : null;
  showError(key ? t(key, params) : '');
}

// A space of any width, or a dash of any kind (hyphen, en/em dash, full-width hyphen, minus).
const SEPARATOR = /^[\s\p{Pd}\u2212]$/u;

// {code} (six ASCII digits), or {problem: [key, params]} for the page.
function readCode(typed) {
  if (typed.length > MAX_TYPED) return { problem: ['code.too_long', { max: MAX_TYPED }] };
  let digits = '';
  for (const char of typed) {
    const point = char.codePointAt(0);
    if (char >= '0' && char <= '9') digits += char;
    else if (point >= 0xff10 && point <= 0xff19) digits += String(point - 0xff10);
    else if (!SEPARATOR.test(char)) return { problem: ['code.invalid_char', { char }] };
  }
  if (digits.length !== CODE_DIGITS) {
    return { problem: ['code.invalid_format', { count: digits.length }] };
  }
  return { code: digits };
}

input.addEventListener('input', () => {
  if (!stopCountdown) show(null);
});

onLangChange(() => {
  if (!submit.disabled) submit.textContent = t('code.submit');
  if (shown && !stopCountdown) showError(t(...shown));
});

function lockOut(seconds) {
  stopCountdown?.();
  shown = null;
  stopCountdown = waitOutRateLimit(seconds, submit, showError, () => {
    stopCountdown = null;
  });
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const read = readCode(input.value);
  if (read.problem) {
    show(...read.problem);
    input.focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = t('code.busy');
  show(null);
  try {
    const data = await api('/api/join/code', { method: 'POST', body: { code: read.code } });
    const target = new URL(data.applicant_url, location.origin);
    if (document.documentElement.lang === 'en') target.searchParams.set('lang', 'en');
    location.assign(target.href);
    return;
  } catch (err) {
    submit.textContent = t('code.submit');
    if (err.status === 429) {
      lockOut(err.retryAfter ?? 60);
      return;
    }
    const left = err.body?.attempts_left;
    if (err.code === 'not_found' && left === 0) {
      lockOut(err.body.retry_after ?? 60);
      return;
    }
    if (err.code === 'not_found' && Number.isInteger(left)) {
      show(left === 1 ? 'code.wrong_left_one' : 'code.wrong_left', { left });
    } else {
      shown = null;
      showError(err.describe());
    }
    input.select();
  }
  submit.disabled = false;
});
