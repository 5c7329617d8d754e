// The inspector's evidence panels: snapshots (button or key S) with their annotations, the
// checklist of the case type, and the signed conclusion with the report links.

import { api, redirectIfSignedOut } from './api.js';
import { Annotator } from './annotate.js';
import { concludeWithPasskey, isCancelled, passkeyStatus, passkeysSupported } from './passkey.js';
import { t } from './i18n.js';
import { $, formatTime, h } from './ui.js';

const OUTCOMES = ['pass', 'fail', 'correction'];
const VERDICTS = ['pass', 'fail', 'not_applicable']; // 符合 / 不符合 / 不适用; none chosen: 未核查

// A refused conclusion's problem with one item, in the page's language.
function problemText(problem) {
  return t(`checklist.problem.${problem.problem}`, { have: problem.have, need: problem.need });
}

function reasonOf(err) {
  redirectIfSignedOut(err);
  return err.reason || err.code;
}

// 踏勘人员签名 as the conclusion answer states it: the passkey, or that the archive key alone signed.
function inspectorSignature(result) {
  const signed = result.inspector_signature;
  if (!signed) return result.passkey_mode ? t('conclusion.no_passkey') : '';
  return t('conclusion.by_passkey', { name: signed.username, fingerprint: signed.fingerprint });
}

export class EvidencePanels {
  constructor(inspectionId) {
    this.id = inspectionId;
    this.base = `/api/inspections/${encodeURIComponent(inspectionId)}`;
    this.snapshots = [];
    this.checklist = null;
    this.drafts = new Map(); // item id → a note typed but not saved yet
    this.itemErrors = new Map(); // item id → why its last save was refused
    this.blocked = new Map(); // item id → the server's problem when a conclusion was refused
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
    // The checklist offers the snapshots as photos to pick: it may have come back first.
    if (this.checklist) this.renderChecklist();
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
  // on blur and a verdict right after cannot overtake each other.
  mark(itemId, changes) {
    const row = $('checklist').querySelector(`[data-item-id="${CSS.escape(itemId)}"]`);
    if (row) row.dataset.saving = 'true';
    this.marking = (this.marking ?? Promise.resolve()).then(() => this.#mark(itemId, changes));
    return this.marking;
  }

  async #mark(itemId, changes) {
    const item = (this.checklist?.items ?? []).find((i) => i.item_id === itemId) ?? {};
    const verdict = 'verdict' in changes ? changes.verdict : item.verdict ?? null;
    // An item ticked by an older page (done, no verdict) stays ticked until given a verdict.
    const state = verdict === null && item.done && !('verdict' in changes) ? { done: true } : { verdict };
    const body = {
      ...state,
      note: (changes.note ?? this.drafts.get(itemId) ?? item.note ?? '').slice(0, 500),
      snapshot_ids: changes.snapshot_ids ?? item.photos ?? [],
    };
    this.itemErrors.delete(itemId);
    try {
      this.checklist = await api(`${this.base}/checklist/${encodeURIComponent(itemId)}`, { method: 'POST', body });
      this.drafts.delete(itemId); // saved: the page shows what the server holds
      this.blocked.delete(itemId);
      $('checklist-error').hidden = true;
    } catch (err) {
      // What the inspector typed stays in the field (drafts) with the reason beside it.
      this.itemErrors.set(itemId, err.field ? t(`checklist.field.${err.field}`, { reason: reasonOf(err) }) : t('checklist.save_failed', { reason: reasonOf(err) }));
    }
    this.renderChecklist();
  }

  #photoNumbers() {
    return new Map(this.snapshots.map((s, i) => [s.snapshot_id, i + 1]));
  }

  #verdictPicker(item, locked) {
    const name = `verdict-${item.item_id}`;
    const picker = h('div', { class: 'verdict-picker', role: 'radiogroup', 'aria-label': t('checklist.verdict') });
    for (const verdict of VERDICTS) {
      const input = h('input', { type: 'radio', name, value: verdict, 'data-verdict': verdict, disabled: locked });
      input.checked = item.verdict === verdict;
      input.addEventListener('change', () => this.mark(item.item_id, { verdict }));
      picker.append(h('label', { class: `verdict-option verdict-${verdict}` }, input, h('span', {}, t(`checklist.verdict.${verdict}`))));
    }
    if (item.verdict || item.done) {
      picker.append(
        h('button', { class: 'btn', type: 'button', 'data-role': 'clear', disabled: locked, onclick: () => this.mark(item.item_id, { verdict: null }) }, t('checklist.clear')),
      );
    }
    return picker;
  }

  #photoPicker(item, locked, numbers) {
    const photos = item.photos ?? [];
    const picker = h('div', { class: 'photo-picker', 'data-role': 'photo-picker', role: 'group', 'aria-label': t('checklist.pick_photos') });
    if (!this.snapshots.length) {
      picker.append(h('span', { class: 'muted small' }, t('checklist.no_photos')));
      return picker;
    }
    for (const shot of this.snapshots) {
      const id = shot.snapshot_id;
      const box = h('input', { type: 'checkbox', 'data-pick': id, disabled: locked });
      box.checked = photos.includes(id);
      box.addEventListener('change', () => {
        const current = (this.checklist?.items ?? []).find((i) => i.item_id === item.item_id)?.photos ?? [];
        const next = box.checked ? [...current.filter((p) => p !== id), id] : current.filter((p) => p !== id);
        this.mark(item.item_id, { snapshot_ids: next });
      });
      const label = t('checklist.photo_n', { n: numbers.get(id) });
      picker.append(
        h('label', { class: 'photo-pick', 'data-snapshot-id': id, title: label }, box, h('img', { src: shot.url, alt: label, loading: 'lazy' }), h('span', { class: 'small' }, label)),
      );
    }
    // Photos picked earlier that this page does not list (not loaded): named, never dropped.
    for (const id of photos.filter((p) => !numbers.has(p))) picker.append(h('span', { class: 'muted small mono' }, id.slice(0, 8)));
    return picker;
  }

  renderChecklist() {
    const list = $('checklist');
    const data = this.checklist;
    if (!data) return;
    // Keep what the inspector is typing in a note (and where the caret is) across the re-render.
    const active = document.activeElement;
    const typing =
      active?.dataset?.role === 'note' && list.contains(active)
        ? { itemId: active.closest('[data-item-id]').dataset.itemId, start: active.selectionStart, end: active.selectionEnd }
        : null;
    list.replaceChildren();
    $('checklist-name').textContent = `${data.name ?? data.template_id} · v${data.version}`;
    const locked = Boolean(this.concluded);
    const numbers = this.#photoNumbers();
    const problems = new Map((data.blocks_pass ?? []).map((b) => [b.item_id, b]));
    for (const item of data.items ?? []) {
      const photos = item.photos ?? [];
      const need = item.required_photos ?? 0;
      const note = h('input', { class: 'grow', maxlength: '500', placeholder: t('checklist.note_placeholder'), 'aria-label': t('checklist.note_placeholder'), 'data-role': 'note', disabled: locked });
      note.value = this.drafts.get(item.item_id) ?? item.note ?? '';
      note.addEventListener('input', () => this.drafts.set(item.item_id, note.value));
      note.addEventListener('change', () => this.mark(item.item_id, { note: note.value }));
      const verdict = item.verdict ?? (item.done ? 'done' : 'none');
      const blocked = this.blocked.get(item.item_id);
      const error = this.itemErrors.get(item.item_id) ?? (blocked ? problemText(blocked) : '');
      const problem = problems.get(item.item_id);
      list.append(
        h(
          'li',
          {
            'data-item-id': item.item_id,
            'data-verdict': verdict,
            'data-done': String(Boolean(item.done)),
            'data-required': String(item.required !== false),
            'data-missing': String((data.missing ?? []).includes(item.item_id)),
            'data-problem': problem?.problem ?? '',
            'data-blocked': blocked?.problem ?? '',
            'data-note': item.note ?? '',
            'data-photos': String(photos.length),
            'data-picked': photos.join(','),
            'data-need': String(need),
          },
          h(
            'div',
            { class: 'row checklist-text' },
            h('span', { class: 'grow' }, item.text),
            item.required === false ? h('span', { class: 'badge' }, t('checklist.optional')) : null,
            h('span', { class: `badge verdict-badge verdict-${verdict}`, 'data-role': 'verdict' }, t(`checklist.verdict.${verdict}`)),
          ),
          this.#verdictPicker(item, locked),
          h(
            'div',
            { class: 'row' },
            note,
            need || photos.length
              ? h('span', { class: `badge ${photos.length >= need ? 'live' : ''}`, 'data-role': 'photos' }, t('checklist.photos', { have: photos.length, need }))
              : null,
          ),
          this.#photoPicker(item, locked, numbers),
          h('p', { class: 'field-error small', role: 'alert', 'data-role': 'item-error', hidden: !error }, error),
        ),
      );
    }
    if (typing) {
      const input = list.querySelector(`[data-item-id="${CSS.escape(typing.itemId)}"] [data-role="note"]`);
      input?.focus();
      input?.setSelectionRange(typing.start, typing.end);
    }
    const counts = data.counts ?? {};
    const shown = $('checklist-counts');
    shown.dataset.marked = String(counts.marked ?? 0);
    shown.dataset.fail = String(counts.fail ?? 0);
    shown.textContent = t('checklist.counts', { marked: counts.marked ?? 0, items: counts.items ?? 0, pass: counts.pass ?? 0, fail: counts.fail ?? 0, na: counts.not_applicable ?? 0 });
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
      this.refusal = null;
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

  // The server's refusal of a conclusion, item by item, in the page's current language.
  #showRefusal() {
    if (!this.refusal) return;
    const { outcome, problems } = this.refusal;
    const items = problems.map((p) => t('conclusion.blocked_item', { text: p.text, problem: problemText(p) })).join(t('conclusion.blocked_sep'));
    this.#conclusionError(t(outcome === 'pass' ? 'conclusion.blocked_pass' : 'conclusion.blocked_reason', { items }));
  }

  #conclusionError(text) {
    $('conclusion-error').textContent = text;
    $('conclusion-error').hidden = !text;
  }

  // Whether this conclusion is to be signed with the inspector's passkey (they have one, the
  // deployment has passkeys, the browser can), or why it cannot be signed at all (required).
  async #passkeyPlan() {
    let status = null;
    try {
      status = await passkeyStatus();
    } catch {
      return { use: false, blocked: null };
    }
    const use = status.available && status.passkeys.length > 0 && passkeysSupported();
    if (!use && status.mode === 'required') {
      return { use: false, blocked: status.available ? t('conclusion.passkey_needed') : t('conclusion.passkey_unavailable', { reason: t(`passkeys.unavailable.${status.unavailable}`) }) };
    }
    return { use, blocked: null };
  }

  async #sign() {
    const outcome = new FormData($('conclusion-form')).get('outcome');
    const reason = $('conclusion-reason').value.trim();
    $('btn-conclusion-yes').disabled = true;
    $('btn-conclusion-yes').textContent = t('conclusion.signing');
    try {
      const plan = await this.#passkeyPlan();
      if (plan.blocked) {
        this.#conclusionError(plan.blocked);
        $('conclusion-confirm').hidden = true;
        $('btn-conclude').hidden = false;
        return;
      }
      if (plan.use) $('btn-conclusion-yes').textContent = t('conclusion.passkey_signing');
      const body = { outcome, reason };
      const signed = plan.use ? await concludeWithPasskey(this.base, body) : await api(`${this.base}/conclusion`, { method: 'POST', body });
      this.#showConclusion({ ...signed, outcome: signed.outcome ?? outcome, reason: signed.reason ?? reason });
    } catch (err) {
      if (isCancelled(err)) {
        this.#conclusionError(t('conclusion.passkey_cancelled'));
        $('conclusion-confirm').hidden = true;
        $('btn-conclude').hidden = false;
        return;
      }
      const problems = err.code === 'checklist_blocks_conclusion' ? err.body?.problems ?? [] : [];
      if (problems.length) {
        // The server names the items; the page says so in its language, at each item too.
        this.blocked = new Map(problems.map((p) => [p.item_id, p]));
        this.refusal = { outcome, problems };
        this.#showRefusal();
        this.renderChecklist();
      } else {
        this.#conclusionError(t('conclusion.failed', { reason: reasonOf(err) }));
      }
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
      ['conclusion.inspector_signature', inspectorSignature(result), 'wrap'],
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
    this.#showRefusal();
    if (this.concluded) this.#showConclusion(this.concluded);
  }
}
