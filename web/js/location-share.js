// The applicant's position, with consent: one fix at join and one every 10 s, each sent as a
// `location` message with the device's fix time. A refusal is sent once as `location_denied`
// and the inspection goes on without positions.

const INTERVAL_MS = 10_000;
const OPTIONS = { enableHighAccuracy: true, maximumAge: 5_000, timeout: 9_000 };

export class LocationShare {
  // send(type, fields) -> bool (the signalling socket); onState({state, fix, error, sentAt}).
  constructor({ send, onState }) {
    this.send = send;
    this.onState = onState;
    this.timer = null;
    this.state = 'idle'; // idle | waiting | sent | denied | unavailable | unsupported
    this.fix = null;
    this.sentAt = null;
    this.error = null;
    this.deniedSent = false;
  }

  start() {
    if (this.timer !== null || this.state === 'denied') return;
    if (!navigator.geolocation) {
      this.error = 'geolocation unsupported';
      this.#set('unsupported');
      this.#denied(this.error);
      return;
    }
    this.#set('waiting');
    this.#locate();
    this.timer = setInterval(() => this.#locate(), INTERVAL_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  // The socket came back: a refusal not yet delivered goes now, a fix is sent at once.
  rejoined() {
    if (this.state === 'denied' || this.state === 'unsupported') this.#denied(this.error ?? 'denied');
    else if (this.timer !== null) this.#locate();
  }

  #locate() {
    navigator.geolocation.getCurrentPosition(
      (position) => this.#got(position),
      (error) => this.#failed(error),
      OPTIONS,
    );
  }

  #got(position) {
    const { latitude, longitude, accuracy } = position.coords;
    this.fix = {
      lat: latitude,
      lon: longitude,
      accuracy: Math.min(accuracy ?? 0, 100_000),
      at: new Date(position.timestamp || Date.now()).toISOString(),
    };
    if (this.send('location', this.fix)) {
      this.sentAt = new Date();
      this.#set('sent');
    } else {
      this.#set('waiting'); // socket down: the next tick sends a fresh fix
    }
  }

  #failed(error) {
    if (error.code === 1) {
      // PERMISSION_DENIED: it will not change by asking again.
      this.stop();
      this.error = 'permission denied';
      this.#set('denied');
      this.#denied(this.error);
    } else {
      this.error = error.code === 3 ? 'timeout' : 'position unavailable';
      this.#set('unavailable');
    }
  }

  #denied(reason) {
    if (this.deniedSent) return;
    this.deniedSent = this.send('location_denied', { reason });
  }

  #set(state) {
    this.state = state;
    this.onState({ state, fix: this.fix, error: this.error ?? null, sentAt: this.sentAt });
  }
}
