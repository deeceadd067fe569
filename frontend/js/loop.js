// The one requestAnimationFrame loop. Store changes only request a frame, so
// however many messages arrive, the page draws at most once per animation frame
// and always draws the newest state.
//
// Expensive views are also rate-limited by their measured cost. After a frame
// that drew them, they skip frames until about twice that frame's duration has
// passed, less one 60 Hz frame. Where drawing is slow, about half of the main
// thread then stays free for decoding messages, so drawing does not starve them.

const FRAME_MS = 1000 / 60;
const COST_SMOOTHING = 0.3; // weight of the newest frame in the cost average

export class RenderLoop {
  /**
   * `renderers` maps a dirty name from state.js to a function that redraws
   * that part of the page from the store, or to { render, expensive: true }.
   */
  constructor(store, renderers) {
    this.store = store;
    this.renderers = Object.entries(renderers).map(([name, renderer]) =>
      typeof renderer === "function" ? { name, render: renderer, expensive: false } : { name, ...renderer },
    );
    this.pending = new Set();
    this.frameRequested = false;
    this.retryTimer = null;
    this.expensiveFrameStart = null; // rAF time of the last frame that drew an expensive view
    this.measureNextFrame = false;
    this.expensiveFrameMs = FRAME_MS; // smoothed duration of such a frame, rasterization included
    this.drawFrame = this.drawFrame.bind(this);
    store.subscribe(() => this.requestFrame());
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
      this.expensiveFrameMs += COST_SMOOTHING * (duration - this.expensiveFrameMs);
      this.measureNextFrame = false;
    }
    for (const name of this.store.takeDirty()) this.pending.add(name);

    const waitMs = this.expensiveWaitMs(timestamp);
    let drewExpensive = false;
    for (const { name, render, expensive } of this.renderers) {
      if (!this.pending.has(name) || (expensive && waitMs > 0)) continue;
      this.pending.delete(name);
      drewExpensive ||= expensive;
      // one failing renderer must not stop the others or the loop
      try {
        render();
      } catch (error) {
        console.error(`dropviz: drawing ${name} failed`, error);
      }
    }

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

  /** Milliseconds until expensive views may draw again; 0 when they may draw now. */
  expensiveWaitMs(timestamp) {
    if (this.expensiveFrameStart === null) return 0;
    const minIntervalMs = Math.max(0, 2 * this.expensiveFrameMs - FRAME_MS);
    return Math.max(0, this.expensiveFrameStart + minIntervalMs - timestamp);
  }
}
