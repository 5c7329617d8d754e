// Passkeys (WebAuthn) of the signed-in staff user: registering one (the dashboard), and signing
// a conclusion with one (the inspector page). The server's options are WebAuthn JSON, turned into
// the browser's objects by PublicKeyCredential.parse*OptionsFromJSON; answers go back as toJSON().

import { api } from './api.js';

export function passkeysSupported() {
  return (
    typeof PublicKeyCredential !== 'undefined' &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function' &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function'
  );
}

// The deployment's mode, whether passkeys work here, and the user's own (GET /api/passkeys).
export function passkeyStatus() {
  return api('/api/passkeys');
}

export async function registerPasskey(label) {
  const asked = await api('/api/passkeys/options', { method: 'POST' });
  const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(asked.options);
  const credential = await navigator.credentials.create({ publicKey });
  return api('/api/passkeys', { method: 'POST', body: { token: asked.token, label, credential: credential.toJSON() } });
}

// The conclusion `body` signed by the user's passkey: the server drafts it and asks for the
// signature over its SHA-256, the passkey signs, the server checks and chains it.
export async function concludeWithPasskey(base, body) {
  const asked = await api(`${base}/conclusion/challenge`, { method: 'POST', body });
  const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(asked.options);
  const credential = await navigator.credentials.get({ publicKey });
  return api(`${base}/conclusion`, { method: 'POST', body: { ...body, draft: asked.draft, passkey: credential.toJSON() } });
}

// A cancelled or timed-out browser prompt (DOMException NotAllowedError), not a server error.
export function isCancelled(err) {
  return err instanceof DOMException && (err.name === 'NotAllowedError' || err.name === 'AbortError');
}
