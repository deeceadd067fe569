// The one requestAnimationFrame loop. Store changes only request a frame, so
// however many messages arrive, the page draws at most once per animation frame
// and always draws the newest state.
//
// Expensive views are also rate-limited by their measured cost. After a frame
// that drew them, they skip frames until about twice that frame's duration has
// passed, less one 60 Hz frame. Where drawing is slow, about half of the main
// thread then stays free for decoding messages, so drawing does not starve them.
// At most one expensive view draws per animation frame. A view may also set
// `minIntervalMs`, the least time between two of its draws, and `budget`, the
// share of the main thread its draws may take.
//
// A view may name the elements it draws into (`visibleWith`). While none of
// them is within VISIBILITY_MARGIN_PX of the viewport, it draws at most every
// OFFSCREEN_INTERVAL_MS: a canvas off screen still costs a raster and a
// compositor commit on every draw, but a full-page screenshot or a reader
// of the page's text must not find it far behind. It draws in the first frame
// after one of them scrolls near, and `onVisibility` hears which views are
// off screen, so whatever computes their pictures can slow down too.
//
// The cost is measured from one animation frame to the next, so time in which
// the tab was hidden, and animation frames paused, must not count: the
// measurement is dropped when the page is hidden, and a gap above
// MAX_MEASURED_GAP_MS is never taken as drawing time.

const FRAME_MS = 1000 / 60;
const COST_SMOOTHING = 0.3; // weight of the newest frame in the cost average
const MAX_MEASURED_GAP_MS = 1000;
const VISIBILITY_MARGIN_PX = 200;
export const OFFSCREEN_INTERVAL_MS = 1000;

export class RenderLoop {
  /**
   * `renderers` maps a dirty name from state.js to a function that redraws
   * that part of the page from the store and returns true when it has more
   * to draw in a later frame, or to { render, expensive,
   * minIntervalMs, budget, visibleWith } (see intervalWaitMs and the
   * comment above). `onVisibility(names)` is called with the set of views
   * off screen whenever it changes.
   */
  constructor(store, renderers, { onVisibility = () => {} } = {}) {
    this.store = store;
    this.renderers = Object.entries(renderers).map(([name, renderer]) =>
      typeof renderer === "function"
        ? { name, render: renderer, expensive: false, minIntervalMs: 0, budget: 0, visibleWith: [] }
        : { name, minIntervalMs: 0, budget: 0, visibleWith: [], ...renderer },
    );
    this.offscreen = new Set(); // names of views none of whose elements is near the viewport
    this.continuing = new Set(); // names of views whose last draw returned true: more to draw
    this.onVisibility = onVisibility;
    this.watchVisibility();
    this.lastDrawn = new Map(); // view name → rAF time of its last draw
    this.costs = new Map(); // view name → duration of its last draw in ms, JavaScript only
    this.pending = new Set();
    this.frameRequested = false;
    this.retryTimer = null;
    this.expensiveFrameStart = null; // rAF time of the last frame that drew an expensive view
    this.measureNextFrame = false;
    this.expensiveFrameMs = FRAME_MS; // smoothed duration of such a frame, rasterization included
    this.drawFrame = this.drawFrame.bind(this);
    store.subscribe(() => this.requestFrame());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) return;
      this.measureNextFrame = false;
      this.expensiveFrameStart = null;
    }, { passive: true });
  }

  requestFrame() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(this.drawFrame);
  }

  drawFrame(timestamp) {
    this.frameRequested = false;
    if (this.measureNextFrame) {
      // the gap between two animation frames includes rasterizing the canvases
      const duration = timestamp - this.expensiveFrameStart;
      if (duration <= MAX_MEASURED_GAP_MS) this.expensiveFrameMs += COST_SMOOTHING * (duration - this.expensiveFrameMs);
      this.measureNextFrame = false;
    }
    for (const name of this.store.takeDirty()) this.pending.add(name);

    // cheap views draw whenever they are dirty; of the expensive ones, only the
    // one drawn least recently, so no animation frame runs two of them
    const expensiveWaitMs = this.expensiveWaitMs(timestamp);
    let waitMs = Infinity; // until the earliest view that is pending but must wait may draw
    let expensiveChoice = null;
    for (const renderer of this.renderers) {
      if (!this.pending.has(renderer.name)) continue;
      const viewWaitMs = Math.max(renderer.expensive ? expensiveWaitMs : 0, this.intervalWaitMs(renderer, timestamp));
      if (viewWaitMs > 0) {
        waitMs = Math.min(waitMs, viewWaitMs);
      } else if (!renderer.expensive) {
        this.draw(renderer, timestamp);
      } else if (expensiveChoice === null || this.lastDrawnAt(renderer) < this.lastDrawnAt(expensiveChoice)) {
        expensiveChoice = renderer;
      }
    }
    const drewExpensive = expensiveChoice !== null;
    if (drewExpensive) this.draw(expensiveChoice, timestamp);

    if (drewExpensive) {
      this.expensiveFrameStart = timestamp;
      this.measureNextFrame = true;
      this.requestFrame();
    } else if (this.pending.size > 0 && this.retryTimer === null) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        this.requestFrame();
      }, waitMs);
    }
  }

  /**
   * Tracks which views' elements are near the viewport. An element starts as
   * visible until the observer's first report, so nothing waits on a page
   * whose observer never reports.
   */
  watchVisibility() {
    const viewsByElement = new Map(); // element → names of the views drawing into it
    for (const { name, visibleWith } of this.renderers) {
      for (const element of visibleWith) {
        viewsByElement.set(element, [...(viewsByElement.get(element) ?? []), name]);
      }
    }
    if (viewsByElement.size === 0) return;
    const visibleElements = new Set(viewsByElement.keys());
    const observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (entry.isIntersecting) visibleElements.add(entry.target);
        else visibleElements.delete(entry.target);
      }
      const offscreen = new Set(
        this.renderers
          .filter(({ visibleWith }) => visibleWith.length > 0 && !visibleWith.some((element) => visibleElements.has(element)))
          .map(({ name }) => name),
      );
      const changed = offscreen.size !== this.offscreen.size || [...offscreen].some((name) => !this.offscreen.has(name));
      if (!changed) return;
      this.offscreen = offscreen;
      this.onVisibility(offscreen);
      this.requestFrame(); // views that came near draw what they have not drawn yet
    }, { rootMargin: `${VISIBILITY_MARGIN_PX}px` });
    for (const element of viewsByElement.keys()) observer.observe(element);
  }

  lastDrawnAt({ name }) {
    return this.lastDrawn.get(name) ?? -Infinity;
  }

  /**
   * Milliseconds until `renderer` may draw again under its `minIntervalMs`
   * (OFFSCREEN_INTERVAL_MS at least while it is off screen, unless it is
   * still drawing in parts) and its `budget`,
   * the share of time its draws may take (the last draw's duration ÷ budget
   * must pass after it).
   */
  intervalWaitMs(renderer, timestamp) {
    const costMs = this.costs.get(renderer.name) ?? 0;
    const slowed = this.offscreen.has(renderer.name) && !this.continuing.has(renderer.name);
    const minIntervalMs = slowed ? Math.max(renderer.minIntervalMs, OFFSCREEN_INTERVAL_MS) : renderer.minIntervalMs;
    const intervalMs = Math.max(minIntervalMs, renderer.budget > 0 ? costMs / renderer.budget : 0);
    return this.lastDrawnAt(renderer) + intervalMs - timestamp;
  }

  draw(renderer, timestamp) {
    this.pending.delete(renderer.name);
    this.lastDrawn.set(renderer.name, timestamp);
    const start = performance.now();
    let drawsMore = false;
    // one failing renderer must not stop the others or the loop
    try {
      drawsMore = renderer.render() === true;
    } catch (error) {
      console.error(`dropviz: drawing ${renderer.name} failed`, error);
    }
    this.costs.set(renderer.name, performance.now() - start);
    if (drawsMore) {
      this.pending.add(renderer.name);
      this.continuing.add(renderer.name);
    } else {
      this.continuing.delete(renderer.name);
    }
  }

  /** Milliseconds until expensive views may draw again; 0 when they may draw now. */
  expensiveWaitMs(timestamp) {
    if (this.expensiveFrameStart === null) return 0;
    const minIntervalMs = Math.max(0, 2 * this.expensiveFrameMs - FRAME_MS);
    return Math.max(0, this.expensiveFrameStart + minIntervalMs - timestamp);
  }
}
