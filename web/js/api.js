// JSON calls to the REST API (docs/api.md). Errors become ApiError with the server's code and
// reason (and the answer's other fields: the field at fault, attempts left); 429 carries the
// Retry-After seconds. The session cookie travels by itself.

import { t } from './i18n.js';

export class ApiError extends Error {
  // `body` is the whole JSON answer: some errors say more than their reason (`attempts_left`).
  constructor(status, code, reason, retryAfter = null, body = null) {
    super(reason || code);
    this.status = status;
    this.code = code;
    this.reason = reason;
    this.retryAfter = retryAfter;
    this.body = body ?? {};
  }

  // A sentence for the user; pages handle the codes they expect before falling back to this.
  describe() {
    if (this.code === 'network') return t('common.network_error');
    if (this.status === 429) return t('common.rate_limited', { seconds: this.retryAfter ?? 60 });
    return t('common.server_error', { reason: this.reason || this.code });
  }
}

export async function api(path, { method = 'GET', body } = {}) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, 'network', String(err));
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const retry = Number.parseInt(response.headers.get('Retry-After') ?? '', 10);
    const error = new ApiError(
      response.status,
      data?.error ?? `http_${response.status}`,
      data?.reason ?? response.statusText,
      Number.isFinite(retry) ? retry : null,
      data !== null && typeof data === 'object' ? data : null,
    );
    error.field = data?.field ?? null; // the body's member at fault, for a form to mark
    throw error;
  }
  return data;
}

// For pages behind login: on 401 go to /login and come back here afterwards.
export function redirectToLogin() {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

// The same for a failed call: true (and on the way to /login) when `err` says the session is gone.
export function redirectIfSignedOut(err) {
  if (err?.status !== 401) return false;
  redirectToLogin();
  return true;
}

// The header's sign-out button: ends the session and goes to /login whatever the server answers.
export async function signOut() {
  try {
    await api('/api/logout', { method: 'POST', body: {} });
  } catch {
    // going to the login page anyway
  }
  location.assign('/login');
}
