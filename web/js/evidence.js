// The inspector's evidence panels: snapshots (button or key S) with their annotations, the
// checklist of the case type, and the signed conclusion with the report links.

import { api, redirectIfSignedOut } from './api.js';
import { Annotator } from './annotate.js';
import { t } from './i18n.js';
import { $, formatTime, h } from './ui.js';

const OUTCOMES = ['pass', 'fail', 'correction'];

function reasonOf(err) {
  redirectIfSignedOut(err);
  return err.reason || err.code;
}

export class EvidencePanels {
  constructor(inspectionId) {
    this.id = inspectionId;
    this.base = `/api/inspections/${encodeURIComponent(inspectionId)}`;
    this.snapshots = [];
    this.checklist = null;
    this.canSnap = true;
    this.concluded = null; // the signed conclusion, once there is one
    this.busy = false;
    this.latencies = []; // click → stored and chained, ms (also exposed for the browser test)
    $('btn-snapshot').addEventListener('click', () => this.snapshot());
    document.addEventListener('keydown', (event) => {
      if (event.key !== 's' && event.key !== 'S') return;
      if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
      if (event.target.closest?.('input, textarea, select, [contenteditable], .modal')) return;
      event.preventDefault();
      this.snapshot();
    });
    this.#wireConclusion();
  }

  async load(inspection) {
    await Promise.all([this.loadSnapshots(), this.loadChecklist()]);
    if (inspection.outcome) {
      this.#showConclusion({
        outcome: inspection.outcome,
        reason: inspection.conclusion_reason,
        at: inspection.concluded_at,
        report_html_url: `${this.base}/report.html`,
        report_pdf_url: `${this.base}/report.pdf`,
      });
    }
  }

  // Live video stopped for good (ended or concluded): no more snapshots.
  stopCapture() {
    this.canSnap = false;
    $('btn-snapshot').disabled = true;
  }

  // ------------------------------------------------------------ snapshots

  async snapshot() {
    if (!this.canSnap || this.busy) return;
    this.busy = true;
    const button = $('btn-snapshot');
    button.disabled = true;
    this.#snapStatus(t('evidence.snapshot_busy'), 'busy');
    const started = performance.now();
    try {
      const shot = await api(`${this.base}/snapshots`, { method: 'POST', body: {} });
      const ms = Math.round(performance.now() - started);
      this.latencies.push(ms);
      document.body.dataset.snapshotLatencies = this.latencies.join(',');
      this.#snapStatus(t('evidence.snapshot_done', { sha: shot.sha256.slice(0, 12), ms }), 'done');
      this.snapshots.push({ annotations: [], ...shot });
      this.renderSnapshots();
      this.renderChecklist();
    } catch (err) {
      // The server says why in English; the page says it in its own language.
      const noVideo = err.status === 409 && /^no video is flowing/.test(err.reason ?? '');
      this.#snapStatus(noVideo ? t('evidence.snapshot_no_video') : t('evidence.snapshot_failed', { reason: reasonOf(err) }), 'failed');
    } finally {
      this.busy = false;
      button.disabled = !this.canSnap;
    }
  }

  #snapStatus(text, state) {
    const el = $('snapshot-status');
    el.textContent = text;
    el.dataset.state = state;
    el.classList.toggle('error', state === 'failed');
  }

  async loadSnapshots() {
    try {
      const data = await api(`${this.base}/snapshots`);
      this.snapshots = Array.isArray(data) ? data : data?.snapshots ?? [];
    } catch (err) {
      this.#snapStatus(t('evidence.snapshot_failed', { reason: reasonOf(err) }), 'failed');
    }
    this.renderSnapshots();
  }

  renderSnapshots() {
    const list = $('snapshot-list');
    list.replaceChildren();
    $('snapshots-empty').hidden = this.snapshots.length > 0;
    for (const shot of this.snapshots) {
      const count = shot.annotations?.length ?? 0;
      list.append(
        h(
          'li',
          { 'data-snapshot-id': shot.snapshot_id, 'data-sha256': shot.sha256, 'data-annotations': count },
          h('a', { href: shot.url, target: '_blank', rel: 'noopener', title: t('evidence.open') }, h('img', { src: shot.url, alt: shot.snapshot_id, loading: 'lazy' })),
          h(
            'div',
            { class: 'snapshot-meta small' },
            h('div', {}, `${formatTime(shot.taken_at)} · ${shot.width}×${shot.height}`),
            h('div', { class: 'mono muted', title: shot.sha256 }, `SHA-256 ${shot.sha256.slice(0, 16)}…`),
            h('div', { class: 'muted' }, count ? t('evidence.annotations', { count }) : ''),
          ),
          h('button', { class: 'btn', type: 'button', 'data-annotate': shot.snapshot_id, onclick: () => this.annotate(shot) }, t('evidence.annotate')),
        ),
      );
    }
  }

  annotate(shot) {
    new Annotator(shot, {
      onSaved: (result) => {
        shot.annotations = [...(shot.annotations ?? []), result];
        this.renderSnapshots();
      },
    }).open();
  }

  // ------------------------------------------------------------ checklist

  async loadChecklist() {
    try {
      this.checklist = await api(`${this.base}/checklist`);
      $('checklist-error').hidden = true;
    } catch (err) {
      $('checklist-error').textContent = t('checklist.failed', { reason: reasonOf(err) });
      $('checklist-error').hidden = false;
    }
    $('checklist-loading').hidden = true;
    this.renderChecklist();
  }

  // Marks go one at a time, each built from the latest saved state of its item, so a note saved
  // on blur and a tick right after cannot overtake each other.
  mark(itemId, changes) {
    const row = $('checklist').querySelector(`[data-item-id="${CSS.escape(itemId)}"]`);
    if (row) row.dataset.saving = 'true';
    this.marking = (this.marking ?? Promise.resolve()).then(() => this.#mark(itemId, changes));
    return this.marking;
  }

  async #mark(itemId, changes) {
    const item = (this.checklist?.items ?? []).find((i) => i.item_id === itemId) ?? {};
    const body = {
      done: changes.done ?? Boolean(item.done),
      note: (changes.note ?? item.note ?? '').slice(0, 500),
      snapshot_ids: changes.snapshot_ids ?? item.photos ?? [],
    };
    try {
      await api(`${this.base}/checklist/${encodeURIComponent(itemId)}`, { method: 'POST', body });
      this.checklist = await api(`${this.base}/checklist`);
      $('checklist-error').hidden = true;
    } catch (err) {
      $('checklist-error').textContent = t('checklist.save_failed', { reason: reasonOf(err) });
      $('checklist-error').hidden = false;
    }
    this.renderChecklist();
  }

  renderChecklist() {
    const list = $('checklist');
    const data = this.checklist;
    if (!data) return;
    // Keep what the inspector is typing in a note across the re-render.
    const active = document.activeElement;
    const typing =
      active?.dataset?.role === 'note' && list.contains(active)
        ? { itemId: active.closest('[data-item-id]').dataset.itemId, value: active.value }
        : null;
    list.replaceChildren();
    $('checklist-name').textContent = `${data.name ?? data.template_id} · v${data.version}`;
    const locked = Boolean(this.concluded);
    for (const item of data.items ?? []) {
      const photos = item.photos ?? [];
      const need = item.required_photos ?? 0;
      const checkbox = h('input', { type: 'checkbox', 'data-role': 'done', disabled: locked });
      checkbox.checked = Boolean(item.done);
      checkbox.addEventListener('change', () => this.mark(item.item_id, { done: checkbox.checked }));
      const note = h('input', { class: 'grow', maxlength: '500', placeholder: t('checklist.note_placeholder'), 'data-role': 'note', disabled: locked });
      note.value = item.note ?? '';
      note.addEventListener('change', () => this.mark(item.item_id, { note: note.value }));
      const spare = this.snapshots.map((s) => s.snapshot_id).filter((id) => !photos.includes(id));
      const attach = h(
        'button',
        { class: 'btn', type: 'button', 'data-role': 'attach', disabled: locked || !spare.length },
        t('checklist.attach'),
      );
      attach.addEventListener('click', () => this.mark(item.item_id, { snapshot_ids: [...photos, spare[spare.length - 1]] }));
      const missing = (data.missing ?? []).includes(item.item_id);
      list.append(
        h(
          'li',
          {
            'data-item-id': item.item_id,
            'data-done': String(Boolean(item.done)),
            'data-missing': String(missing),
            'data-note': item.note ?? '',
            'data-photos': String(photos.length),
            'data-need': String(need),
          },
          h('label', { class: 'row checklist-text' }, checkbox, h('span', { class: 'grow' }, item.text)),
          h(
            'div',
            { class: 'row' },
            note,
            need || photos.length
              ? h('span', { class: `badge ${photos.length >= need ? 'live' : ''}`, 'data-role': 'photos' }, t('checklist.photos', { have: photos.length, need }))
              : null,
            attach,
          ),
        ),
      );
    }
    if (typing) {
      const input = list.querySelector(`[data-item-id="${CSS.escape(typing.itemId)}"] [data-role="note"]`);
      if (input) {
        input.value = typing.value;
        input.focus();
      }
    }
    const missingIds = data.missing ?? [];
    const texts = (data.items ?? []).filter((i) => missingIds.includes(i.item_id)).map((i) => i.text);
    const summary = $('checklist-missing');
    summary.dataset.missing = String(missingIds.length);
    summary.className = missingIds.length ? 'notice small' : 'success small';
    summary.textContent = missingIds.length ? t('checklist.missing', { items: texts.join('、') }) : t('checklist.complete');
  }

  // ------------------------------------------------------------ conclusion

  #wireConclusion() {
    $('conclusion-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const outcome = new FormData($('conclusion-form')).get('outcome');
      const reason = $('conclusion-reason').value.trim();
      const error = !OUTCOMES.includes(outcome) ? 'conclusion.need_outcome' : !reason ? 'conclusion.need_reason' : null;
      this.#conclusionError(error ? t(error) : '');
      if (error) return;
      $('conclusion-confirm-text').textContent = t('conclusion.confirm', { outcome: t(`conclusion.${outcome}`) });
      $('conclusion-confirm').hidden = false;
      $('btn-conclude').hidden = true;
    });
    $('btn-conclusion-cancel').addEventListener('click', () => {
      $('conclusion-confirm').hidden = true;
      $('btn-conclude').hidden = false;
    });
    $('btn-conclusion-yes').addEventListener('click', () => this.#sign());
  }

  #conclusionError(text) {
    $('conclusion-error').textContent = text;
    $('conclusion-error').hidden = !text;
  }

  async #sign() {
    const outcome = new FormData($('conclusion-form')).get('outcome');
    const reason = $('conclusion-reason').value.trim().slice(0, 2000);
    $('btn-conclusion-yes').disabled = true;
    $('btn-conclusion-yes').textContent = t('conclusion.signing');
    try {
      const signed = await api(`${this.base}/conclusion`, { method: 'POST', body: { outcome, reason } });
      this.#showConclusion({ ...signed, outcome: signed.outcome ?? outcome, reason: signed.reason ?? reason });
    } catch (err) {
      this.#conclusionError(t('conclusion.failed', { reason: reasonOf(err) }));
      $('conclusion-confirm').hidden = true;
      $('btn-conclude').hidden = false;
    } finally {
      $('btn-conclusion-yes').disabled = false;
      $('btn-conclusion-yes').textContent = t('conclusion.confirm_yes');
    }
  }

  #showConclusion(result) {
    this.concluded = result;
    this.stopCapture();
    $('conclusion-form').hidden = true;
    const box = $('conclusion-result');
    box.hidden = false;
    box.dataset.outcome = result.outcome;
    $('conclusion-outcome').textContent = t('conclusion.signed', { outcome: t(`conclusion.${result.outcome}`) });
    $('conclusion-reason-text').textContent = result.reason ?? '';
    const facts = $('conclusion-facts');
    facts.replaceChildren();
    for (const [key, value, cls] of [
      ['conclusion.signed_at', result.at ? formatTime(result.at, true) : '', ''],
      ['conclusion.signature', result.signature ?? '', 'mono wrap'],
      ['conclusion.key', result.key_fingerprint ?? '', 'mono wrap'],
    ]) {
      if (value) facts.append(h('dt', {}, t(key)), h('dd', { class: cls, 'data-field': key.split('.')[1] }, value));
    }
    $('report-html').href = result.report_html_url ?? `${this.base}/report.html`;
    $('report-pdf').href = result.report_pdf_url ?? `${this.base}/report.pdf`;
    this.renderChecklist();
  }

  render() {
    this.renderSnapshots();
    this.renderChecklist();
    if (this.concluded) this.#showConclusion(this.concluded);
  }
}
