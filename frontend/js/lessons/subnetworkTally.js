// Distinct sub-networks seen in the stream. Each step's masks (or each
// example's, with per-example masks) are hashed, never stored: two 32-bit
// FNV-1a style hashes of the packed mask bytes, with different bases and
// multipliers, are combined into one 53-bit key that a Set stores exactly.

import { maskRowBytes, MASK_SCOPE_WEIGHTS } from "../protocol.js";

// NOTE: two different masks share a 53-bit key with probability about
// T² / 2^54 after T masks, about 6e-5 for a million steps, and the tally
// would then count one repeat too many.
export const MAX_DISTINCT_KEYS = 4_000_000; // about 100 MB of Set entries; past it the tally stops

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const SECOND_OFFSET = 0x9747b28c;
const SECOND_PRIME = 0x5bd1e995;

/** Murmur3's 32-bit finalizer: spreads every input bit over the output. */
function mix32(value) {
  let h = value;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hashes one sub-network: the byte ranges [offset, offset + length) of each
 * array in `blocks`, in order. Returns a 53-bit integer key.
 */
export function hashMaskBlocks(blocks) {
  let first = FNV_OFFSET;
  let second = SECOND_OFFSET;
  for (const { bytes, offset, length } of blocks) {
    for (let index = offset; index < offset + length; index++) {
      const byte = bytes[index];
      first = Math.imul(first ^ byte, FNV_PRIME);
      second = Math.imul(second ^ (byte + 0x9e), SECOND_PRIME);
      second ^= second >>> 15;
    }
  }
  return mix32(first) * 2 ** 21 + (mix32(second) >>> 11);
}

export class SubnetworkTally {
  constructor(layerSizes) {
    this.layerSizes = layerSizes.slice();
    this.keys = new Set();
    this.sampleCount = 0; // sub-networks hashed: one per step, or one per example
    this.repeatCount = 0; // samples whose key was already in the set
    this.saturated = false; // true once MAX_DISTINCT_KEYS keys are held; counting has stopped
    this.blocks = layerSizes.slice(0, -1).map(() => ({ bytes: null, offset: 0, length: 0 }));
  }

  get distinctCount() {
    return this.keys.size;
  }

  /** Hashes every step's sub-network in a decoded steps frame. */
  addFrame(frame) {
    if (this.saturated) return;
    const weightMasks = frame.maskScope === MASK_SCOPE_WEIGHTS;
    for (let k = 0; k < frame.stepCount; k++) {
      const masks = frame.masks[k];
      const rows = weightMasks ? 1 : frame.maskRows[k];
      for (let row = 0; row < rows; row++) {
        for (let l = 0; l < this.blocks.length; l++) {
          const block = this.blocks[l];
          block.bytes = masks[l];
          // a DropConnect block is one whole weight mask; a unit block has one row per example
          block.length = weightMasks ? masks[l].length : maskRowBytes(this.layerSizes[l]);
          block.offset = weightMasks ? 0 : row * block.length;
        }
        this.addKey(hashMaskBlocks(this.blocks));
      }
    }
  }

  addKey(key) {
    this.sampleCount++;
    if (this.keys.has(key)) {
      this.repeatCount++;
      return;
    }
    if (this.keys.size >= MAX_DISTINCT_KEYS) {
      this.saturated = true;
      this.sampleCount--;
      return;
    }
    this.keys.add(key);
  }
}
