// Exact weights right after a recorded step, from GET
// /api/runs/{id}/steps/{step}?weights=true. The server rebuilds them from the
// nearest earlier checkpoint, so one request can take a moment. The last few
// are cached, so stepping forward costs one request per step: the weights of
// step s are also the "before" weights of step s + 1.

import * as api from "../api.js";

const MAX_CACHED_STEPS = 4;

/** Flattens [l][i][j] nested lists into per-layer row-major Float32Arrays of shape (n_l, n_{l+1}). */
export function flattenMatrices(matrices) {
  return matrices.map((rows) => {
    const columns = rows.length > 0 ? rows[0].length : 0;
    const values = new Float32Array(rows.length * columns); // (n_l, n_{l+1})
    rows.forEach((row, i) => {
      // JSON sends a non-finite weight as null
      for (let j = 0; j < columns; j++) values[i * columns + j] = row[j] ?? NaN;
    });
    return values;
  });
}

/** Returns after − before per layer, as Float32Arrays of the same shapes. */
export function subtractWeights(after, before) {
  return after.map((values, l) => {
    const delta = new Float32Array(values.length);
    const previous = before[l];
    for (let index = 0; index < values.length; index++) delta[index] = values[index] - previous[index];
    return delta;
  });
}

export class StepWeights {
  constructor(runId) {
    this.runId = runId;
    this.cache = new Map(); // step -> Promise of { weights, biases }, oldest first
  }

  /** Returns { weights, biases } right after `step`: per layer Float32Arrays, W[l] of shape (n_l, n_{l+1}). */
  get(step) {
    if (this.cache.has(step)) {
      const known = this.cache.get(step);
      this.cache.delete(step); // re-insert as the newest entry
      this.cache.set(step, known);
      return known;
    }
    const promise = api.getStep(this.runId, step, { weights: true }).then((record) => ({
      weights: flattenMatrices(record.weights),
      biases: record.biases.map((values) => Float32Array.from(values, (value) => value ?? NaN)),
    }));
    // a failed request must not stay cached
    promise.catch(() => this.cache.delete(step));
    this.cache.set(step, promise);
    while (this.cache.size > MAX_CACHED_STEPS) this.cache.delete(this.cache.keys().next().value);
    return promise;
  }
}
