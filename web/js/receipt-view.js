// The applicant's receipt on the page's end screen: GET /api/inspections/{id}/receipt with the
// invite token, offered as a download and as a QR code (docs/archive.md, "Receipts"). The
// receipt is issued a moment after the inspection ends, so a 409 is asked again a few times.

import { t } from './i18n.js';
import { $ } from './ui.js';

const ATTEMPTS = 20;
const RETRY_MS = 1500;

// The inspection an invite token names: its payload is base64url JSON (the server checks it).
export function inviteInspection(token) {
  try {
    const payload = token.split('.')[0].replace(/-/g, '+').replace(/_/g, '/');
    const body = JSON.parse(atob(payload + '='.repeat((4 - (payload.length % 4)) % 4)));
    return { inspectionId: body.insp ?? null, caseId: body.case ?? null };
  } catch {
    return { inspectionId: null, caseId: null };
  }
}

async function fetchAuthorized(url, token) {
  return fetch(url, { headers: { Authorization: `Bearer ${token}` }, credentials: 'omit' });
}

async function sha256Hex(bytes) {
  if (!crypto.subtle) return null; // only in secure contexts (HTTPS, localhost)
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

function fail(reason) {
  $('receipt').dataset.state = 'failed';
  $('receipt-status').textContent = t('join.receipt.failed', { reason });
}

export async function showReceipt(token, inspectionId) {
  const base = `/api/inspections/${encodeURIComponent(inspectionId)}/receipt`;
  let response = null;
  for (let attempt = 0; attempt < ATTEMPTS; attempt += 1) {
    try {
      response = await fetchAuthorized(base, token);
    } catch (err) {
      response = null;
    }
    if (response && response.status !== 409) break;
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
  if (!response || !response.ok) {
    let reason = response ? `HTTP ${response.status}` : t('common.network_error');
    try {
      reason = (await response.json()).reason ?? reason;
    } catch {
      // keep the status
    }
    fail(reason);
    return;
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  const receipt = JSON.parse(new TextDecoder().decode(bytes)).receipt;
  const link = $('receipt-download');
  link.href = URL.createObjectURL(new Blob([bytes], { type: 'application/json' }));
  link.download = `takan-receipt-${receipt.case_id}-${receipt.inspection_id}.json`;
  link.hidden = false;
  const sha = await sha256Hex(bytes);
  if (sha) {
    $('receipt-sha256').textContent = t('join.receipt.sha256', { sha256: sha });
    $('receipt-sha256').hidden = false;
  }
  const qr = await fetchAuthorized(`${base}/qr.svg`, token);
  if (qr.ok) {
    const holds = qr.headers.get('X-Takan-QR-Holds') === 'receipt' ? 'join.receipt.qr_receipt' : 'join.receipt.qr_url';
    $('receipt-qr').src = URL.createObjectURL(await qr.blob());
    $('receipt-qr').alt = t('join.receipt.title');
    $('receipt-qr').hidden = false;
    $('receipt-qr-holds').textContent = t(holds);
    $('receipt-qr-holds').hidden = false;
  }
  $('receipt-status').hidden = true;
  $('receipt').dataset.state = 'shown';
}
