// How often each unit and weight has been trained, counted from every step's
// masks in the steps frames. A merged frame carries the masks of all the steps
// it covers, so every step is counted once. Memory is one counter per unit and
// one per weight, whatever the run length.
//
// A weight W[l][i][j] is counted for a step when it was in that step's
// sub-network: unit i of layer l kept and, unless layer l + 1 is the output,
// unit j of layer l + 1 kept. Under DropConnect its weight-mask bit decides.
// With per-example masks every example's row counts as one sample.

import { maskRowBytes, MASK_SCOPE_PER_EXAMPLE, MASK_SCOPE_WEIGHTS } from "../protocol.js";

/**
 * Writes the index of every set bit of a packed mask row into `out` and
 * returns how many there are. Bits past `unitCount` are padding and skipped.
 */
export function keptIndices(bytes, offset, unitCount, out) {
  let count = 0;
  const byteCount = maskRowBytes(unitCount);
  for (let b = 0; b < byteCount; b++) {
    let byte = bytes[offset + b];
    while (byte !== 0) {
      const lowest = byte & -byte;
      const index = (b << 3) | (31 - Math.clz32(lowest));
      if (index < unitCount) out[count++] = index;
      byte ^= lowest;
    }
  }
  return count;
}

export class TrainingCounts {
  constructor(layerSizes) {
    this.layerSizes = layerSizes.slice();
    this.maskedLayerCount = layerSizes.length - 1; // every unit layer but the output
    this.stepCount = 0; // steps whose masks were counted
    this.sampleCount = 0; // mask rows counted: one per step, or one per example
    this.firstStep = null;
    this.nextStep = null;
    this.missedSteps = 0; // steps streamed while this page was not connected
    this.maskScope = null;
    // per masked unit layer, (n_l,): samples in which the unit was kept
    this.keptCounts = layerSizes.slice(0, -1).map((size) => new Uint32Array(size));
    // per weight layer, (n_l, n_{l+1}) row-major: samples in which the weight was in the sub-network
    this.trainedCounts = [];
    for (let l = 0; l + 1 < layerSizes.length; l++) {
      this.trainedCounts.push(new Uint32Array(layerSizes[l] * layerSizes[l + 1]));
    }
    // per weight layer, the sum of trainedCounts[l], so its mean needs no pass over the weights
    this.trainedTotals = new Float64Array(layerSizes.length - 1);
    this.keptScratch = layerSizes.map((size) => new Int32Array(size));
    this.keptScratchCounts = new Int32Array(layerSizes.length);
  }

  /** Records that the stream skipped from `nextStep` to `resumeStep`, as after a reconnect. */
  noteResume(resumeStep) {
    if (this.nextStep !== null && resumeStep > this.nextStep) this.missedSteps += resumeStep - this.nextStep;
    if (this.nextStep === null || resumeStep > this.nextStep) this.nextStep = resumeStep;
  }

  /** Counts every step of a decoded steps frame. */
  addFrame(frame) {
    this.maskScope = frame.maskScope;
    if (this.firstStep === null) this.firstStep = frame.firstStep;
    for (let k = 0; k < frame.stepCount; k++) {
      const masks = frame.masks[k];
      if (frame.maskScope === MASK_SCOPE_WEIGHTS) {
        this.countWeightMasks(masks);
      } else {
        const rows = frame.maskRows[k];
        for (let row = 0; row < rows; row++) this.countUnitMaskRow(masks, row);
      }
      this.stepCount++;
    }
    this.nextStep = frame.firstStep + frame.stepCount;
  }

  countUnitMaskRow(masks, row) {
    const sizes = this.layerSizes;
    const outputLayer = sizes.length - 1;
    for (let l = 0; l < this.maskedLayerCount; l++) {
      const kept = this.keptScratch[l];
      const count = keptIndices(masks[l], row * maskRowBytes(sizes[l]), sizes[l], kept);
      this.keptScratchCounts[l] = count;
      const counts = this.keptCounts[l];
      for (let a = 0; a < count; a++) counts[kept[a]]++;
    }

    for (let l = 0; l < this.maskedLayerCount; l++) {
      const sources = this.keptScratch[l];
      const sourceCount = this.keptScratchCounts[l];
      const destinationCount = sizes[l + 1];
      const counts = this.trainedCounts[l]; // (n_l, n_{l+1})
      if (l + 1 === outputLayer) {
        this.trainedTotals[l] += sourceCount * destinationCount;
        for (let a = 0; a < sourceCount; a++) {
          const rowStart = sources[a] * destinationCount;
          for (let j = 0; j < destinationCount; j++) counts[rowStart + j]++;
        }
      } else {
        const destinations = this.keptScratch[l + 1];
        const keptDestinations = this.keptScratchCounts[l + 1];
        this.trainedTotals[l] += sourceCount * keptDestinations;
        for (let a = 0; a < sourceCount; a++) {
          const rowStart = sources[a] * destinationCount;
          for (let b = 0; b < keptDestinations; b++) counts[rowStart + destinations[b]]++;
        }
      }
    }
    this.sampleCount++;
  }

  /** DropConnect: no unit is dropped, and each weight counts by its own bit. */
  countWeightMasks(masks) {
    const sizes = this.layerSizes;
    for (let l = 0; l < this.maskedLayerCount; l++) {
      const counts = this.keptCounts[l];
      for (let unit = 0; unit < counts.length; unit++) counts[unit]++;
      const destinationCount = sizes[l + 1];
      const rowBytes = maskRowBytes(destinationCount);
      const trained = this.trainedCounts[l];
      const kept = this.keptScratch[l + 1];
      for (let i = 0; i < sizes[l]; i++) {
        const count = keptIndices(masks[l], i * rowBytes, destinationCount, kept);
        this.trainedTotals[l] += count;
        const rowStart = i * destinationCount;
        for (let b = 0; b < count; b++) trained[rowStart + kept[b]]++;
      }
    }
    this.sampleCount++;
  }

  /** Samples in which unit `unit` of unit layer `layer` was kept; the output layer is always kept. */
  keptCount(layer, unit) {
    return layer < this.maskedLayerCount ? this.keptCounts[layer][unit] : this.sampleCount;
  }

  /** Samples in which W[layer][source][destination] was in the sub-network. */
  trainedCount(layer, source, destination) {
    return this.trainedCounts[layer][source * this.layerSizes[layer + 1] + destination];
  }

  /** Word for what one counted sample is: "steps", or "example masks" with per-example masks. */
  get sampleNoun() {
    return this.maskScope === MASK_SCOPE_PER_EXAMPLE ? "example masks" : "steps";
  }
}
