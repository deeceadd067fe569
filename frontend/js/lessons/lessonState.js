// The lessons' state, fed by every frame the store applies: how often each
// unit and weight trained, the distinct sub-networks seen, the heatmap trails
// and the pinned weights. It never touches the DOM. Everything is counted
// from the first snapshot this page received. Steps streamed before it, or
// while a reconnect was pending, are in no count and are reported as missed.

import { Dirty } from "../state.js";
import { PinnedWeights } from "./pinnedWeights.js";
import { SubnetworkTally } from "./subnetworkTally.js";
import { TrainingCounts } from "./trainingCounts.js";
import { UpdateHistory } from "./updateHistory.js";

function sameSizes(a, b) {
  return a !== null && b !== null && a.length === b.length && a.every((size, index) => size === b[index]);
}

export class LessonState {
  constructor(store) {
    this.store = store;
    this.pinned = new PinnedWeights();
    this.onClear();
    store.addFrameListener(this);
  }

  onClear() {
    this.layerSizes = null;
    this.counts = null; // TrainingCounts
    this.tally = null; // SubnetworkTally
    this.history = null; // UpdateHistory
    this.startStep = null; // the step of the first snapshot received
    this.pinned.reset(null);
  }

  onSnapshot(snapshot) {
    if (this.counts === null || !sameSizes(this.layerSizes, snapshot.layerSizes)) {
      this.layerSizes = snapshot.layerSizes.slice();
      this.counts = new TrainingCounts(this.layerSizes);
      this.tally = new SubnetworkTally(this.layerSizes);
      this.history = new UpdateHistory(this.layerSizes);
      this.startStep = snapshot.nextStep;
      this.counts.noteResume(snapshot.nextStep);
      this.pinned.reset(this.layerSizes);
    } else {
      // a reconnect: the steps between the last frame and this snapshot never arrived
      const missed = Math.max(0, snapshot.nextStep - (this.counts.nextStep ?? snapshot.nextStep));
      this.counts.noteResume(snapshot.nextStep);
      this.pinned.resume(this.store.weights, missed);
    }
    this.markDirty();
  }

  onSteps(frame) {
    this.counts.addFrame(frame);
    this.tally.addFrame(frame);
    this.history.addFrame(frame);
    this.pinned.addFrame(frame, this.store.weights);
    this.markDirty();
  }

  /**
   * Counts recorded steps from before the first snapshot, read from the
   * server's step history (`frame` as decodeSteps returns it, without
   * deltas). The update trails and pinned weights need the deltas, which the
   * history does not keep, so they start at the snapshot.
   */
  addHistory(frame) {
    if (this.counts === null || frame.firstStep + frame.stepCount > this.startStep) return;
    this.counts.addFrame(frame);
    this.tally.addFrame(frame);
    this.markDirty();
  }

  markDirty() {
    this.store.markDirty(Dirty.TRAINING_COUNTS, Dirty.SUBNETWORK_METER, Dirty.PINNED);
  }

  /** Pins W[layer][source][destination] from the next frame on; returns false before the first snapshot. */
  pin(layer, source, destination) {
    if (this.store.weights === null || this.layerSizes === null) return false;
    this.pinned.pin(layer, source, destination, this.store.weights, this.store.nextStep);
    this.store.markDirty(Dirty.PINNED, Dirty.NETWORK);
    return true;
  }

  unpin(key) {
    this.pinned.unpin(key);
    this.store.markDirty(Dirty.PINNED, Dirty.NETWORK);
  }
}
