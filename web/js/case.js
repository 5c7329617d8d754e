// /cases/{case_id}: one case for an auditor, an admin or its inspector: facts, inspections
// (participants, times, duration, outcome, integrity), "verify now", replay links, the export
// download and the case's audit trail, newest last, including replays, checks and exports.

import { api, redirectIfSignedOut } from './api.js';
import { addStrings, onLangChange, setupLangToggle, t } from './i18n.js';
import './strings-audit.js';
import { $, caseNumber, formatTime, h } from './ui.js';

// Event names and one-line descriptions are the replay view's (evidence-core.js).
const E = globalThis.TakanEvidence;
addStrings(E.STRINGS);

setupLangToggle();

const caseId = decodeURIComponent(location.pathname.split('/')[2] ?? '');
const AUDIT_PAGE = 200;
let data = null;
let integrity = null;
let integrityError = null;
let events = [];
let eventsTotal = 0;

function fail(err) {
  if (redirectIfSignedOut(err)) return;
  $('case-error').textContent = err.status === 403 || err.status === 404 ? t('ev.not_found') : t('case.load_failed', { reason: err.reason || err.code });
  $('case-error').hidden = false;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '–';
  const s = Math.round(seconds);
  const hours = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return hours ? `${hours}:${mm}:${ss}` : `${mm}:${ss}`;
}

// The site in WGS-84 (what distances are measured from) and, if copied from a Chinese map, as entered.
function siteRows(c) {
  if (c.site_lat === null || c.site_lat === undefined || c.site_lon === null || c.site_lon === undefined) return [];
  const site = `${c.site_lat}, ${c.site_lon}`;
  if (!c.site_system || c.site_system === 'wgs84') return [['case.site', site]];
  return [
    ['case.site', `${site} (WGS-84)`],
    ['case.site_entered', `${c.site_input_lat}, ${c.site_input_lon} (${t(`site_system.${c.site_system}`)})`],
  ];
}

function renderFacts() {
  const c = data;
  $('case-id').textContent = caseNumber(c);
  $('case-id').classList.toggle('mono', caseNumber(c) === c.case_id);
  const archive = $('case-archive-id');
  archive.hidden = caseNumber(c) === c.case_id;
  archive.textContent = t('case.archive_id', { id: c.case_id });
  archive.title = t('case.archive_id_hint');
  $('case-title').textContent = c.title ?? '';
  const rows = [
    ['case.address', c.address],
    ['case.applicant', [c.applicant_name, c.applicant_phone].filter(Boolean).join(' · ')],
    ['case.type', c.case_type],
    ...siteRows(c),
    ['case.created', `${formatTime(c.created_at, true)}${c.created_by ? ` · ${c.created_by}` : ''}`],
  ];
  $('case-facts').replaceChildren(...rows.filter(([, v]) => v).flatMap(([k, v]) => [h('dt', {}, t(k)), h('dd', {}, v)]));
}

// The case's inspectors; its inspectors and admins assign more or take one off (never the last).
let me = null;
let assignable = [];

function mayAssign() {
  return me?.role === 'inspector' || me?.role === 'admin';
}

function renderStaff() {
  const names = data.inspectors ?? [];
  const list = $('staff-list');
  list.replaceChildren(
    ...names.map((name) => {
      const tag = h('span', { class: 'tag', 'data-inspector': name }, h('span', { class: 'name' }, name));
      if (mayAssign() && names.length > 1) {
        const remove = h('button', { class: 'btn-link', type: 'button', 'aria-label': t('case.unassign', { name }), title: t('case.unassign', { name }) }, '×');
        remove.addEventListener('click', () => changeStaff('DELETE', name));
        tag.append(' ', remove);
      }
      return tag;
    }),
  );
  if (names.length === 1) list.append(h('span', { class: 'field-error warn' }, t('case.inspectors_one')));
  $('staff-hint').hidden = !mayAssign();
  const form = $('staff-form');
  form.hidden = !mayAssign();
  const free = assignable.filter((name) => !names.includes(name));
  const select = $('staff-add');
  select.replaceChildren(...(free.length ? free.map((name) => h('option', { value: name }, name)) : [h('option', { value: '' }, t('case.assign_none'))]));
  select.disabled = !free.length;
  $('staff-submit').disabled = !free.length;
}

async function changeStaff(method, name) {
  const box = $('staff-error');
  box.hidden = true;
  const path = `/api/cases/${encodeURIComponent(caseId)}/inspectors`;
  try {
    if (method === 'POST') await api(path, { method, body: { inspector: name } });
    else await api(`${path}/${encodeURIComponent(name)}`, { method });
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
    box.textContent = err.describe();
    box.hidden = false;
    return;
  }
  try {
    data = await api(`/api/cases/${encodeURIComponent(caseId)}`);
  } catch (err) {
    if (err.status === 403) {
      box.textContent = t('case.no_longer_assigned');
      box.hidden = false;
      data = { ...data, inspectors: data.inspectors.filter((n) => n !== name) };
      me = { ...me, role: 'none' };
    } else {
      fail(err);
    }
  }
  renderAll();
  loadEvents(true).catch(() => {});
}

$('staff-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('staff-add').value;
  if (name) changeStaff('POST', name);
});

function participants(list) {
  return h(
    'ul',
    { class: 'small', style: 'margin:0;padding-left:1rem' },
    (list ?? []).map((p) =>
      h(
        'li',
        { 'data-role': p.role },
        `${p.display_name || p.participant_id} · ${t(`role.${p.role}`)} `,
        h('span', { class: 'muted' }, [p.joined_at ? t('case.joined_at', { time: formatTime(p.joined_at) }) : '', p.left_at ? t('case.left_at', { time: formatTime(p.left_at) }) : ''].filter(Boolean).join(', ')),
      ),
    ),
  );
}

function integrityCell(inspection) {
  if (!integrity) return h('td', { class: 'ev-state', 'data-state': 'pending' }, integrityError ? '?' : t('case.verifying'));
  const state = integrity.inspections?.[inspection.inspection_id] ?? (inspection.status === 'active' ? 'pending' : integrity.state);
  const text = state === 'verified' ? t('case.verified') : state === 'broken' ? t('case.broken') : state === 'disagrees' ? t('case.disagrees_short') : '–';
  const where = state === 'broken' && integrity.where ? h('div', { class: 'small mono' }, integrity.where) : null;
  return h('td', { class: 'ev-state', 'data-state': state }, text, where);
}

function renderInspections() {
  const list = data.inspections ?? [];
  $('no-inspections').hidden = list.length > 0;
  $('inspections-body').replaceChildren(
    ...list.map((i) => {
      const times = [
        t('case.started', { time: formatTime(i.created_at, true) }),
        i.consented_at ? t('case.consented', { time: formatTime(i.consented_at) }) : null,
        i.ended_at ? t('case.ended', { time: formatTime(i.ended_at) }) : null,
        i.concluded_at ? t('case.concluded', { time: formatTime(i.concluded_at) }) : null,
      ].filter(Boolean);
      const replay =
        i.status === 'active'
          ? h('span', { class: 'badge live' }, t('case.status.active'))
          : h(
              'a',
              {
                class: 'btn primary replay-link',
                href: `/replay/${encodeURIComponent(caseId)}/${i.inspection_id}`,
                onclick: () => sessionStorage.setItem('takan.replayClickedAt', String(Date.now())),
              },
              t('case.replay'),
            );
      return h(
        'tr',
        { 'data-inspection-id': i.inspection_id },
        h('td', {}, h('span', { class: 'mono small', title: i.inspection_id }, i.inspection_id.slice(0, 8)), h('div', { class: 'small muted' }, i.created_by ?? '')),
        h('td', {}, participants(i.participants)),
        h('td', { class: 'small' }, times.map((line) => h('div', {}, line))),
        h('td', { class: 'mono' }, duration(i.duration_s)),
        h('td', { 'data-outcome': i.outcome ?? '' }, i.outcome ? t(`audit.outcome.${i.outcome}`) : '–'),
        integrityCell(i),
        h('td', {}, replay),
      );
    }),
  );
}

function renderIntegrity() {
  const box = $('integrity');
  const where = $('integrity-where');
  const detail = $('integrity-detail');
  const differences = $('integrity-disagreements');
  where.hidden = true;
  differences.hidden = true;
  if (integrityError) {
    box.dataset.state = 'error';
    box.textContent = t('case.integrity_failed', { reason: integrityError });
    detail.textContent = '';
    return;
  }
  if (!integrity) {
    box.dataset.state = 'pending';
    box.textContent = t('case.verifying');
    return;
  }
  box.dataset.state = integrity.state;
  box.textContent = { verified: t('case.verified'), disagrees: t('case.disagrees') }[integrity.state] ?? t('case.broken');
  if (integrity.disagreements?.length) {
    // The database is an index of the chain: every row that says otherwise is named.
    $('disagreement-list').replaceChildren(...integrity.disagreements.map((d) => h('li', { 'data-seq': d.seq ?? '' }, d.text)));
    differences.hidden = false;
  }
  if (integrity.state === 'broken') {
    where.textContent = t('case.broken_where', { where: integrity.where ?? '?', reason: integrity.reason ?? '' });
    where.hidden = false;
  }
  detail.textContent = `${t('case.checked_at', { time: formatTime(integrity.checked_at, true), segments: integrity.segments, entries: integrity.chain_entries })} · ${t('case.key', { fp: integrity.key_fingerprint ?? '–' })}`;
}

function renderEvents() {
  $('audit-events').replaceChildren(
    ...events.map((e) =>
      h(
        'li',
        { 'data-kind': e.kind, 'data-seq': e.seq },
        h('span', { class: 'mono muted' }, `#${e.seq} `),
        h('span', { class: 'mono' }, formatTime(e.at, true)),
        ' ',
        h('strong', {}, t(`event.${e.kind}`) === `event.${e.kind}` ? e.kind : t(`event.${e.kind}`)),
        ' ',
        h('span', { class: 'muted' }, E.describeEvent(e.kind, e.body ?? {})),
      ),
    ),
  );
  $('audit-more').hidden = events.length >= eventsTotal;
}

async function loadEvents(reset = false) {
  if (reset) events = [];
  const page = await api(`/api/cases/${encodeURIComponent(caseId)}/audit?offset=${events.length}&limit=${AUDIT_PAGE}`);
  events.push(...page.entries);
  eventsTotal = page.total;
  renderEvents();
}

async function verifyNow() {
  const button = $('verify-now');
  button.disabled = true;
  integrity = null;
  integrityError = null;
  renderIntegrity();
  renderInspections();
  try {
    integrity = await api(`/api/cases/${encodeURIComponent(caseId)}/integrity`);
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
    integrityError = err.reason || err.code;
  } finally {
    button.disabled = false;
  }
  renderIntegrity();
  renderInspections();
  loadEvents(true).catch(fail); // the check itself is now in the chain
}

function renderAll() {
  if (!data) return;
  renderFacts();
  renderStaff();
  renderInspections();
  renderIntegrity();
  renderEvents();
}

$('verify-now').addEventListener('click', verifyNow);
onLangChange(renderAll);

async function init() {
  $('export').href = `/api/cases/${encodeURIComponent(caseId)}/export`;
  try {
    me = await api('/api/me');
    $('whoami').textContent = t('ev.signed_in_as', { name: me.username, role: t(`ev.role.${me.role}`) });
    if (me.role === 'inspector') $('back').href = '/cases';
    data = await api(`/api/cases/${encodeURIComponent(caseId)}`);
    if (mayAssign()) assignable = (await api('/api/inspectors')).inspectors;
  } catch (err) {
    fail(err);
    return;
  }
  document.title = `Takan ${caseNumber(data)}`;
  renderAll();
  await loadEvents(true).catch(fail);
  await verifyNow();
  document.body.dataset.ready = 'true';
}

init();
