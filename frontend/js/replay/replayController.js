// The replay timeline: a slider over every recorded step of the current run,
// live or finished, that shows one step's sub-network and metrics, optionally
// with that step's exact weights and ΔW, and plays a range of steps back.
// While a step is replayed, `source` is a store-like object that the page's
// own views draw instead of the live store. Live frames still update the
// store, so the counters stay live, but they never replace the replayed view.
// Every step is reachable: the slider moves by one step, and playback visits
// each step of its range in order.

import { StepWeights, subtractWeights } from "./stepWeights.js";
import { StepWindows, WINDOW_STEPS } from "./stepWindows.js";

const WEIGHTS_DELAY_MS = 150; // while the slider moves, weights load once it rests this long
const PREFETCH_MARGIN_STEPS = 64; // playback loads the next window this many steps ahead

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function formatPercent(value) {
  return Number.isFinite(value) ? `${(value * 100).toFixed(1)}%` : "–";
}

function sleep(milliseconds) {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

export class ReplayController {
  /**
   * `root` contains the replay controls (see index.html, #replay);
   * `heatmapNote` is the sentence shown above the heatmaps while replaying;
   * `onChange()` is called whenever the replayed view changes.
   */
  constructor(store, root, heatmapNote, { onChange = () => {} } = {}) {
    this.store = store;
    this.root = root;
    this.heatmapNote = heatmapNote;
    this.onChange = onChange;
    const find = (id) => root.querySelector(`#${id}`);
    this.elements = {
      state: find("replay-state"),
      back: find("replay-back"),
      previous: find("replay-previous"),
      next: find("replay-next"),
      slider: find("replay-slider"),
      stepInput: find("replay-step"),
      from: find("replay-from"),
      to: find("replay-to"),
      speed: find("replay-speed"),
      play: find("replay-play"),
      showWeights: find("replay-weights"),
      info: find("replay-info"),
      note: find("replay-note"),
    };
    this.runId = null;
    this.lastStep = -1; // highest step the run has completed, -1 before the first
    this.toFollowsEnd = true; // the range's end tracks lastStep until the user edits it
    this.reset(null);
    this.listen();
    store.subscribe(() => this.followStore());
    this.render();
  }

  /** Forgets everything replayed, for a new run or none. */
  reset(runId) {
    this.runId = runId;
    this.windows = runId === null ? null : new StepWindows(runId);
    this.stepWeights = runId === null ? null : new StepWeights(runId);
    this.step = null; // the replayed step; null while live
    this.record = null;
    this.clearWeights();
    this.generation = 0; // bumped by every change of step, so stale replies are dropped
    this.playToken = 0; // bumped to cancel playback
    this.playing = false;
    this.error = "";
    this.lastStep = -1;
    this.toFollowsEnd = true;
  }

  clearWeights() {
    this.weights = null; // per layer Float32Array (n_l, n_{l+1}), right after weightsStep
    this.biases = null;
    this.deltas = null; // per layer weights(weightsStep) − weights(weightsStep − 1), or null
    this.weightsStep = null;
    this.weightsLoading = false;
    this.weightsTimer = null;
  }

  get replaying() {
    return this.step !== null;
  }

  /**
   * A store-like object with the replayed step for the views, or null while
   * live. It has the fields the views read from the store: run, layerSizes,
   * inputShape, weights, biases and lastFrame, whose `frame` covers only the
   * replayed step. Without loaded weights it carries the live weights.
   */
  get source() {
    if (this.step === null || this.record === null) return null;
    const store = this.store;
    const record = this.record;
    const layerCount = record.masks.length;
    const deltas = this.weightsStep === record.step ? this.deltas : null;
    return {
      run: store.run,
      layerSizes: store.layerSizes ?? store.run?.layer_sizes ?? null,
      inputShape: store.inputShape,
      weights: this.weights ?? store.weights,
      biases: this.biases ?? store.biases,
      lastFrame: {
        frame: {
          firstStep: record.step,
          stepCount: 1,
          maskScope: record.maskScope,
          weightDeltas: deltas ?? new Array(layerCount).fill(null),
          biasDeltas: new Array(layerCount).fill(null),
        },
        step: record.step,
        epoch: record.epoch,
        masks: record.masks,
        maskRows: record.maskRows,
        loss: record.loss,
        batchAccuracy: record.batchAccuracy,
      },
    };
  }

  /**
   * Stands in for the heatmaps' update history while replaying: the ΔW mode
   * shows the replayed step's ΔW when it is loaded, and the other modes, which
   * accumulate over live frames, show nothing.
   */
  get heatmapHistory() {
    const step = this.step;
    return {
      firstStep: step,
      values: (mode, layer, lastFrame) => (mode === "delta" ? lastFrame?.frame.weightDeltas[layer] ?? null : null),
      scaleBound: (mode, layer, scale, shownMax) => shownMax,
    };
  }

  listen() {
    const { elements } = this;
    elements.slider.addEventListener("input", () => {
      this.stopPlayback();
      this.showStep(Number(elements.slider.value), { weightsDelayMs: WEIGHTS_DELAY_MS });
    }, { passive: true });
    elements.stepInput.addEventListener("change", () => {
      const value = Number(elements.stepInput.value);
      if (!Number.isInteger(value)) return;
      this.stopPlayback();
      this.showStep(value);
    }, { passive: true });
    elements.previous.addEventListener("click", () => this.moveBy(-1), { passive: true });
    elements.next.addEventListener("click", () => this.moveBy(1), { passive: true });
    elements.back.addEventListener("click", () => this.backToLive(), { passive: true });
    elements.play.addEventListener("click", () => (this.playing ? this.stopPlayback() : this.play()), { passive: true });
    elements.to.addEventListener("change", () => {
      this.toFollowsEnd = Number(elements.to.value) >= this.lastStep;
    }, { passive: true });
    elements.showWeights.addEventListener("change", () => {
      if (elements.showWeights.checked && this.step !== null) this.loadWeights(this.step, this.generation);
      if (!elements.showWeights.checked) this.clearWeights();
      this.changed();
    }, { passive: true });
  }

  /** Follows the store: a new run resets the replay, and new steps extend the timeline. */
  followStore() {
    const runId = this.store.run?.id ?? null;
    if (runId !== this.runId) {
      this.reset(runId);
      this.changed();
      return;
    }
    const completed = Math.max(this.store.stepsCompleted, this.store.run?.step ?? 0);
    if (completed - 1 !== this.lastStep) {
      const hadSteps = this.lastStep >= 0;
      this.lastStep = completed - 1;
      this.renderRange();
      if (hadSteps !== this.lastStep >= 0) this.render(); // the state line says whether a step exists
    }
  }

  moveBy(offset) {
    this.stopPlayback();
    const from = this.step ?? this.lastStep;
    this.showStep(from + offset);
  }

  backToLive() {
    this.stopPlayback();
    this.step = null;
    this.record = null;
    this.error = "";
    this.generation++;
    clearTimeout(this.weightsTimer);
    this.clearWeights();
    this.changed();
  }

  /**
   * Replays `step`: loads its masks and metrics (from the window cache when
   * possible), then its weights when "Show weights" is on, after
   * `weightsDelayMs`. Resolves once the masks, and with `awaitWeights` the
   * weights, are shown or have failed.
   */
  async showStep(step, { weightsDelayMs = 0, awaitWeights = false } = {}) {
    if (this.runId === null || this.lastStep < 0) return;
    const target = Math.min(Math.max(0, Math.round(step)), this.lastStep);
    const generation = ++this.generation;
    this.step = target;
    this.error = "";
    clearTimeout(this.weightsTimer);
    this.render();

    let record;
    try {
      record = await this.windows.get(target);
    } catch (error) {
      if (generation !== this.generation) return;
      this.error = error.status === 404
        ? `Step ${target} is not stored on the server yet; try again in a moment.`
        : `Loading step ${target} failed: ${error.message}`;
      this.render();
      return;
    }
    if (generation !== this.generation) return;
    this.record = record;
    this.changed();

    if (!this.elements.showWeights.checked) return;
    if (awaitWeights) {
      await this.loadWeights(target, generation);
    } else if (weightsDelayMs > 0) {
      this.weightsTimer = setTimeout(() => this.loadWeights(target, generation), weightsDelayMs);
    } else {
      this.loadWeights(target, generation);
    }
  }

  /** Loads the weights right after `step` and right before it, for the network view and ΔW. */
  async loadWeights(step, generation) {
    this.weightsLoading = true;
    this.render();
    try {
      const [after, before] = await Promise.all([
        this.stepWeights.get(step),
        step > 0 ? this.stepWeights.get(step - 1) : Promise.resolve(null),
      ]);
      if (generation !== this.generation || !this.elements.showWeights.checked) return;
      this.weights = after.weights;
      this.biases = after.biases;
      this.deltas = before === null ? null : subtractWeights(after.weights, before.weights);
      this.weightsStep = step;
    } catch (error) {
      if (generation !== this.generation) return;
      this.error = `Loading the weights of step ${step} failed: ${error.message}`;
    } finally {
      if (generation === this.generation) this.weightsLoading = false;
    }
    if (generation === this.generation) this.changed();
  }

  /**
   * Plays steps from the "from" field to the "to" field, one after another,
   * at most the chosen steps per second. With weights shown, each step waits
   * for its weights, so playback can be slower than chosen. It continues from
   * the replayed step when that lies inside the range.
   */
  async play() {
    const { elements } = this;
    const from = Math.max(0, Number(elements.from.value) || 0);
    const to = Math.min(this.lastStep, Number(elements.to.value));
    if (!Number.isInteger(to) || to < from) {
      this.error = `Cannot play steps ${from} to ${elements.to.value}: the end must be a step from ${from} to ${this.lastStep}.`;
      this.render();
      return;
    }
    const intervalMs = 1000 / Number(elements.speed.value);
    const token = ++this.playToken;
    this.playing = true;
    let step = this.step !== null && this.step >= from && this.step < to ? this.step + 1 : from;
    this.render();

    for (; step <= to && this.playToken === token; step++) {
      const began = performance.now();
      await this.showStep(step, { awaitWeights: true });
      if (this.playToken !== token) return;
      if (this.error !== "") break;
      const nextWindow = step - (step % WINDOW_STEPS) + WINDOW_STEPS;
      if (nextWindow - step === PREFETCH_MARGIN_STEPS && nextWindow <= to) this.windows.load(nextWindow).catch(() => {});
      const waitMs = intervalMs - (performance.now() - began);
      if (waitMs > 0) await sleep(waitMs);
    }
    if (this.playToken === token) {
      this.playing = false;
      this.render();
    }
  }

  stopPlayback() {
    if (!this.playing) return;
    this.playToken++;
    this.playing = false;
    this.render();
  }

  changed() {
    this.render();
    this.onChange();
  }

  /** Writes the slider's and the range fields' bounds after the run gained steps. */
  renderRange() {
    const { elements } = this;
    const max = String(Math.max(0, this.lastStep));
    for (const input of [elements.slider, elements.stepInput, elements.from, elements.to]) {
      if (input.max !== max) input.max = max;
    }
    if (this.toFollowsEnd && elements.to.value !== max) elements.to.value = max;
    if (this.step === null && elements.slider.value !== max) elements.slider.value = max;
    this.renderControls();
  }

  renderControls() {
    const { elements } = this;
    const noSteps = this.runId === null || this.lastStep < 0;
    for (const input of [elements.slider, elements.stepInput, elements.previous, elements.next, elements.from, elements.to, elements.play]) {
      if (input.disabled !== noSteps) input.disabled = noSteps;
    }
    setText(elements.play, this.playing ? "Stop playback" : "Play");
    elements.back.hidden = this.step === null;
  }

  render() {
    const { elements } = this;
    const replaying = this.step !== null;
    this.root.dataset.state = replaying ? "replaying" : "live";
    document.body.dataset.replay = replaying ? "on" : "off";
    this.root.dataset.step = replaying && this.record !== null ? String(this.record.step) : "";
    this.root.dataset.weightsStep = this.weightsStep === null ? "" : String(this.weightsStep);
    this.renderControls();

    if (replaying) {
      const value = String(this.step);
      if (elements.slider.value !== value) elements.slider.value = value;
      if (document.activeElement !== elements.stepInput) elements.stepInput.value = value;
    }
    let stateText = "Live: the views show the latest step";
    if (this.runId === null) stateText = "Replay: create or open a run first";
    else if (this.lastStep < 0) stateText = "Live: no step yet";
    else if (replaying) stateText = `Replaying step ${this.step.toLocaleString("en-US")} of 0–${this.lastStep.toLocaleString("en-US")}`;
    setText(elements.state, stateText);

    const record = replaying && this.record !== null && this.record.step === this.step ? this.record : null;
    setText(elements.info, record === null
      ? ""
      : `epoch ${record.epoch + 1} · batch loss ${Number.isFinite(record.loss) ? record.loss.toFixed(4) : "–"} · ` +
        `batch accuracy ${formatPercent(record.batchAccuracy)}`);
    setText(elements.note, this.error !== "" ? this.error : this.weightsSentence());
    elements.note.dataset.error = this.error !== "" ? "true" : "false";
    this.renderHeatmapNote();
  }

  weightsSentence() {
    if (this.step === null) return "";
    if (!this.elements.showWeights.checked) {
      return "Links are drawn with the latest weights; tick Show weights for this step's own.";
    }
    if (this.weightsLoading) return `Loading the weights of step ${this.step} from the server…`;
    if (this.weightsStep === this.step) return `Links show the exact weights right after step ${this.step}.`;
    return "";
  }

  renderHeatmapNote() {
    const note = this.heatmapNote;
    let text = "";
    let delta = "shown";
    if (this.step !== null) {
      const step = this.step;
      if (!this.elements.showWeights.checked) {
        text = `Replaying step ${step}: its ΔW is not shown. Tick Show weights to load it (two requests to the server).`;
        delta = "none";
      } else if (this.weightsStep === step && this.deltas === null) {
        text = "Replaying step 0: its ΔW is not shown, because the server keeps weights only after a step, none before step 0.";
        delta = "none";
      } else if (this.weightsStep === step) {
        text = `Replaying step ${step}: ΔW = weights after step ${step} − weights after step ${step - 1}, ` +
          "both exact from the server. The trail and cumulative modes show nothing while replaying.";
      } else {
        text = `Replaying step ${step}: loading its ΔW…`;
        delta = "none";
      }
    }
    setText(note, text);
    note.hidden = text === "";
    document.body.dataset.replayDelta = delta;
  }
}
