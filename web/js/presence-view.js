// Is the applicant there and is its picture moving, as the inspector must see it: the server's
// `presence` message (who is connected; the applicant's video as the server receives it) and
// this page's own frame count. A banner counts the seconds since the picture stopped and says
// when the applicant is offline; 视频已连接 is said only while frames arrive here.

import { t } from './i18n.js';
import { $ } from './ui.js';

const STALL_MS = 2000; // no new frame here for this long: the picture has stopped
const SAMPLE_MS = 250;

export class PresenceView {
  // video: the <video> element; onChange(changed): re-render what depends on the picture's
  // state (every sample; `changed` when the state itself changed).
  constructor(video, onChange) {
    this.video = video;
    this.onChange = onChange;
    this.participants = [];
    this.media = null; // the server's `media` ({state, since, source, at})
    this.mediaAt = 0; // performance.now() when it arrived
    this.frames = 0;
    this.lastFrameAt = 0; // performance.now() of the latest new frame here; 0 before the first
    this.ended = false;
    this.shown = null; // the picture state last rendered
    this.timer = setInterval(() => this.#sample(), SAMPLE_MS);
  }

  update(msg) {
    this.participants = msg.participants ?? this.participants;
    if (msg.media !== undefined) {
      this.media = msg.media;
      this.mediaAt = performance.now();
    }
    this.shown = null; // who is here may have changed: render the list again
    this.render();
  }

  end() {
    this.ended = true;
    clearInterval(this.timer);
    this.participants = this.participants.map((p) => ({ ...p, connected: false }));
    this.shown = null;
    this.render();
  }

  get applicant() {
    return this.participants.find((p) => p.role === 'applicant') ?? null;
  }

  // Frames arriving at this page now.
  get flowing() {
    return !this.ended && this.lastFrameAt > 0 && performance.now() - this.lastFrameAt < STALL_MS;
  }

  // 'ended', 'absent' (nobody joined yet), 'offline', 'stopped' (the picture stopped, the
  // applicant is there), 'flowing', 'waiting' (joined, no picture yet).
  get picture() {
    if (this.ended) return 'ended';
    const applicant = this.applicant;
    if (!applicant) return 'absent';
    if (!applicant.connected) return 'offline';
    if (this.media?.state === 'interrupted') return 'stopped';
    if (this.flowing) return 'flowing';
    return this.lastFrameAt > 0 ? 'stopped' : 'waiting';
  }

  // Seconds since the picture stopped: the server's count when it says so, else this page's.
  get stoppedSeconds() {
    if (this.media?.state === 'interrupted' && this.media.since && this.media.at) {
      const atServer = (Date.parse(this.media.at) - Date.parse(this.media.since)) / 1000;
      return Math.max(0, Math.floor(atServer + (performance.now() - this.mediaAt) / 1000));
    }
    if (this.lastFrameAt > 0) return Math.floor((performance.now() - this.lastFrameAt) / 1000);
    return null;
  }

  #sample() {
    const quality = this.video.getVideoPlaybackQuality?.();
    const frames = quality?.totalVideoFrames ?? 0;
    if (frames > this.frames || (frames > 0 && frames < this.frames)) this.lastFrameAt = performance.now();
    this.frames = frames;
    this.render();
  }

  render() {
    const picture = this.picture;
    const banner = $('presence-banner');
    const seconds = this.stoppedSeconds;
    let text = '';
    if (picture === 'offline') {
      text = seconds === null ? t('presence.banner_offline') : t('presence.banner_offline_for', { seconds });
    } else if (picture === 'stopped' && seconds !== null) {
      text = t('presence.banner_stopped', { seconds });
    }
    banner.hidden = !text;
    banner.textContent = text;
    banner.dataset.picture = picture;
    if (seconds !== null) banner.dataset.seconds = String(seconds);
    document.body.dataset.picture = picture;
    this.video.closest('.video-wrap')?.classList.toggle('stale', picture === 'offline' || picture === 'stopped');
    const placeholder = $('video-placeholder');
    placeholder.textContent = t(picture === 'absent' ? 'inspect.waiting_applicant' : 'inspect.waiting_video');
    const changed = picture !== this.shown;
    this.shown = picture;
    this.onChange(changed);
  }
}
