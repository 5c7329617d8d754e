// /audit: case search for auditors and admins (inspectors see their own cases only, the server
// decides). The query lives in the URL, so a reload or a shared link shows the same page.

import { api, redirectIfSignedOut, signOut } from './api.js';
import { onLangChange, setupLangToggle, t } from './i18n.js';
import './strings-audit.js';
import { $, caseLabel, formatTime, h } from './ui.js';

setupLangToggle();

const PAGE = 25;
const FIELDS = { case_id: 'q-case-id', applicant: 'q-applicant', inspector: 'q-inspector', outcome: 'q-outcome', from: 'q-from', to: 'q-to' };
let query = readQuery();
let last = null;

function readQuery() {
  const params = new URLSearchParams(location.search);
  const q = { sort: params.get('sort') || 'created_at', order: params.get('order') === 'asc' ? 'asc' : 'desc' };
  q.offset = Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0);
  for (const name of Object.keys(FIELDS)) q[name] = params.get(name) || '';
  return q;
}

function toParams(q) {
  const params = new URLSearchParams();
  for (const name of Object.keys(FIELDS)) if (q[name]) params.set(name, q[name]);
  params.set('sort', q.sort);
  params.set('order', q.order);
  params.set('offset', String(q.offset));
  params.set('limit', String(PAGE));
  return params;
}

function fillForm() {
  for (const [name, id] of Object.entries(FIELDS)) $(id).value = query[name];
}

function outcomeText(outcome) {
  return t(`audit.outcome.${outcome}`);
}

function render() {
  const body = $('results-body');
  body.replaceChildren();
  for (const th of document.querySelectorAll('#results th[data-sort]')) {
    th.setAttribute('aria-sort', th.dataset.sort === query.sort ? (query.order === 'asc' ? 'ascending' : 'descending') : 'none');
  }
  if (!last) return;
  const count = last.cases.length;
  $('search-total').textContent = last.total
    ? t('audit.total', { total: last.total, from: last.offset + 1, to: last.offset + count })
    : t('audit.none');
  for (const item of last.cases) {
    const link = `/cases/${encodeURIComponent(item.case_id)}`;
    body.append(
      h(
        'tr',
        { 'data-case-id': item.case_id },
        h('td', {}, h('a', { href: link }, caseLabel(item))),
        h('td', {}, item.title ?? ''),
        h('td', {}, item.applicant_name ?? ''),
        h('td', {}, item.created_by ?? ''),
        h('td', {}, formatTime(item.created_at, true)),
        h('td', {}, String(item.inspections ?? 0)),
        h('td', {}, item.last_inspection_at ? formatTime(item.last_inspection_at, true) : '–'),
        h('td', { 'data-outcomes': (item.outcomes ?? []).join(' ') }, (item.outcomes ?? []).map(outcomeText).join('、') || '–'),
      ),
    );
  }
  $('page-prev').disabled = last.offset === 0;
  $('page-next').disabled = last.offset + count >= last.total;
}

async function search() {
  const params = toParams(query);
  history.replaceState(null, '', `/audit?${params}`);
  $('search-error').hidden = true;
  document.body.dataset.loading = 'true';
  try {
    last = await api(`/api/cases?${params}`);
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
    last = null;
    $('search-error').textContent = t('audit.failed', { reason: err.reason || err.code });
    $('search-error').hidden = false;
  } finally {
    delete document.body.dataset.loading;
  }
  render();
}

$('search-form').addEventListener('submit', (event) => {
  event.preventDefault();
  for (const [name, id] of Object.entries(FIELDS)) query[name] = $(id).value.trim();
  query.offset = 0;
  search();
});

$('search-reset').addEventListener('click', () => {
  query = { ...readQuery(), offset: 0, sort: 'created_at', order: 'desc' };
  for (const name of Object.keys(FIELDS)) query[name] = '';
  fillForm();
  search();
});

for (const th of document.querySelectorAll('#results th[data-sort]')) {
  th.querySelector('button').addEventListener('click', () => {
    query.order = query.sort === th.dataset.sort && query.order === 'desc' ? 'asc' : 'desc';
    query.sort = th.dataset.sort;
    query.offset = 0;
    search();
  });
}

$('page-prev').addEventListener('click', () => {
  query.offset = Math.max(0, query.offset - PAGE);
  search();
});
$('page-next').addEventListener('click', () => {
  query.offset += PAGE;
  search();
});

$('logout').addEventListener('click', signOut);

onLangChange(render);

// Cases whose chain this server found tampered with (GET /api/admin/flagged-cases).
async function loadFlagged() {
  let body;
  try {
    body = await api('/api/admin/flagged-cases');
  } catch {
    return; // not an admin or auditor, or unreachable: the search still works
  }
  const items = Array.isArray(body.cases) ? body.cases : [];
  $('flagged').hidden = items.length === 0;
  $('flagged-list').replaceChildren(
    ...items.map((item) =>
      h(
        'li',
        { 'data-case-id': item.case_id },
        h('a', { class: 'mono', href: `/cases/${encodeURIComponent(item.case_id)}` }, item.case_id),
        h('div', { class: 'error small' }, item.flag),
      ),
    ),
  );
}

async function init() {
  try {
    const me = await api('/api/me');
    $('whoami').textContent = t('ev.signed_in_as', { name: me.username, role: t(`ev.role.${me.role}`) });
    $('my-cases').hidden = me.role !== 'inspector';
    if (me.role === 'admin' || me.role === 'auditor') loadFlagged();
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
  }
  fillForm();
  await search();
}

init();
