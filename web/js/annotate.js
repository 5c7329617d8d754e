// Annotation editor: arrows, boxes and text drawn on a canvas laid over the snapshot. The original
// PNG is shown untouched in an <img> underneath; the shapes (in image pixels) are saved as a
// separate annotation through POST /api/snapshots/{id}/annotations.

import { api } from './api.js';
import { t, translatePage } from './i18n.js';
import { h } from './ui.js';

const TOOLS = ['arrow', 'box', 'text'];
const COLORS = ['#e53935', '#fdd835', '#43a047', '#1e88e5', '#ffffff'];
const MIN_DRAG_PX = 4; // on screen: a shorter drag is a click, not a shape

// Draws `shapes` (image pixels) on `ctx`, scaled by `scale` screen pixels per image pixel.
export function drawShapes(ctx, shapes, scale, { faded = false } = {}) {
  ctx.save();
  ctx.globalAlpha = faded ? 0.55 : 1;
  ctx.lineWidth = 3;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  for (const s of shapes) {
    const [x1, y1, x2, y2] = [s.x1 * scale, s.y1 * scale, s.x2 * scale, s.y2 * scale];
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    if (s.type === 'box') {
      ctx.strokeRect(Math.min(x1, x2), Math.min(y1, y2), Math.abs(x2 - x1), Math.abs(y2 - y1));
    } else if (s.type === 'arrow') {
      ctx.beginPath();
      ctx.moveTo(x1, y1);
      ctx.lineTo(x2, y2);
      ctx.stroke();
      const angle = Math.atan2(y2 - y1, x2 - x1);
      const head = 14;
      ctx.beginPath();
      ctx.moveTo(x2, y2);
      ctx.lineTo(x2 - head * Math.cos(angle - Math.PI / 7), y2 - head * Math.sin(angle - Math.PI / 7));
      ctx.lineTo(x2 - head * Math.cos(angle + Math.PI / 7), y2 - head * Math.sin(angle + Math.PI / 7));
      ctx.closePath();
      ctx.fill();
    } else if (s.type === 'text') {
      const size = Math.max(12, Math.abs(y2 - y1));
      ctx.font = `600 ${size}px system-ui, "Noto Sans CJK SC", sans-serif`;
      ctx.textBaseline = 'top';
      ctx.lineWidth = 4;
      ctx.strokeStyle = 'rgb(0 0 0 / 70%)';
      ctx.strokeText(s.text, x1, y1);
      ctx.fillText(s.text, x1, y1);
    }
  }
  ctx.restore();
}

export class Annotator {
  // snapshot: {snapshot_id, url, width, height, annotations?: [{url}]}; onSaved(result).
  constructor(snapshot, { onSaved = () => {} } = {}) {
    this.snapshot = snapshot;
    this.onSaved = onSaved;
    this.shapes = [];
    this.previous = []; // shapes of earlier annotations, shown faded
    this.tool = 'arrow';
    this.color = COLORS[0];
    this.drag = null;
    this.scale = 1;
    this.#build();
    this.#loadPrevious();
  }

  #build() {
    const toolButtons = TOOLS.map((tool) =>
      h('button', { class: 'btn', type: 'button', 'data-tool': tool, 'data-i18n': `annotate.${tool}`, onclick: () => this.#setTool(tool) }, t(`annotate.${tool}`)),
    );
    const swatches = COLORS.map((color) =>
      h('button', { class: 'swatch', type: 'button', 'data-color': color, style: `background:${color}`, 'aria-label': color, onclick: () => this.#setColor(color) }),
    );
    this.textInput = h('input', { id: 'annotate-text', maxlength: '200', 'data-i18n-placeholder': 'annotate.text_placeholder', placeholder: t('annotate.text_placeholder') });
    this.status = h('p', { id: 'annotate-status', class: 'small', role: 'status' });
    this.saveButton = h('button', { id: 'annotate-save', class: 'btn primary', type: 'button', 'data-i18n': 'annotate.save', onclick: () => this.save() }, t('annotate.save'));
    this.image = h('img', { id: 'annotate-image', alt: this.snapshot.snapshot_id, src: this.snapshot.url, draggable: 'false' });
    this.canvas = h('canvas', { id: 'annotate-canvas' });
    this.stage = h('div', { class: 'annotate-stage' }, this.image, this.canvas);
    this.root = h(
      'div',
      { class: 'modal', id: 'annotate-modal', role: 'dialog', 'aria-modal': 'true', 'data-snapshot-id': this.snapshot.snapshot_id },
      h(
        'div',
        { class: 'modal-box' },
        h(
          'div',
          { class: 'row' },
          h('h2', { class: 'grow', 'data-i18n': 'annotate.title' }, t('annotate.title')),
          h('span', { class: 'mono small muted' }, `${(this.snapshot.sha256 ?? '').slice(0, 16)}…`),
          h('button', { id: 'annotate-close', class: 'btn', type: 'button', 'data-i18n': 'annotate.close', onclick: () => this.close() }, t('annotate.close')),
        ),
        h('p', { class: 'muted small', 'data-i18n': 'annotate.hint' }, t('annotate.hint')),
        h(
          'div',
          { class: 'row annotate-tools' },
          toolButtons,
          this.textInput,
          h('span', { class: 'row swatches' }, swatches),
          h('button', { class: 'btn', type: 'button', id: 'annotate-undo', 'data-i18n': 'annotate.undo', onclick: () => this.#undo() }, t('annotate.undo')),
          h('button', { class: 'btn', type: 'button', id: 'annotate-clear', 'data-i18n': 'annotate.clear', onclick: () => this.#clear() }, t('annotate.clear')),
          this.saveButton,
        ),
        this.stage,
        this.status,
      ),
    );
    this.canvas.addEventListener('pointerdown', (e) => this.#down(e));
    this.canvas.addEventListener('pointermove', (e) => this.#move(e));
    this.canvas.addEventListener('pointerup', (e) => this.#up(e));
    this.canvas.addEventListener('pointercancel', () => {
      this.drag = null;
      this.#redraw();
    });
    this.image.addEventListener('load', () => this.#layout());
    this.onResize = () => this.#layout();
    this.onKey = (e) => {
      if (e.key === 'Escape') this.close();
    };
  }

  open() {
    document.body.append(this.root);
    window.addEventListener('resize', this.onResize);
    document.addEventListener('keydown', this.onKey);
    this.#setTool(this.tool);
    this.#setColor(this.color);
    translatePage(this.root);
    if (this.image.complete) this.#layout();
    return this;
  }

  close() {
    window.removeEventListener('resize', this.onResize);
    document.removeEventListener('keydown', this.onKey);
    this.root.remove();
  }

  async #loadPrevious() {
    const urls = (this.snapshot.annotations ?? []).map((a) => a.url).filter(Boolean);
    const loaded = await Promise.all(urls.map((url) => api(url).catch(() => null)));
    this.previous = loaded.flatMap((a) => (Array.isArray(a?.shapes) ? a.shapes : []));
    this.#redraw();
  }

  get naturalWidth() {
    return this.image.naturalWidth || this.snapshot.width || 1;
  }

  get naturalHeight() {
    return this.image.naturalHeight || this.snapshot.height || 1;
  }

  #layout() {
    const rect = this.image.getBoundingClientRect();
    if (!rect.width) return;
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(rect.width * ratio);
    this.canvas.height = Math.round(rect.height * ratio);
    this.canvas.style.width = `${rect.width}px`;
    this.canvas.style.height = `${rect.height}px`;
    this.scale = rect.width / this.naturalWidth;
    this.ratio = ratio;
    this.root.dataset.ready = 'true';
    this.#redraw();
  }

  // Pointer position in image pixels, clamped to the image.
  #point(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * this.naturalWidth;
    const y = ((event.clientY - rect.top) / rect.height) * this.naturalHeight;
    return {
      x: Math.round(Math.min(this.naturalWidth, Math.max(0, x))),
      y: Math.round(Math.min(this.naturalHeight, Math.max(0, y))),
      screenX: event.clientX,
      screenY: event.clientY,
    };
  }

  #down(event) {
    event.preventDefault();
    const p = this.#point(event);
    if (this.tool === 'text') {
      this.#placeText(p);
      return;
    }
    this.canvas.setPointerCapture?.(event.pointerId);
    this.drag = { start: p, end: p };
  }

  #move(event) {
    if (!this.drag) return;
    this.drag.end = this.#point(event);
    this.#redraw();
  }

  #up(event) {
    if (!this.drag) return;
    const { start } = this.drag;
    const end = this.#point(event);
    this.drag = null;
    if (Math.hypot(end.screenX - start.screenX, end.screenY - start.screenY) >= MIN_DRAG_PX) {
      this.#add({ type: this.tool, x1: start.x, y1: start.y, x2: end.x, y2: end.y, color: this.color });
    }
    this.#redraw();
  }

  #placeText(p) {
    const text = this.textInput.value.trim();
    if (!text) {
      this.#say(t('annotate.need_text'), true);
      this.textInput.focus();
      return;
    }
    // Extent: about 1/20 of the image high, wide enough for the characters; kept inside.
    const size = Math.max(16, Math.round(this.naturalHeight / 20));
    const x2 = Math.min(this.naturalWidth, p.x + Math.round(size * 0.9 * [...text].length));
    const y2 = Math.min(this.naturalHeight, p.y + size);
    this.#add({ type: 'text', x1: p.x, y1: p.y, x2, y2, text: text.slice(0, 200), color: this.color });
    this.#redraw();
  }

  #add(shape) {
    if (this.shapes.length >= 200) return;
    this.shapes.push(shape);
    this.root.dataset.shapes = String(this.shapes.length);
    this.#say('', false);
  }

  #undo() {
    this.shapes.pop();
    this.root.dataset.shapes = String(this.shapes.length);
    this.#redraw();
  }

  #clear() {
    this.shapes = [];
    this.root.dataset.shapes = '0';
    this.#redraw();
  }

  #setTool(tool) {
    this.tool = tool;
    for (const button of this.root.querySelectorAll('[data-tool]')) {
      button.setAttribute('aria-pressed', String(button.dataset.tool === tool));
    }
  }

  #setColor(color) {
    this.color = color;
    for (const button of this.root.querySelectorAll('[data-color]')) {
      button.setAttribute('aria-pressed', String(button.dataset.color === color));
    }
  }

  #redraw() {
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(this.ratio ?? 1, 0, 0, this.ratio ?? 1, 0, 0);
    drawShapes(ctx, this.previous, this.scale, { faded: true });
    const live = this.drag
      ? [{ type: this.tool, x1: this.drag.start.x, y1: this.drag.start.y, x2: this.drag.end.x, y2: this.drag.end.y, color: this.color }]
      : [];
    drawShapes(ctx, [...this.shapes, ...live], this.scale);
  }

  #say(text, isError) {
    this.status.textContent = text;
    this.status.className = `small ${isError ? 'error' : text ? 'success' : ''}`;
  }

  async save() {
    if (!this.shapes.length) {
      this.#say(t('annotate.empty'), true);
      return;
    }
    this.saveButton.disabled = true;
    this.#say(t('annotate.saving'), false);
    try {
      const result = await api(`/api/snapshots/${encodeURIComponent(this.snapshot.snapshot_id)}/annotations`, {
        method: 'POST',
        body: { shapes: this.shapes },
      });
      this.previous.push(...this.shapes);
      this.shapes = [];
      this.root.dataset.shapes = '0';
      this.root.dataset.saved = result.annotation_id;
      this.#redraw();
      this.#say(t('annotate.saved'), false);
      this.onSaved(result);
    } catch (err) {
      this.#say(t('annotate.failed', { reason: err.reason || err.code }), true);
    } finally {
      this.saveButton.disabled = false;
    }
  }
}
