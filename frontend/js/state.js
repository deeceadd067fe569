// The dashboard's one store: run metadata, the client's copy of the weights,
// the latest steps frame and the metric histories. It never touches the DOM.
// Invariant: weights = snapshot weights + the sum of every delta applied since.
// The stream worker owns such a store and applies every frame to it. The
// page's store contains what the worker sends (applyUpdate): the latest step's
// masks and metrics, and a copy of the weights only for networks small
// enough to draw link by link.

/** Names of the parts of the page that a store change can make stale. */
export const Dirty = Object.freeze({
  COUNTERS: "counters",
  CONTROLS: "controls",
  NETWORK: "network",
  HEATMAP: "heatmap",
  STEP_CHART: "stepChart",
  EPOCH_CHARTS: "epochCharts",
  TRAINING_COUNTS: "trainingCounts",
  SUBNETWORK_METER: "subnetworkMeter",
  PINNED: "pinned",
});

export const TERMINAL_STATUSES = new Set(["finished", "stopped", "diverged"]);

const INITIAL_LOSS_CAPACITY = 1024;

/** Float32 array indexed by step that grows by doubling; unknown steps are NaN. */
class StepSeries {
  constructor() {
    this.values = new Float32Array(INITIAL_LOSS_CAPACITY).fill(NaN);
    this.length = 0; // one past the highest step stored
  }

  set(step, value) {
    if (step >= this.values.length) {
      let capacity = this.values.length;
      while (capacity <= step) capacity *= 2;
      const grown = new Float32Array(capacity).fill(NaN);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[step] = value;
    this.length = Math.max(this.length, step + 1);
  }
}

export class Store {
  constructor() {
    this.listeners = [];
    this.frameListeners = [];
    this.dirty = new Set();
    this.connection = { state: "idle", message: "" };
    this.clearRun();
  }

  /** Registers `listener`, called after every change with no arguments. */
  subscribe(listener) {
    this.listeners.push(listener);
  }

  /**
   * Registers `listener` for the stream itself: `onSnapshot(snapshot)` after a
   * snapshot replaced the weights, `onSteps(frame)` after a steps frame was
   * applied and `onClear()` when the run is forgotten. Listeners keep their
   * own state and must not change the store's.
   */
  addFrameListener(listener) {
    this.frameListeners.push(listener);
  }

  markDirty(...names) {
    for (const name of names) this.dirty.add(name);
    for (const listener of this.listeners) listener();
  }

  /** Returns the set of dirty names and clears it. */
  takeDirty() {
    const dirty = this.dirty;
    this.dirty = new Set();
    return dirty;
  }

  /** Forgets the current run and everything streamed for it. */
  clearRun() {
    this.run = null;
    this.runMissing = false; // the server returned 404 for the run: deleted, or another state folder
    this.layerSizes = null;
    this.inputShape = null;
    this.hasSnapshot = false; // a snapshot of this run arrived
    this.weights = null; // per weight layer, (n_l, n_{l+1}) row-major
    this.biases = null; // per weight layer, (n_{l+1},)
    this.nextStep = 0; // steps completed according to the stream
    this.lastFrame = null;
    this.losses = new StepSeries();
    this.batchAccuracies = new StepSeries();
    this.epochRecords = [];
    for (const listener of this.frameListeners) listener.onClear();
    this.markDirty(...Object.values(Dirty));
  }

  /**
   * Stores a Run object from the REST API. Its `step` may be ahead of the
   * stream, so it never changes `nextStep`, which only frames advance.
   */
  setRun(run) {
    const sameRun = this.run !== null && this.run.id === run.id;
    if (!sameRun) this.clearRun();
    this.run = run;
    this.layerSizes = this.layerSizes ?? run.layer_sizes;
    this.inputShape = run.input_shape ?? null;
    this.markDirty(Dirty.COUNTERS, Dirty.CONTROLS, Dirty.NETWORK);
  }

  /** Records that the server has no such run, so nothing can control or stream it. */
  markRunMissing() {
    if (this.run === null || this.runMissing) return;
    this.runMissing = true;
    this.markDirty(Dirty.COUNTERS, Dirty.CONTROLS);
  }

  setConnection(state, message = "") {
    this.connection = { state, message };
    this.markDirty(Dirty.COUNTERS);
  }

  /** Replaces the client's weights with a snapshot's, copying them out of the frame. */
  applySnapshot(snapshot) {
    this.layerSizes = snapshot.layerSizes;
    this.inputShape = snapshot.meta.input_shape ?? null;
    this.hasSnapshot = true;
    this.weights = snapshot.weights.map((values) => Float32Array.from(values));
    this.biases = snapshot.biases.map((values) => Float32Array.from(values));
    this.nextStep = snapshot.nextStep;
    this.lastFrame = null;
    if (this.run !== null) {
      this.run = { ...this.run, status: snapshot.meta.status ?? this.run.status };
    }
    for (const listener of this.frameListeners) listener.onSnapshot(snapshot);
    this.markDirty(Dirty.COUNTERS, Dirty.CONTROLS, Dirty.NETWORK, Dirty.HEATMAP);
  }

  /**
   * Applies a steps frame: adds its summed deltas to the weights, records
   * every covered step's loss and keeps the frame for the highlight.
   * Returns false, changing nothing, when the frame does not start at the
   * next expected step, because the weights would then drift from the server's.
   */
  applySteps(frame) {
    if (this.weights === null || frame.firstStep !== this.nextStep) return false;

    for (let l = 0; l < this.weights.length; l++) {
      const weightDelta = frame.weightDeltas[l];
      const biasDelta = frame.biasDeltas[l];
      if (weightDelta === null) continue;
      const weights = this.weights[l];
      for (let index = 0; index < weights.length; index++) weights[index] += weightDelta[index];
      const biases = this.biases[l];
      for (let index = 0; index < biases.length; index++) biases[index] += biasDelta[index];
    }

    for (let k = 0; k < frame.stepCount; k++) {
      this.losses.set(frame.firstStep + k, frame.losses[k]);
      this.batchAccuracies.set(frame.firstStep + k, frame.batchAccuracies[k]);
    }

    const lastIndex = frame.stepCount - 1;
    this.nextStep = frame.firstStep + frame.stepCount;
    this.lastFrame = {
      frame,
      step: frame.firstStep + lastIndex, // the step whose masks are highlighted
      epoch: frame.epochs[lastIndex],
      masks: frame.masks[lastIndex],
      maskRows: frame.maskRows[lastIndex],
      loss: frame.losses[lastIndex],
      batchAccuracy: frame.batchAccuracies[lastIndex],
    };
    for (const listener of this.frameListeners) listener.onSteps(frame);
    this.markDirty(Dirty.COUNTERS, Dirty.NETWORK, Dirty.HEATMAP, Dirty.STEP_CHART);
    return true;
  }

  /**
   * Takes a snapshot's metadata when it arrives, before the stream worker
   * applied its weights: its run state is newer than any status message
   * before it and older than any after it.
   */
  applySnapshotMeta(meta) {
    this.layerSizes = meta.layer_sizes;
    this.inputShape = meta.input_shape ?? null;
    if (this.run !== null) this.run = { ...this.run, status: meta.status ?? this.run.status };
    this.markDirty(Dirty.COUNTERS, Dirty.CONTROLS);
  }

  /**
   * Applies an update of the stream worker (streamWorker.js, buildUpdate).
   * Keys it leaves out keep their values; `names` are the views it changed.
   */
  applyUpdate(update) {
    if (update.layerSizes !== null) {
      this.layerSizes = update.layerSizes;
      this.inputShape = update.inputShape;
    }
    this.hasSnapshot = update.hasSnapshot;
    this.nextStep = update.nextStep;
    if ("lastFrame" in update) this.lastFrame = update.lastFrame;
    if ("weights" in update) {
      this.weights = update.weights;
      this.biases = update.biases;
    }
    const metrics = update.metrics;
    if (metrics !== undefined) {
      for (let k = 0; k < metrics.losses.length; k++) {
        this.losses.set(metrics.firstStep + k, metrics.losses[k]);
        this.batchAccuracies.set(metrics.firstStep + k, metrics.batchAccuracies[k]);
      }
    }
    this.markDirty(...update.names);
  }

  /** Applies a `status` text message. */
  applyStatus(message) {
    if (this.run === null) return;
    this.run = {
      ...this.run,
      status: message.status,
      step: Math.max(this.run.step ?? 0, message.step ?? 0),
      epoch: message.epoch ?? this.run.epoch,
      diverged_step: message.diverged_step ?? this.run.diverged_step,
    };
    this.markDirty(Dirty.COUNTERS, Dirty.CONTROLS);
  }

  /** Adds or replaces one epoch's evaluation, from an `epoch` message or the metrics endpoint. */
  applyEpoch(record) {
    const index = this.epochRecords.findIndex((known) => known.epoch === record.epoch);
    if (index >= 0) {
      this.epochRecords[index] = record;
    } else {
      this.epochRecords.push(record);
      this.epochRecords.sort((a, b) => a.epoch - b.epoch);
    }
    this.markDirty(Dirty.COUNTERS, Dirty.EPOCH_CHARTS);
  }

  /**
   * Steps completed as far as the page shows them: the stream's count once a
   * snapshot arrived, so the counter matches the drawn sub-network, else the Run's.
   */
  get stepsCompleted() {
    return this.hasSnapshot ? this.nextStep : (this.run?.step ?? 0);
  }

  /** Latest epoch evaluation, or null before the first epoch ends. */
  get latestEpochRecord() {
    return this.epochRecords.length > 0 ? this.epochRecords[this.epochRecords.length - 1] : null;
  }
}
