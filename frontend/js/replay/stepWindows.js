// Recorded steps of one run, fetched from GET /api/runs/{id}/steps in windows
// of WINDOW_STEPS and cached, so dragging the timeline costs one request per
// window. Each step's masks are decoded into the same bit-packed Uint8Array
// blocks that a live steps frame carries (docs/protocol.md), so the views can
// draw them with the stream's helpers.

import * as api from "../api.js";
import { MASK_SCOPE_PER_EXAMPLE, MASK_SCOPE_PER_STEP, MASK_SCOPE_WEIGHTS, maskRowBytes } from "../protocol.js";

export const WINDOW_STEPS = 512; // steps per request; the server sends at most 4,096
const MAX_CACHED_WINDOWS = 16; // about 8,000 steps of masks

const MASK_SCOPES = {
  "per-step": MASK_SCOPE_PER_STEP,
  "per-example": MASK_SCOPE_PER_EXAMPLE,
  weights: MASK_SCOPE_WEIGHTS,
};

function decodeBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

/**
 * Splits one step's mask bytes into per-layer blocks. A stored block has
 * `maxMaskRows` rows whatever the step's own row count (DropConnect: n_l
 * rows of n_{l+1} bits), and each block is padded to 4 bytes.
 */
export function splitMaskBlocks(bytes, layerSizes, maskScope, maxMaskRows) {
  const blocks = [];
  let offset = 0;
  for (let l = 0; l + 1 < layerSizes.length; l++) {
    const blockBytes = maskScope === MASK_SCOPE_WEIGHTS
      ? layerSizes[l] * maskRowBytes(layerSizes[l + 1])
      : maxMaskRows * maskRowBytes(layerSizes[l]);
    if (offset + blockBytes > bytes.length) {
      throw new Error(`Mask bytes end at ${bytes.length}, but layer ${l}'s block needs bytes up to ${offset + blockBytes}.`);
    }
    blocks.push(bytes.subarray(offset, offset + blockBytes));
    offset = (offset + blockBytes + 3) & ~3;
  }
  return blocks;
}

/** Decodes a StepRangeOut into { firstStep, stepCount, steps }, one entry per step. */
export function decodeWindow(range) {
  const maskScope = MASK_SCOPES[range.mask_scope];
  if (maskScope === undefined) throw new Error(`Unknown mask_scope "${range.mask_scope}" in the step range.`);
  const steps = [];
  for (let k = 0; k < range.step_count; k++) {
    const bytes = decodeBase64(range.masks[k]);
    steps.push({
      step: range.first_step + k,
      epoch: range.epochs[k],
      loss: range.losses[k] ?? NaN,
      batchAccuracy: range.batch_accuracies[k] ?? NaN,
      maskRows: range.mask_rows[k],
      maskScope,
      masks: splitMaskBlocks(bytes, range.layer_sizes, maskScope, range.max_mask_rows),
    });
  }
  return { firstStep: range.first_step, stepCount: range.step_count, steps, usedAt: 0 };
}

export class StepWindows {
  constructor(runId) {
    this.runId = runId;
    this.windows = []; // decoded windows, in no particular order
    this.pending = new Map(); // first step -> Promise of a decoded window
    this.clock = 0;
  }

  /** Returns the cached record of `step`, or null when its window is not loaded. */
  cached(step) {
    for (const window of this.windows) {
      if (step >= window.firstStep && step < window.firstStep + window.stepCount) {
        window.usedAt = ++this.clock;
        return window.steps[step - window.firstStep];
      }
    }
    return null;
  }

  /**
   * Returns the record of `step`: { step, epoch, loss, batchAccuracy,
   * maskRows, maskScope, masks }. Raises ApiError (404) when the run has not
   * stored that step yet.
   */
  async get(step) {
    const known = this.cached(step);
    if (known !== null) return known;
    const aligned = step - (step % WINDOW_STEPS);
    let window = await this.load(aligned);
    // A window stops short at the last step stored when it was read, or at the
    // server's byte limit per request. Then read again from the step itself.
    if (step >= window.firstStep + window.stepCount) window = await this.load(step);
    return window.steps[step - window.firstStep];
  }

  /** Loads the window from `first` on; warms the cache for playback when awaited ahead of time. */
  load(first) {
    if (this.pending.has(first)) return this.pending.get(first);
    const promise = api.getStepRange(this.runId, first, WINDOW_STEPS).then((range) => {
      const window = decodeWindow(range);
      window.usedAt = ++this.clock;
      this.windows = this.windows.filter((known) => known.firstStep !== window.firstStep);
      this.windows.push(window);
      if (this.windows.length > MAX_CACHED_WINDOWS) {
        this.windows.sort((a, b) => b.usedAt - a.usedAt);
        this.windows.length = MAX_CACHED_WINDOWS;
      }
      return window;
    }).finally(() => this.pending.delete(first));
    this.pending.set(first, promise);
    return promise;
  }
}
