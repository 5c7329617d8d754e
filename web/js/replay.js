// /replay/{case_id}/{inspection_id}: the server's replay page. It announces the replay
// (POST …/replay, chained), then everything else — signature, chain, hashes, playback — is the
// evidence core working on objects fetched from /api/cases/{case}/objects/, exactly as the
// offline package page does on files, trusting the server's key history (/api/keys); what the
// browser found is reported back and chained.

import { api, redirectIfSignedOut } from './api.js';
import { addStrings, setupLangToggle, t } from './i18n.js';
import { AUDIT_STRINGS } from './strings-audit.js';
import { $ } from './ui.js';

const E = globalThis.TakanEvidence;
addStrings(E.STRINGS);
addStrings(AUDIT_STRINGS);
setupLangToggle();

const [, , caseId, inspectionId] = location.pathname.split('/').map(decodeURIComponent);

function fail(text) {
  $('replay-error').textContent = text;
  $('replay-error').hidden = false;
}

async function init() {
  $('replay-case').textContent = `${caseId} · ${inspectionId}`;
  $('back').href = `/cases/${encodeURIComponent(caseId)}`;
  let info;
  let keys;
  try {
    const me = await api('/api/me');
    keys = await api('/api/keys');
    $('whoami').textContent = t('ev.signed_in_as', { name: me.username, role: t(`ev.role.${me.role}`) });
    info = await api(`/api/inspections/${encodeURIComponent(inspectionId)}/replay`, { method: 'POST', body: {} });
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
    if (err.status === 409) fail(t('ev.replay_active'));
    else if (err.status === 403 || err.status === 404) fail(t('ev.not_found'));
    else fail(err.describe());
    return;
  }
  if (info.case_id !== caseId) {
    fail(t('ev.not_found'));
    return;
  }
  $('replay-case').textContent = `${info.case_number || caseId} · ${inspectionId}`;
  const view = new E.ReplayView($('replay'), {
    source: new E.ServerSource(caseId),
    caseId,
    inspectionId,
    t,
    // Trust as the case page's integrity does: the server's own key history.
    trustedKeys: keys.keys.map((k) => k.fingerprint),
    trustLabel: 'replay.trust_server',
    onVerified: (result) =>
      api(`/api/inspections/${encodeURIComponent(inspectionId)}/replay-verified`, { method: 'POST', body: result }).then(
        () => ($('replay').dataset.reported = 'true'),
        (err) => fail(err.describe()),
      ),
  });
  await view.run();
}

init();
