// The inspector's on-site checks: the applicant's latest position (accuracy, age, distance to the
// site, trail count) and the liveness challenges (send a code or an instruction, judge the answer).

import { t } from './i18n.js';
import { $, formatTime, h } from './ui.js';

const FAR_M = 200; // beyond this the distance is flagged for the inspector's attention

export class SiteChecks {
  // send(type, fields) -> bool over the signalling socket; applicantOnline() -> bool.
  constructor({ send, applicantOnline }) {
    this.send = send;
    this.applicantOnline = applicantOnline;
    this.location = null; // the latest `location` message
    this.denied = null; // the latest `location_denied` message
    this.receivedAt = 0; // performance.now() when the latest fix arrived
    this.challenges = new Map(); // challenge_id -> latest challenge_state
    this.enabled = true;
    this.ageTimer = setInterval(() => this.#renderAge(), 1000);
    $('btn-challenge-code').addEventListener('click', () => this.#issue({ kind: 'code' }));
    $('challenge-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const text = $('challenge-text').value.trim();
      if (text && this.#issue({ kind: 'instruction', text: text.slice(0, 200) })) $('challenge-text').value = '';
    });
  }

  handle(msg) {
    if (msg.type === 'location') {
      this.location = msg;
      this.denied = null;
      this.receivedAt = performance.now();
      this.renderLocation();
      return true;
    }
    if (msg.type === 'location_denied') {
      this.denied = msg;
      this.renderLocation();
      return true;
    }
    if (msg.type === 'challenge_state') {
      this.challenges.set(msg.challenge_id, msg);
      this.renderChallenges();
      return true;
    }
    if (msg.type === 'error' && ['challenge', 'challenge_judge'].includes(msg.ref)) {
      this.#status(msg.code === 'unavailable' ? t('site.no_applicant') : `${msg.code}: ${msg.reason}`, true);
      return true;
    }
    return false;
  }

  disable() {
    this.enabled = false;
    for (const id of ['btn-challenge-code', 'challenge-text', 'btn-challenge-instruction']) $(id).disabled = true;
    this.renderChallenges();
  }

  render() {
    this.renderLocation();
    this.renderChallenges();
  }

  // ------------------------------------------------------------ location

  renderLocation() {
    const box = $('location-box');
    const fix = this.location;
    box.dataset.state = fix ? 'fix' : this.denied ? 'denied' : 'none';
    $('location-denied').hidden = !this.denied;
    if (this.denied) $('location-denied').textContent = t('site.denied', { reason: this.denied.reason });
    $('location-none').hidden = Boolean(fix) || Boolean(this.denied);
    $('location-facts').hidden = !fix;
    if (!fix) return;
    $('loc-coords').textContent = `${fix.lat.toFixed(6)}, ${fix.lon.toFixed(6)}`;
    $('loc-accuracy').textContent = `±${Math.round(fix.accuracy)} m`;
    const distance = $('loc-distance');
    if (fix.distance_m === null || fix.distance_m === undefined) {
      distance.textContent = t('site.distance_unknown');
      distance.dataset.far = 'false';
    } else {
      const far = fix.distance_m > FAR_M + fix.accuracy;
      distance.textContent = `${formatDistance(fix.distance_m)}${far ? ` · ${t('site.far', { metres: FAR_M })}` : ''}`;
      distance.dataset.far = String(far);
    }
    distance.dataset.metres = fix.distance_m ?? '';
    $('loc-trail').textContent = String(fix.trail_count);
    this.#renderAge();
  }

  #renderAge() {
    const fix = this.location;
    if (!fix) return;
    // The device's fix time, shown as the age since then; the server checked it is within 10 min.
    const fixAt = Date.parse(fix.at);
    const seconds = Number.isNaN(fixAt) ? 0 : Math.max(0, Math.round((Date.now() - fixAt) / 1000));
    $('loc-age').textContent = `${formatTime(fix.at)} · ${t('site.age_value', { seconds })}`;
    $('loc-age').dataset.stale = String(seconds > 30);
  }

  // ------------------------------------------------------------ challenges

  #issue(fields) {
    if (!this.enabled) return false;
    if (!this.applicantOnline()) {
      this.#status(t('site.no_applicant'), true);
      return false;
    }
    const sent = this.send('challenge', fields);
    if (sent) this.#status('', false);
    return sent;
  }

  #status(text, isError) {
    const el = $('challenge-status');
    el.textContent = text;
    el.hidden = !text;
    el.classList.toggle('error', isError);
  }

  renderChallenges() {
    const list = $('challenge-list');
    list.replaceChildren();
    for (const c of [...this.challenges.values()].reverse()) {
      const judged = c.judgement === 'passed' || c.judgement === 'failed';
      const note = h('input', { class: 'grow', maxlength: '500', placeholder: t('site.note_placeholder'), 'data-role': 'note' });
      const judge = (judgement) => {
        if (this.send('challenge_judge', { challenge_id: c.challenge_id, judgement, note: note.value.trim() })) {
          for (const button of item.querySelectorAll('button')) button.disabled = true;
        }
      };
      const stateText =
        c.state === 'shown'
          ? t('site.state.shown', { seconds: ((c.response_ms ?? 0) / 1000).toFixed(1) })
          : t(`site.state.${c.state}`);
      const item = h(
        'li',
        { 'data-challenge-id': c.challenge_id, 'data-state': c.state, 'data-kind': c.kind },
        h(
          'div',
          { class: 'row' },
          h('span', { class: 'badge' }, t(`site.kind.${c.kind}`)),
          h('strong', { class: c.kind === 'code' ? 'mono challenge-code' : '' }, c.prompt),
          h('span', { class: 'grow' }),
          h('span', { class: `small challenge-state ${c.state}` }, stateText),
        ),
        h('div', { class: 'muted small' }, [
          formatTime(c.issued_at),
          c.response_ms !== null && c.response_ms !== undefined && judged
            ? ` · ${t('site.state.shown', { seconds: (c.response_ms / 1000).toFixed(1) })}`
            : '',
          c.note ? ` · ${c.note}` : '',
        ]),
        judged || !this.enabled
          ? null
          : h(
              'div',
              { class: 'row' },
              note,
              h('button', { class: 'btn', type: 'button', 'data-judge': 'passed', onclick: () => judge('passed') }, t('site.pass')),
              h('button', { class: 'btn', type: 'button', 'data-judge': 'failed', onclick: () => judge('failed') }, t('site.fail')),
            ),
      );
      list.append(item);
    }
  }
}

function formatDistance(metres) {
  return metres >= 1000 ? `${(metres / 1000).toFixed(2)} km` : `${Math.round(metres)} m`;
}
