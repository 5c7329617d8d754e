// /templates: the checklist templates. Admins edit one (name, case type, items) and save it with
// PUT /api/checklist-templates/{id}; everyone else sees a read-only list.

import { ApiError, api, redirectIfSignedOut, signOut } from './api.js';
import { onLangChange, setupLangToggle, t } from './i18n.js';
import './strings-inspection.js';
import './strings-templates.js';
import { $, h } from './ui.js';

setupLangToggle();

let me = null;
let templates = [];
// What the editor shows: {template_id, isNew, version, name, case_type, items: [{item_id, text, required_photos, required}]}.
let editing = null;

const isAdmin = () => me?.role === 'admin';

function fail(err, box) {
  if (redirectIfSignedOut(err)) return;
  if (err.status === 403) box.textContent = t('tpl.forbidden');
  else box.textContent = err instanceof ApiError ? err.describe() : String(err);
  box.hidden = false;
}

function renderList() {
  const list = $('template-list');
  list.replaceChildren();
  if (templates.length === 0) list.append(h('li', { class: 'muted' }, t('tpl.empty')));
  for (const tpl of templates) {
    const items = Array.isArray(tpl.items) ? tpl.items : [];
    const open = h('button', { class: 'btn', type: 'button', 'data-open': tpl.template_id }, t(isAdmin() ? 'tpl.open_edit' : 'tpl.open_view'));
    open.addEventListener('click', () => openTemplate(tpl));
    list.append(
      h(
        'li',
        { 'data-template-id': tpl.template_id, 'aria-current': editing && !editing.isNew && editing.template_id === tpl.template_id ? 'true' : null },
        h(
          'div',
          { class: 'case-main' },
          h('div', { class: 'case-title' }, h('span', { class: 'mono' }, tpl.template_id), ' ', tpl.name ?? ''),
          h(
            'div',
            { class: 'muted small', 'data-summary': tpl.template_id },
            t('tpl.summary', { case_type: tpl.case_type || '—', version: tpl.version, count: items.length }),
          ),
        ),
        open,
      ),
    );
  }
}

function openTemplate(tpl) {
  editing = {
    template_id: tpl.template_id,
    isNew: false,
    version: tpl.version,
    name: tpl.name ?? '',
    case_type: tpl.case_type ?? '',
    items: (tpl.items ?? []).map((item) => ({ ...item })),
  };
  renderEditor();
  renderList();
}

function newTemplate() {
  editing = { template_id: '', isNew: true, version: 0, name: '', case_type: '', items: [{ item_id: '', text: '', required_photos: 0, required: true }] };
  renderEditor();
  renderList();
  $('template-id').focus();
}

// The editor's inputs back into `editing`, before re-rendering rows or saving.
function readEditor() {
  if (!editing) return;
  if (editing.isNew) editing.template_id = $('template-id').value.trim();
  editing.name = $('template-name').value;
  editing.case_type = $('template-case-type').value;
  editing.items = [...$('items').querySelectorAll('tr')].map((row) => {
    const photosText = row.querySelector('[data-field="required_photos"]').value.trim();
    const photos = photosText === '' ? 0 : Number(photosText);
    return {
      item_id: row.querySelector('[data-field="item_id"]').value.trim(),
      text: row.querySelector('[data-field="text"]').value,
      required_photos: Number.isFinite(photos) ? photos : photosText,
      required: row.querySelector('[data-field="required"]').checked,
    };
  });
}

function moveItem(index, delta) {
  readEditor();
  const target = index + delta;
  if (target < 0 || target >= editing.items.length) return;
  const [item] = editing.items.splice(index, 1);
  editing.items.splice(target, 0, item);
  renderItems();
}

function removeItem(index) {
  readEditor();
  editing.items.splice(index, 1);
  renderItems();
}

function renderItems() {
  const body = $('items');
  body.replaceChildren();
  const readOnly = !isAdmin();
  editing.items.forEach((item, index) => {
    const last = editing.items.length - 1;
    const actions = readOnly
      ? null
      : [
          h('button', { class: 'btn', type: 'button', 'data-action': 'up', title: t('tpl.up'), 'aria-label': t('tpl.up'), disabled: index === 0, onclick: () => moveItem(index, -1) }, '↑'),
          ' ',
          h('button', { class: 'btn', type: 'button', 'data-action': 'down', title: t('tpl.down'), 'aria-label': t('tpl.down'), disabled: index === last, onclick: () => moveItem(index, 1) }, '↓'),
          ' ',
          h('button', { class: 'btn', type: 'button', 'data-action': 'remove', title: t('tpl.remove'), 'aria-label': t('tpl.remove'), onclick: () => removeItem(index) }, '✕'),
        ];
    const idInput = h('input', { 'data-field': 'item_id', maxlength: 64, autocapitalize: 'none', spellcheck: 'false', 'aria-label': t('tpl.item_id'), disabled: readOnly });
    idInput.value = item.item_id ?? '';
    const textInput = h('input', { 'data-field': 'text', maxlength: 500, 'aria-label': t('tpl.item_text'), disabled: readOnly });
    textInput.value = item.text ?? '';
    const photosInput = h('input', { 'data-field': 'required_photos', type: 'number', min: 0, max: 20, step: 1, inputmode: 'numeric', 'aria-label': t('tpl.item_photos'), disabled: readOnly });
    photosInput.value = String(item.required_photos ?? 0);
    // Unticked: a pass may leave the item unmarked (选查); ticked, the default, it must be marked.
    const requiredInput = h('input', { 'data-field': 'required', type: 'checkbox', 'aria-label': t('tpl.item_required'), disabled: readOnly });
    requiredInput.checked = item.required !== false;
    body.append(
      h(
        'tr',
        { 'data-index': index },
        h('td', { class: 'col-id' }, idInput),
        h('td', {}, textInput),
        h('td', { class: 'col-photos' }, photosInput),
        h('td', { class: 'col-required' }, requiredInput),
        h('td', { class: 'col-actions' }, actions),
      ),
    );
  });
}

function renderEditor() {
  const editor = $('editor');
  if (!editing) {
    editor.hidden = true;
    return;
  }
  editor.hidden = false;
  const readOnly = !isAdmin();
  $('editor-title').textContent = editing.isNew
    ? t('tpl.new_title')
    : t(readOnly ? 'tpl.view_title' : 'tpl.edit_title', { id: editing.template_id, version: editing.version });
  $('template-id-field').hidden = !editing.isNew;
  $('template-id').value = editing.isNew ? editing.template_id : '';
  $('template-name').value = editing.name;
  $('template-case-type').value = editing.case_type;
  $('template-name').disabled = readOnly;
  $('template-case-type').disabled = readOnly;
  $('add-item').hidden = readOnly;
  $('save').hidden = readOnly;
  $('save-error').hidden = true;
  $('save-ok').hidden = true;
  renderItems();
}

async function save() {
  readEditor();
  const errorBox = $('save-error');
  const okBox = $('save-ok');
  errorBox.hidden = true;
  okBox.hidden = true;
  if (!editing.template_id) {
    errorBox.textContent = t('tpl.need_id');
    errorBox.hidden = false;
    return;
  }
  if (editing.items.length === 0) {
    errorBox.textContent = t('tpl.need_item');
    errorBox.hidden = false;
    return;
  }
  // Everything else (ids, lengths, photo counts) is the server's to judge: its reason is shown.
  const body = { case_type: editing.case_type.trim(), name: editing.name.trim(), items: editing.items };
  const button = $('save');
  button.disabled = true;
  button.textContent = t('tpl.saving');
  try {
    const saved = await api(`/api/checklist-templates/${encodeURIComponent(editing.template_id)}`, { method: 'PUT', body });
    const index = templates.findIndex((tpl) => tpl.template_id === saved.template_id);
    if (index >= 0) templates[index] = saved;
    else templates.push(saved);
    openTemplate(saved);
    okBox.textContent = t('tpl.saved', { id: saved.template_id, version: saved.version });
    okBox.hidden = false;
  } catch (err) {
    fail(err, errorBox);
  } finally {
    button.disabled = false;
    button.textContent = t('tpl.save');
  }
}

async function loadTemplates() {
  $('list-error').hidden = true;
  try {
    const data = await api('/api/checklist-templates');
    templates = Array.isArray(data?.templates) ? data.templates : [];
    renderList();
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
    $('list-error').textContent = t('tpl.load_failed', { reason: err.reason || err.code || String(err) });
    $('list-error').hidden = false;
  } finally {
    $('list-loading').hidden = true;
  }
}

$('editor-form').addEventListener('submit', (event) => {
  event.preventDefault();
  if (isAdmin()) save();
});
$('add-item').addEventListener('click', () => {
  readEditor();
  editing.items.push({ item_id: '', text: '', required_photos: 0, required: true });
  renderItems();
  const rows = $('items').querySelectorAll('tr');
  rows[rows.length - 1]?.querySelector('[data-field="item_id"]').focus();
});
$('cancel').addEventListener('click', () => {
  editing = null;
  renderEditor();
  renderList();
});
$('new-template').addEventListener('click', newTemplate);
$('logout').addEventListener('click', signOut);

onLangChange(() => {
  if (me) $('whoami').textContent = t('tpl.signed_in_as', { name: me.username });
  renderList();
  if (editing) {
    readEditor();
    renderEditor();
  }
});

async function init() {
  try {
    me = await api('/api/me');
  } catch (err) {
    if (redirectIfSignedOut(err)) return;
  }
  if (me) $('whoami').textContent = t('tpl.signed_in_as', { name: me.username });
  $('readonly-notice').hidden = isAdmin();
  $('new-template').hidden = !isAdmin();
  await loadTemplates();
}

init();
