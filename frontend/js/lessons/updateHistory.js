// Data of the weight-update heatmaps besides the latest frame's ΔW: a decaying
// trail of recent updates, the cumulative |Δw| since this page connected, and
// the per-frame maxima that a colour scale can follow.
// Memory: two float32 copies of the weights and at most one maximum per
// frame of the scale window.
//
// A merged frame carries only the sum of its steps' deltas, so the trail
// decays by the frame's whole step count and then adds that sum, and the
// cumulative map adds |sum|, which can be less than the sum of the steps' |Δw|.

export const TRAIL_HALF_LIFE_STEPS = 20;
export const SCALE_WINDOW_STEPS = 200; // the "recent" colour scale follows the maxima of this many steps
export const HEATMAP_MODES = Object.freeze(["delta", "trail", "cumulative"]);

/** Largest finite |value|, 0 when there is none. */
export function maxFiniteMagnitude(values) {
  let max = 0;
  for (let index = 0; index < values.length; index++) {
    const magnitude = Math.abs(values[index]);
    if (magnitude > max && magnitude !== Infinity) max = magnitude;
  }
  return max;
}

export class UpdateHistory {
  constructor(layerSizes) {
    this.trails = []; // per weight layer, (n_l, n_{l+1})
    this.cumulative = []; // per weight layer, (n_l, n_{l+1}): Σ over frames of |frame ΔW|
    for (let l = 0; l + 1 < layerSizes.length; l++) {
      this.trails.push(new Float32Array(layerSizes[l] * layerSizes[l + 1]));
      this.cumulative.push(new Float32Array(layerSizes[l] * layerSizes[l + 1]));
    }
    this.runMaxima = HEATMAP_MODES.map(() => new Float64Array(this.trails.length));
    this.recent = []; // { lastStep, maxima: per mode, per layer }, oldest first
    this.lastStep = null;
    this.firstStep = null;
  }

  /** Decays the trails by the frame's step count, adds its deltas and records the maxima. */
  addFrame(frame) {
    const decay = 2 ** (-frame.stepCount / TRAIL_HALF_LIFE_STEPS);
    const maxima = HEATMAP_MODES.map(() => new Float64Array(this.trails.length));
    for (let l = 0; l < this.trails.length; l++) {
      const deltas = frame.weightDeltas[l];
      if (deltas === null) continue;
      const trail = this.trails[l];
      const cumulative = this.cumulative[l];
      let maxDelta = 0;
      let maxTrail = 0;
      let maxCumulative = 0;
      // one fused pass: these arrays are as large as the weights
      for (let index = 0; index < deltas.length; index++) {
        const delta = deltas[index];
        const magnitude = Math.abs(delta);
        const trailValue = trail[index] * decay + delta;
        trail[index] = trailValue;
        const total = cumulative[index] + magnitude;
        cumulative[index] = total;
        if (magnitude > maxDelta && magnitude !== Infinity) maxDelta = magnitude;
        const trailMagnitude = Math.abs(trailValue);
        if (trailMagnitude > maxTrail && trailMagnitude !== Infinity) maxTrail = trailMagnitude;
        if (total > maxCumulative && total !== Infinity) maxCumulative = total;
      }
      maxima[0][l] = maxDelta;
      maxima[1][l] = maxTrail;
      maxima[2][l] = maxCumulative;
    }

    for (let mode = 0; mode < HEATMAP_MODES.length; mode++) {
      for (let l = 0; l < this.trails.length; l++) {
        this.runMaxima[mode][l] = Math.max(this.runMaxima[mode][l], maxima[mode][l]);
      }
    }
    this.lastStep = frame.firstStep + frame.stepCount - 1;
    if (this.firstStep === null) this.firstStep = frame.firstStep;
    this.recent.push({ lastStep: this.lastStep, maxima });
    while (this.recent.length > 0 && this.recent[0].lastStep <= this.lastStep - SCALE_WINDOW_STEPS) this.recent.shift();
  }

  /** Values shown by heatmap `mode` for weight layer `layer`, or null before the first frame. */
  values(mode, layer, lastFrame) {
    if (mode === "delta") return lastFrame?.frame.weightDeltas[layer] ?? null;
    if (this.lastStep === null) return null;
    return mode === "trail" ? this.trails[layer] : this.cumulative[layer];
  }

  /**
   * Returns the bound of the symmetric colour scale. Scale "frame" uses
   * `shownMax`, the maximum of the values on screen. "recent" uses the maximum
   * over the frames of the last SCALE_WINDOW_STEPS steps, and "run" the maximum
   * since this page connected.
   */
  scaleBound(mode, layer, scale, shownMax) {
    const modeIndex = HEATMAP_MODES.indexOf(mode);
    if (scale === "run") return Math.max(this.runMaxima[modeIndex][layer], shownMax);
    if (scale === "recent") {
      let max = shownMax;
      for (const { maxima } of this.recent) max = Math.max(max, maxima[modeIndex][layer]);
      return max;
    }
    return shownMax;
  }
}
