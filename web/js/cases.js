// /cases: the inspector's cases, a form to create one and a "start inspection" button per case.

import { api, redirectIfSignedOut, signOut } from './api.js';
import { onLangChange, setupLangToggle, t } from './i18n.js';
import './strings-audit.js';
import './strings-cases.js';
import './strings-inspection.js';
import './strings-templates.js';
import { $, caseLabel, caseNumber, formatTime, h } from './ui.js';

setupLangToggle();

let me = null;
let cases = [];

function fail(err, box) {
  if (redirectIfSignedOut(err)) return;
  box.textContent = err.describe();
  box.hidden = false;
}

// Inspections that are still going on, whatever shape the case carries them in.
function openInspections(item) {
  const list = Array.isArray(item.inspections) ? item.inspections : [];
  return list.filter((i) => i && i.inspection_id && i.status !== 'ended');
}

// Where the case stands, from its latest inspection: live (resume it), awaiting a conclusion,
// concluded (通过 / 不通过: nothing more to start; 需整改: a follow-up inspection), or none yet.
// Until the case's inspections are loaded nothing is offered, so no button is offered wrongly.
function caseState(item) {
  if (!Array.isArray(item.inspections)) return { loaded: false };
  const latest = [...item.inspections].sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)))[0];
  if (!latest) return { loaded: true, start: 'cases.start' };
  if (latest.status !== 'ended') return { loaded: true, badge: ['cases.state.live', 'badge live'] };
  if (!latest.outcome) return { loaded: true, badge: ['cases.state.awaiting', 'badge'] };
  const badge = [`audit.outcome.${latest.outcome}`, `badge outcome-${latest.outcome}`];
  if (latest.outcome === 'correction') return { loaded: true, badge, start: 'cases.reinspect' };
  return { loaded: true, badge, concluded: true };
}

function renderCases() {
  const list = $('case-list');
  list.replaceChildren();
  $('cases-empty').hidden = cases.length > 0;
  const canStart = me && (me.role === 'inspector' || me.role === 'admin');
  for (const item of cases) {
    const state = caseState(item);
    const offer = canStart && Boolean(state.start);
    const start = h('button', { class: 'btn primary', type: 'button', 'data-case-id': item.case_id }, t(state.start ?? 'cases.start'));
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
          h(
            'div',
            { class: 'case-title' },
            caseLabel(item),
            ' ',
            item.title ?? '',
            ' ',
            state.badge ? h('span', { class: state.badge[1], 'data-state': state.badge[0] }, t(state.badge[0])) : null,
            state.concluded ? h('span', { class: 'badge ended' }, t('cases.state.concluded')) : null,
          ),
          h('div', { class: 'muted small' }, facts),
          item.created_at ? h('div', { class: 'muted small' }, formatTime(item.created_at, true)) : null,
        ),
        h('a', { class: 'btn', href: `/cases/${encodeURIComponent(item.case_id)}`, 'data-case-link': item.case_id }, t('cases.open_case')),
        openInspections(item).map((i) =>
          h('a', { class: 'btn', href: `/inspect/${encodeURIComponent(i.inspection_id)}` }, t('cases.resume')),
        ),
        offer ? start : null,
        offer ? schedule : null,
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

// The form's text fields: each input with data-limit gets a live count against the API's limit
// and a message under it; nothing is cut (no maxlength) and nothing invalid is sent.
const TEXT_FIELDS = [...document.querySelectorAll('#create-form input[data-limit]')];
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;

// What the server keeps: NFC, trimmed, counted in characters (code points), as docs/api.md says.
function kept(input) {
  return input.value.normalize('NFC').trim();
}

function fieldMessage(input) {
  const value = kept(input);
  const field = t(input.dataset.label);
  const limit = Number(input.dataset.limit);
  const count = [...value].length;
  if (input.required && !value) return t('cases.field_required', { field });
  if (count > limit) return t('cases.field_too_long', { field, limit, count });
  if ('checkInvisible' in input.dataset && INVISIBLE.test(value)) return t('cases.field_invisible', { field });
  return '';
}

function parts(input) {
  let count = input.parentElement.querySelector('.field-count');
  let error = input.parentElement.querySelector('.field-error');
  if (!count) {
    count = h('span', { class: 'field-count', id: `${input.id}-count`, 'aria-live': 'polite' });
    error = h('span', { class: 'field-error', id: `${input.id}-error`, role: 'alert', hidden: true });
    input.parentElement.querySelector('span').after(count);
    input.after(error);
    input.setAttribute('aria-describedby', `${count.id} ${error.id}`);
  }
  return { count, error };
}

function showField(input, message) {
  const { error } = parts(input);
  error.textContent = message;
  error.hidden = !message;
  if (message) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

// The count always; a message at once when too long, else once the user leaves the field or submits.
function updateField(input, { report = false } = {}) {
  const { count } = parts(input);
  const limit = Number(input.dataset.limit);
  const length = [...kept(input)].length;
  count.textContent = t('cases.field_count', { count: length, limit });
  count.classList.toggle('over', length > limit);
  const message = fieldMessage(input);
  const shown = input.getAttribute('aria-invalid') === 'true';
  if (report || shown || length > limit) showField(input, message);
  return message;
}

for (const input of TEXT_FIELDS) {
  updateField(input);
  input.addEventListener('input', () => updateField(input));
  input.addEventListener('blur', () => {
    if (input.value) updateField(input, { report: true });
  });
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
  return { site_lat: lat, site_lon: lon, site_system: $('case-site-system').value };
}

// Who inspects the new case: each assignable inspector as a box; an inspector creating a case is
// always one of its inspectors (the server adds them), so their own box is ticked and fixed.
let inspectorNames = [];

async function loadInspectors() {
  try {
    inspectorNames = (await api('/api/inspectors')).inspectors;
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
    inspectorNames = [];
  }
  renderInspectorChoices();
}

function renderInspectorChoices() {
  const box = $('inspector-choices');
  const ticked = new Set(chosenInspectors());
  box.replaceChildren(
    ...inspectorNames.map((name) => {
      const self = me?.role === 'inspector' && name === me.username;
      const input = h('input', { type: 'checkbox', name: 'inspectors', value: name });
      input.checked = self || ticked.has(name);
      input.disabled = self;
      input.addEventListener('change', () => inspectorsMessage());
      return h('label', { class: 'check' }, input, self ? t('cases.inspector_self', { name }) : name);
    }),
  );
  inspectorsMessage();
}

function chosenInspectors() {
  return [...document.querySelectorAll('#inspector-choices input[name="inspectors"]')].filter((el) => el.checked).map((el) => el.value);
}

// None chosen is refused; one is allowed (a colleague can be assigned later) but said.
function inspectorsMessage({ report = false } = {}) {
  const count = chosenInspectors().length;
  const box = $('inspectors-error');
  const message = count === 0 ? t('cases.inspectors_none') : count === 1 ? t('cases.inspectors_one', { n: count }) : '';
  box.textContent = message;
  box.hidden = !message || (count === 0 && !report);
  box.classList.toggle('warn', count === 1);
  return count === 0 ? message : '';
}

// A refusal the page could not foresee (a duplicate number, a rule of the server's) goes under
// the field the server names, and above the button.
function showRefusal(err, body, errorBox) {
  const input = TEXT_FIELDS.find((el) => el.name === err.field || (err.field === 'case_id' && el.name === 'case_number'));
  const message = err.status === 409 ? t('cases.exists', { id: body.case_number }) : err.describe();
  if (input) {
    showField(input, message);
    input.focus();
  } else if (err.field === 'inspectors') {
    $('inspectors-error').textContent = message;
    $('inspectors-error').hidden = false;
  }
  errorBox.textContent = message;
  errorBox.hidden = false;
}

$('create-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const errorBox = $('create-error');
  const okBox = $('create-ok');
  errorBox.hidden = true;
  okBox.hidden = true;
  const messages = TEXT_FIELDS.map((input) => [input, updateField(input, { report: true })]).filter(([, message]) => message);
  const staff = inspectorsMessage({ report: true });
  if (staff) messages.push([document.querySelector('#inspector-choices input:not(:disabled)') ?? $('create-submit'), staff]);
  if (messages.length) {
    errorBox.textContent = t('cases.fix_fields', { messages: messages.map(([, message]) => message).join('；') });
    errorBox.hidden = false;
    messages[0][0].focus();
    return;
  }
  const body = {};
  for (const input of TEXT_FIELDS) {
    const value = kept(input);
    if (value || input.required) body[input.name] = value;
  }
  if ($('case-type').value) body.case_type = $('case-type').value;
  body.inspectors = chosenInspectors();
  const site = siteCoordinates(errorBox);
  if (site === null) return;
  Object.assign(body, site);
  const submit = $('create-submit');
  submit.disabled = true;
  try {
    const created = await api('/api/cases', { method: 'POST', body });
    const number = caseNumber(created);
    okBox.textContent = created.case_id && created.case_id !== number
      ? t('cases.created_as', { number, id: created.case_id })
      : t('cases.created', { id: number });
    okBox.hidden = false;
    event.target.reset();
    renderInspectorChoices();
    for (const input of TEXT_FIELDS) {
      showField(input, '');
      updateField(input);
    }
    await loadCases();
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
    showRefusal(err, body, errorBox);
  } finally {
    submit.disabled = false;
  }
});

$('logout').addEventListener('click', signOut);

onLangChange(() => {
  renderCases();
  renderInspectorChoices();
  for (const input of TEXT_FIELDS) updateField(input);
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
    if (me.role === 'inspector' || me.role === 'admin') {
      loadCaseTypes();
      loadInspectors();
    }
  }
  await loadCases();
}

init();
