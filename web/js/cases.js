// /cases: the inspector's cases, a form to create one and a "start inspection" button per case.

import { api, redirectIfSignedOut, signOut } from './api.js';
import { onLangChange, setupLangToggle, t } from './i18n.js';
import './strings-audit.js';
import './strings-inspection.js';
import './strings-templates.js';
import { $, formatTime, h } from './ui.js';

setupLangToggle();

const CASE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
let me = null;
let cases = [];

function fail(err, box) {
  if (redirectIfSignedOut(err)) return;
  box.textContent = err.describe();
  box.hidden = false;
}

function statusBadge(status) {
  if (!status) return null;
  const cls = status === 'live' || status === 'active' || status === 'open' ? 'badge live' : status === 'ended' ? 'badge ended' : 'badge';
  return h('span', { class: cls }, status);
}

// Inspections that are still going on, whatever shape the case carries them in.
function openInspections(item) {
  const list = Array.isArray(item.inspections) ? item.inspections : [];
  return list.filter((i) => i && i.inspection_id && i.status !== 'ended');
}

function renderCases() {
  const list = $('case-list');
  list.replaceChildren();
  $('cases-empty').hidden = cases.length > 0;
  const canStart = me && (me.role === 'inspector' || me.role === 'admin');
  for (const item of cases) {
    const start = h('button', { class: 'btn primary', type: 'button', 'data-case-id': item.case_id }, t('cases.start'));
    start.addEventListener('click', () => startInspection(item.case_id, start));
    const when = h('input', { type: 'datetime-local', required: true, 'aria-label': t('cases.schedule_at') });
    const scheduleButton = h('button', { class: 'btn', type: 'submit' }, t('cases.schedule_submit'));
    const scheduleForm = h(
      'form',
      { class: 'row small', 'data-schedule': item.case_id },
      h('label', {}, t('cases.schedule_at'), ' ', when),
      scheduleButton,
    );
    scheduleForm.addEventListener('submit', (event) => {
      event.preventDefault();
      scheduleInspection(item.case_id, when, scheduleButton);
    });
    const schedule = h('details', { class: 'schedule' }, h('summary', {}, t('cases.schedule')), scheduleForm);
    const facts = [item.address, item.applicant_name, item.applicant_phone].filter(Boolean).join(' · ');
    list.append(
      h(
        'li',
        { 'data-case-id': item.case_id },
        h(
          'div',
          { class: 'case-main' },
          h('div', { class: 'case-title' }, h('span', { class: 'mono' }, item.case_id), ' ', item.title ?? '', ' ', statusBadge(item.status)),
          h('div', { class: 'muted small' }, facts),
          item.created_at ? h('div', { class: 'muted small' }, formatTime(item.created_at, true)) : null,
        ),
        h('a', { class: 'btn', href: `/cases/${encodeURIComponent(item.case_id)}`, 'data-case-link': item.case_id }, t('cases.open_case')),
        openInspections(item).map((i) =>
          h('a', { class: 'btn', href: `/inspect/${encodeURIComponent(i.inspection_id)}` }, t('cases.resume')),
        ),
        canStart ? start : null,
        canStart ? schedule : null,
      ),
    );
  }
}

async function loadCases() {
  $('cases-error').hidden = true;
  try {
    const data = await api('/api/cases');
    cases = Array.isArray(data?.cases) ? data.cases : [];
    renderCases();
    loadInspections();
  } catch (err) {
    fail(err, $('cases-error'));
  } finally {
    $('cases-loading').hidden = true;
  }
}

// The list carries no inspections: fetch each case (the first 50) to offer "open live inspection".
async function loadInspections() {
  const details = await Promise.all(
    cases.slice(0, 50).map((item) =>
      api(`/api/cases/${encodeURIComponent(item.case_id)}`).catch(() => null),
    ),
  );
  let changed = false;
  for (const detail of details) {
    const item = detail && cases.find((c) => c.case_id === detail.case_id);
    if (item && Array.isArray(detail.inspections)) {
      item.inspections = detail.inspections;
      changed = true;
    }
  }
  if (changed) renderCases();
}

async function startInspection(caseId, button) {
  button.disabled = true;
  button.textContent = t('cases.starting');
  try {
    const data = await api(`/api/cases/${encodeURIComponent(caseId)}/inspections`, { method: 'POST', body: {} });
    location.assign(`/inspect/${encodeURIComponent(data.inspection_id)}`);
  } catch (err) {
    fail(err, $('cases-error'));
    button.disabled = false;
    button.textContent = t('cases.start');
  }
}

// An inspection at an agreed time: its invite link works from now until its TTL after that time.
async function scheduleInspection(caseId, input, button) {
  const local = input.value ? new Date(input.value) : null;
  if (!local || Number.isNaN(local.getTime())) {
    input.reportValidity();
    return;
  }
  button.disabled = true;
  try {
    await api(`/api/cases/${encodeURIComponent(caseId)}/inspections`, {
      method: 'POST',
      body: { scheduled_at: local.toISOString() },
    });
    const okBox = $('create-ok');
    okBox.textContent = t('cases.scheduled', { time: formatTime(local.toISOString(), true) });
    okBox.hidden = false;
    await loadCases();
  } catch (err) {
    fail(err, $('cases-error'));
  } finally {
    button.disabled = false;
  }
}

// Case types come from the checklist templates, so that a case gets its type's checklist.
async function loadCaseTypes() {
  try {
    const data = await api('/api/checklist-templates');
    const select = $('case-type');
    for (const template of data?.templates ?? []) {
      if (!template.case_type) continue;
      select.append(h('option', { value: template.case_type }, template.name || template.case_type));
    }
  } catch {
    // the form works without a type: the general checklist applies
  }
}

function siteCoordinates(errorBox) {
  const latText = $('case-site-lat').value.trim();
  const lonText = $('case-site-lon').value.trim();
  if (!latText && !lonText) return {};
  const lat = Number(latText);
  const lon = Number(lonText);
  if (!latText || !lonText || !Number.isFinite(lat) || !Number.isFinite(lon) || Math.abs(lat) > 90 || Math.abs(lon) > 180) {
    errorBox.textContent = t('cases.site_pair');
    errorBox.hidden = false;
    return null;
  }
  return { site_lat: lat, site_lon: lon };
}

$('create-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const errorBox = $('create-error');
  const okBox = $('create-ok');
  errorBox.hidden = true;
  okBox.hidden = true;
  const body = {
    case_id: $('case-id').value.trim(),
    title: $('case-title').value.trim(),
    address: $('case-address').value.trim(),
  };
  const name = $('case-applicant-name').value.trim();
  const phone = $('case-applicant-phone').value.trim();
  if (name) body.applicant_name = name;
  if (phone) body.applicant_phone = phone;
  if ($('case-type').value) body.case_type = $('case-type').value;
  const site = siteCoordinates(errorBox);
  if (site === null) return;
  Object.assign(body, site);
  if (!CASE_ID.test(body.case_id) || body.case_id.includes('..')) {
    errorBox.textContent = `${t('cases.case_id')}: ${t('cases.case_id_hint')}`;
    errorBox.hidden = false;
    return;
  }
  if (!body.title || !body.address) {
    errorBox.textContent = `${t('cases.case_title')} / ${t('cases.address')}`;
    errorBox.hidden = false;
    return;
  }
  const submit = $('create-submit');
  submit.disabled = true;
  try {
    await api('/api/cases', { method: 'POST', body });
    okBox.textContent = t('cases.created', { id: body.case_id });
    okBox.hidden = false;
    event.target.reset();
    await loadCases();
  } catch (err) {
    if (err.status === 409) {
      errorBox.textContent = t('cases.exists', { id: body.case_id });
      errorBox.hidden = false;
    } else {
      fail(err, errorBox);
    }
  } finally {
    submit.disabled = false;
  }
});

$('logout').addEventListener('click', signOut);

onLangChange(() => {
  renderCases();
  if (me) $('whoami').textContent = t('cases.signed_in_as', { name: me.username });
});

async function init() {
  try {
    me = await api('/api/me');
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
  }
  if (me) {
    $('whoami').textContent = t('cases.signed_in_as', { name: me.username });
    $('create-card').hidden = !(me.role === 'inspector' || me.role === 'admin');
    $('audit-link').hidden = !(me.role === 'auditor' || me.role === 'admin');
    $('dashboard-link').hidden = me.role !== 'inspector';
    $('templates-link').hidden = me.role !== 'admin';
    if (me.role === 'inspector' || me.role === 'admin') loadCaseTypes();
  }
  await loadCases();
}

init();
