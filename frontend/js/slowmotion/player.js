// Slow motion: plays each training step as five phases (captions.js PHASES)
// over the stream's step-locked mode (docs/protocol.md). While it is on, the
// stream worker holds every steps frame and the stream hands the player its
// masks, metrics and changed weights (RunStream.setStepsGate). The player
// shows the frame's mask, forward, loss and backward phases on the weights
// before the step, has the worker apply the frame at the update phase, and
// acknowledges it when that phase ends. The trainer waits for
// the acknowledgement before its next step, so the run advances exactly one
// step per played step. Pausing delays the acknowledgement, and with it the
// run. The player touches no DOM: `onChange()` tells the view to redraw.

import { PHASES } from "./captions.js";

export const MIN_PHASE_SECONDS = 0.3;
export const MAX_PHASE_SECONDS = 2;
export const DEFAULT_PHASE_SECONDS = 1;
// At most this many received frames wait to be played. One more, as after
// many quick REST steps, applies the current and every waiting frame at once.
const MAX_WAITING_FRAMES = 8;
const WAIT_SLICE_MS = 40; // pausing and switching off take effect within this
const REVEAL_DELAY_MS = 60; // all units shown kept this long before the mask, so its change is seen

function sleep(milliseconds) {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/** Returns the store-like lastFrame of a one-step frame, as Store.applySteps builds it. */
function lastFrameOf(frame) {
  return {
    frame,
    step: frame.firstStep,
    epoch: frame.epochs[0],
    masks: frame.masks[0],
    maskRows: frame.maskRows[0],
    loss: frame.losses[0],
    batchAccuracy: frame.batchAccuracies[0],
  };
}

/**
 * Counts the weights with a nonzero delta, and all weights, over the layers
 * the frame carries. `frame.weightChanges` has per weight layer a nonzero
 * value where the weight's delta is nonzero, or null for a layer not carried.
 */
export function countChangedWeights(frame) {
  let changed = 0;
  let total = 0;
  for (const changes of frame.weightChanges) {
    if (changes === null) continue;
    total += changes.length;
    for (let index = 0; index < changes.length; index++) if (changes[index] !== 0) changed++;
  }
  return { changed, total };
}

/** Clamps a phase duration in seconds to the allowed range; NaN gives the default. */
export function clampPhaseSeconds(seconds) {
  if (!Number.isFinite(seconds)) return DEFAULT_PHASE_SECONDS;
  return Math.min(MAX_PHASE_SECONDS, Math.max(MIN_PHASE_SECONDS, seconds));
}

export class SlowMotionPlayer {
  /** `stream` is the page's RunStream; `onChange()` runs after every change of phase or setting. */
  constructor(store, stream, { onChange = () => {} } = {}) {
    this.store = store;
    this.stream = stream;
    this.onChange = onChange;
    this.enabled = false;
    this.paused = false;
    this.phaseSeconds = DEFAULT_PHASE_SECONDS;
    this.waiting = []; // received frames not yet played, oldest first
    this.current = null; // { frame, lastFrame, phase, layer, revealed, applied, changed, total }
    this.skipped = null; // { firstStep, lastStep } of the latest frame applied without playing
    this.generation = 0; // bumped when the played frames become stale: switched off, new snapshot or run
    this.playing = false;
    store.addFrameListener(this);
  }

  /**
   * A store-like object for the network view while a step's mask, forward,
   * loss or backward phase plays, or null. It has the step's masks with the
   * weights from before its update; before the mask is revealed it has no
   * frame, so every unit is drawn kept.
   */
  get source() {
    const current = this.current;
    if (current === null || current.applied) return null;
    const store = this.store;
    return {
      run: store.run,
      layerSizes: store.layerSizes,
      inputShape: store.inputShape,
      weights: store.weights,
      biases: store.biases,
      lastFrame: current.revealed ? current.lastFrame : null,
      slowMotionStep: current.lastFrame.step,
    };
  }

  /** Turns slow motion on or off; on switches the stream to step-locked mode, off restores the normal pace. */
  setEnabled(enabled) {
    if (enabled === this.enabled) return;
    this.enabled = enabled;
    if (enabled) {
      this.stream.setStepsGate(this);
      this.stream.setOptions({ step_locked: true });
    } else {
      this.flush();
      this.stream.setStepsGate(null);
      this.stream.setOptions({ step_locked: false });
      this.paused = false;
    }
    this.onChange();
  }

  setPhaseSeconds(seconds) {
    this.phaseSeconds = clampPhaseSeconds(seconds);
    this.onChange();
  }

  setPaused(paused) {
    this.paused = paused;
    this.onChange();
  }

  /** Takes a steps frame, without its deltas, from the stream (RunStream's steps gate). */
  receive(frame) {
    this.waiting.push(frame);
    if (this.waiting.length > MAX_WAITING_FRAMES) {
      this.flush();
      this.onChange();
    }
    if (!this.playing) this.play();
  }

  // store frame listener: a new run makes the waiting frames stale. The page's
  // store gets no snapshots (the worker applies them); RunStream calls
  // forget() when a snapshot arrives.
  onSnapshot() {
    this.forget();
  }

  onClear() {
    this.forget();
  }

  onSteps() {}

  forget() {
    this.generation += 1;
    this.waiting = [];
    this.current = null;
    this.skipped = null;
    this.onChange();
  }

  /** Applies the current and every waiting frame at once and acknowledges the last, for switching off. */
  flush() {
    const frames = [];
    if (this.current !== null && !this.current.applied) frames.push(this.current.frame);
    frames.push(...this.waiting);
    this.generation += 1;
    this.waiting = [];
    this.current = null;
    for (const frame of frames) this.applyWithoutPlaying(frame);
  }

  applyWithoutPlaying(frame) {
    if (!this.stream.applySteps(frame)) return;
    const lastStep = frame.firstStep + frame.stepCount - 1;
    this.skipped = { firstStep: frame.firstStep, lastStep };
    this.stream.acknowledge(lastStep);
  }

  async play() {
    this.playing = true;
    try {
      while (this.enabled && this.waiting.length > 0) {
        const generation = this.generation;
        const frame = this.waiting.shift();
        // Steps merged into one frame, as trained before the switch to step-locked mode, have no single mask to show.
        if (frame.stepCount > 1) {
          this.applyWithoutPlaying(frame);
          this.onChange();
          continue;
        }
        const finished = await this.playFrame(frame, generation);
        if (!finished) continue;
        this.current = null;
        this.onChange();
      }
    } finally {
      this.playing = false;
    }
  }

  /** Plays one single-step frame; returns false when it was cut short, leaving its frame to flush() or a snapshot. */
  async playFrame(frame, generation) {
    const current = {
      frame, lastFrame: lastFrameOf(frame), phase: PHASES[0], layer: 0, revealed: false, applied: false,
      ...countChangedWeights(frame),
    };
    this.current = current;
    this.skipped = null;
    const phaseMs = () => this.phaseSeconds * 1000;
    const layerCount = frame.weightChanges.length;
    const show = (changes) => {
      Object.assign(current, changes);
      this.onChange();
    };

    show({ phase: "mask" });
    if (!await this.wait(REVEAL_DELAY_MS, generation)) return false;
    show({ revealed: true });
    if (!await this.wait(phaseMs() - REVEAL_DELAY_MS, generation)) return false;
    for (let layer = 0; layer < layerCount; layer++) {
      show({ phase: "forward", layer });
      if (!await this.wait(phaseMs() / layerCount, generation)) return false;
    }
    show({ phase: "loss", layer: layerCount - 1 });
    if (!await this.wait(phaseMs(), generation)) return false;
    for (let layer = layerCount - 1; layer >= 0; layer--) {
      show({ phase: "backward", layer });
      if (!await this.wait(phaseMs() / layerCount, generation)) return false;
    }

    // the weights change here, so the heatmaps show this step's ΔW from now on
    if (!this.stream.applySteps(frame)) return false;
    show({ phase: "update", applied: true });
    const waited = await this.wait(phaseMs(), generation);
    this.stream.acknowledge(frame.firstStep);
    return waited;
  }

  /** Waits `milliseconds` of unpaused time; returns false when the frame became stale meanwhile. */
  async wait(milliseconds, generation) {
    let remaining = milliseconds;
    while (remaining > 0 || this.paused) {
      if (generation !== this.generation || !this.enabled) return false;
      const start = performance.now();
      await sleep(Math.min(WAIT_SLICE_MS, Math.max(remaining, 1)));
      if (!this.paused) remaining -= performance.now() - start;
    }
    return generation === this.generation && this.enabled;
  }
}
