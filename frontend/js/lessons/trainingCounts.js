// How often each unit and weight has been trained, counted from every step's
// masks in the steps frames. A merged frame carries the masks of all the steps
// it covers, so every step is counted once. Memory is one counter per unit and
// one per weight, whatever the run length.
//
// A weight W[l][i][j] is counted for a step when it was in that step's
// sub-network: unit i of layer l kept and, unless layer l + 1 is the output,
// unit j of layer l + 1 kept. Under DropConnect its weight-mask bit decides.
// With per-example masks every example's row counts as one sample.
//
// Unit masks are counted BATCH_SAMPLES samples at a time: each unit gets a
// 32-bit word with one bit per sample, and a weight's count grows by the
// number of bits set in both of its units' words. That is one AND and one
// bit count per weight for 32 samples, where counting sample by sample
// costs one increment per weight of each sub-network, 160,000 per step of
// 784-512-512-10.

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

const BATCH_SAMPLES = 32; // bits of a Uint32 word

/** Number of set bits of a 32-bit integer. */
function bitCount(word) {
  let x = word - ((word >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
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
    // per masked unit layer, (n_l,): bit k is set when the unit was kept in sample k of the batch
    this.batchWords = layerSizes.slice(0, -1).map((size) => new Uint32Array(size));
    this.batchSize = 0; // samples in the batch, not yet in keptCounts and trainedCounts
  }

  /** Records that the stream skipped from `nextStep` to `resumeStep`, as after a reconnect. */
  noteResume(resumeStep) {
    if (this.nextStep !== null && resumeStep > this.nextStep) this.missedSteps += resumeStep - this.nextStep;
    if (this.nextStep === null || resumeStep > this.nextStep) this.nextStep = resumeStep;
  }

  /**
   * Counts every step of a decoded steps frame. A frame of recorded steps
   * from before the page connected may come after the live ones: the counts
   * are sums, so only the first and next step depend on the order.
   */
  addFrame(frame) {
    this.maskScope = frame.maskScope;
    this.firstStep = this.firstStep === null ? frame.firstStep : Math.min(this.firstStep, frame.firstStep);
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
    this.countBatch(); // every count is complete when addFrame returns
    this.nextStep = Math.max(this.nextStep ?? 0, frame.firstStep + frame.stepCount);
  }

  /** Adds one sample's unit masks to the batch, and counts the batch once it is full. */
  countUnitMaskRow(masks, row) {
    const sizes = this.layerSizes;
    const outputLayer = sizes.length - 1;
    const bit = (1 << this.batchSize) >>> 0;
    for (let l = 0; l < this.maskedLayerCount; l++) {
      const kept = this.keptScratch[l];
      const count = keptIndices(masks[l], row * maskRowBytes(sizes[l]), sizes[l], kept);
      this.keptScratchCounts[l] = count;
      const words = this.batchWords[l];
      for (let a = 0; a < count; a++) words[kept[a]] |= bit;
    }
    for (let l = 0; l < this.maskedLayerCount; l++) {
      const destinations = l + 1 === outputLayer ? sizes[l + 1] : this.keptScratchCounts[l + 1];
      this.trainedTotals[l] += this.keptScratchCounts[l] * destinations;
    }
    this.sampleCount++;
    this.batchSize++;
    if (this.batchSize === BATCH_SAMPLES) this.countBatch();
  }

  /** Adds the batch's samples to keptCounts and trainedCounts and empties it. */
  countBatch() {
    if (this.batchSize === 0) return;
    const sizes = this.layerSizes;
    const outputLayer = sizes.length - 1;
    for (let l = 0; l < this.maskedLayerCount; l++) {
      const words = this.batchWords[l];
      const counts = this.keptCounts[l];
      for (let unit = 0; unit < words.length; unit++) if (words[unit] !== 0) counts[unit] += bitCount(words[unit]);
    }

    for (let l = 0; l < this.maskedLayerCount; l++) {
      const sourceWords = this.batchWords[l];
      const destinationCount = sizes[l + 1];
      const counts = this.trainedCounts[l]; // (n_l, n_{l+1})
      const destinationWords = l + 1 === outputLayer ? null : this.batchWords[l + 1];
      for (let i = 0; i < sourceWords.length; i++) {
        const sourceWord = sourceWords[i];
        if (sourceWord === 0) continue;
        const rowStart = i * destinationCount;
        if (destinationWords === null) {
          // output units are never dropped: the weight trains whenever its source unit is kept
          const kept = bitCount(sourceWord);
          for (let j = 0; j < destinationCount; j++) counts[rowStart + j] += kept;
          continue;
        }
        for (let j = 0; j < destinationCount; j++) {
          const both = sourceWord & destinationWords[j];
          if (both !== 0) counts[rowStart + j] += bitCount(both);
        }
      }
    }

    for (const words of this.batchWords) words.fill(0);
    this.batchSize = 0;
  }

  /** DropConnect: no unit is dropped, and each weight counts by its own bit. */
  countWeightMasks(masks) {
    this.countBatch();
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
