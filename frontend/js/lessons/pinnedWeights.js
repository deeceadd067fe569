// Shared weights the user pinned to follow: each one's value after every
// frame, the steps in which it was in the sub-network, and its latest updates.
// A frame that covers several steps gives one point whose delta is the sum of
// those steps' updates, but each covered step's masks are checked, so the
// in-sub-network steps are exact. Memory per weight is bounded: points are
// merged in pairs when MAX_POINTS is reached, and at most MAX_MARKED_STEPS
// steps are marked.

import { isUnitKept, isWeightKept, maskRowBytes, MASK_SCOPE_WEIGHTS } from "../protocol.js";

export const MAX_PINNED = 6;
const MAX_POINTS = 4096;
export const MAX_MARKED_STEPS = 200_000;
const RECENT_UPDATES = 5;

/** Returns whether W[layer][source][destination] was in the sub-network of step k of `frame`. */
export function inSubnetwork(frame, k, layerSizes, layer, source, destination) {
  const masks = frame.masks[k];
  const destinationCount = layerSizes[layer + 1];
  if (frame.maskScope === MASK_SCOPE_WEIGHTS) return isWeightKept(masks[layer], destinationCount, source, destination);
  const destinationIsOutput = layer + 1 === layerSizes.length - 1;
  const sourceRowBytes = maskRowBytes(layerSizes[layer]);
  const destinationRowBytes = maskRowBytes(destinationCount);
  // with per-example masks the weight trains when any example's sub-network contains it
  for (let row = 0; row < frame.maskRows[k]; row++) {
    if (!isUnitKept(masks[layer], source, row * sourceRowBytes)) continue;
    if (destinationIsOutput || isUnitKept(masks[layer + 1], destination, row * destinationRowBytes)) return true;
  }
  return false;
}

/** A growable list of step numbers that stops growing at MAX_MARKED_STEPS. */
class StepList {
  constructor() {
    this.values = new Float64Array(256);
    this.length = 0;
    this.overflowCount = 0; // steps left out past MAX_MARKED_STEPS
  }

  push(step) {
    if (this.length >= MAX_MARKED_STEPS) {
      this.overflowCount++;
      return;
    }
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = step;
  }
}

export class PinnedWeight {
  constructor(layer, source, destination, layerSizes, value, step) {
    this.layer = layer;
    this.source = source;
    this.destination = destination;
    this.index = source * layerSizes[layer + 1] + destination;
    this.layerSizes = layerSizes;
    this.pinnedAtStep = step; // the first step followed
    this.value = value;
    // one point per frame (or per merged pair of points): the steps it covers and the value after them
    this.pointFirstSteps = new Float64Array(MAX_POINTS);
    this.pointStepCounts = new Float64Array(MAX_POINTS);
    this.pointValues = new Float32Array(MAX_POINTS);
    this.pointCount = 0;
    this.updateSteps = new StepList(); // steps in which the weight was in the sub-network
    this.recentUpdates = []; // the latest frames that changed it or trained it, newest last
    this.stepsFollowed = 0;
    this.missedSteps = 0;
  }

  get key() {
    return `${this.layer}:${this.source}:${this.destination}`;
  }

  /** Records a frame already applied to `weights` (per weight layer, row-major). */
  addFrame(frame, weights) {
    const valueBefore = this.value;
    const valueAfter = weights[this.layer][this.index];
    const deltas = frame.weightDeltas[this.layer];
    const delta = deltas === null ? 0 : deltas[this.index];
    const trainedSteps = []; // the first 8 steps of the frame that trained the weight
    const trainedEpochs = [];
    let trainedCount = 0;
    for (let k = 0; k < frame.stepCount; k++) {
      if (!inSubnetwork(frame, k, this.layerSizes, this.layer, this.source, this.destination)) continue;
      trainedCount++;
      this.updateSteps.push(frame.firstStep + k);
      if (trainedSteps.length < 8) {
        trainedSteps.push(frame.firstStep + k);
        trainedEpochs.push(frame.epochs[k]);
      }
    }
    this.value = valueAfter;
    this.stepsFollowed += frame.stepCount;
    this.addPoint(frame.firstStep, frame.stepCount, valueAfter);

    if (trainedCount > 0 || delta !== 0) {
      this.recentUpdates.push({
        firstStep: frame.firstStep,
        stepCount: frame.stepCount,
        lastEpoch: frame.epochs[frame.stepCount - 1],
        trainedCount,
        trainedSteps,
        trainedEpochs,
        valueBefore,
        valueAfter,
        delta,
      });
      if (this.recentUpdates.length > RECENT_UPDATES) this.recentUpdates.shift();
    }
  }

  /** Takes the value of a fresh snapshot after the stream skipped `missed` steps. */
  resume(value, missed) {
    this.value = value;
    this.missedSteps += missed;
  }

  addPoint(firstStep, stepCount, value) {
    if (this.pointCount === MAX_POINTS) this.halvePoints();
    const index = this.pointCount++;
    this.pointFirstSteps[index] = firstStep;
    this.pointStepCounts[index] = stepCount;
    this.pointValues[index] = value;
  }

  /** Merges neighbouring points in pairs: each merged point covers both step ranges and keeps the later value. */
  halvePoints() {
    const half = this.pointCount >> 1;
    for (let merged = 0; merged < half; merged++) {
      const first = 2 * merged;
      this.pointFirstSteps[merged] = this.pointFirstSteps[first];
      this.pointStepCounts[merged] = this.pointStepCounts[first] + this.pointStepCounts[first + 1];
      this.pointValues[merged] = this.pointValues[first + 1];
    }
    this.pointCount = half;
  }
}

export class PinnedWeights {
  constructor() {
    this.weights = []; // PinnedWeight, oldest first
    this.layerSizes = null;
  }

  reset(layerSizes) {
    this.weights = [];
    this.layerSizes = layerSizes === null ? null : layerSizes.slice();
  }

  has(layer, source, destination) {
    return this.weights.some((weight) => weight.key === `${layer}:${source}:${destination}`);
  }

  /**
   * Pins W[layer][source][destination] at its current value; when MAX_PINNED
   * are pinned already the oldest is dropped. Returns the pinned weight.
   */
  pin(layer, source, destination, weights, step) {
    const existing = this.weights.find((weight) => weight.key === `${layer}:${source}:${destination}`);
    if (existing !== undefined) return existing;
    const index = source * this.layerSizes[layer + 1] + destination;
    const pinned = new PinnedWeight(layer, source, destination, this.layerSizes, weights[layer][index], step);
    this.weights.push(pinned);
    if (this.weights.length > MAX_PINNED) this.weights.shift();
    return pinned;
  }

  unpin(key) {
    this.weights = this.weights.filter((weight) => weight.key !== key);
  }

  addFrame(frame, weights) {
    for (const weight of this.weights) weight.addFrame(frame, weights);
  }

  resume(weights, missed) {
    for (const weight of this.weights) weight.resume(weights[weight.layer][weight.index], missed);
  }
}
