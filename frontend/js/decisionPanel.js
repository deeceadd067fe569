// Keeps the input-plane panel (render/planeView.js) current for a run on 2-D
// data and hides it for any other run. It loads the run's examples once, then
// requests predictions on a grid whenever the page's step count passes the
// step of the last reply: at most every TRAINING_REFRESH_MS while the run
// trains, and right after each step otherwise, as when stepping. Requests
// never overlap: a step that arrives during one is handled when it completes.

import { predict } from "./api.js";
import { isTwoDimensional } from "./render/decisionMap.js";
import { PlaneView } from "./render/planeView.js";
import { loadRunData } from "./runData.js";

// Points per axis. The server returns hidden activations for at most 2,500
// points and 256 hidden units (PredictIn.hidden_units in api/schemas.py).
export const PLANE_GRID = 50;
const MAX_HIDDEN_UNITS = 256;
const TRAINING_REFRESH_MS = 1500;
// Only weight scaling is drawn, but the endpoint always averages k sampled
// sub-networks too, so k is as small as it may be.
const PREDICT_BODY = { grid: PLANE_GRID, k: 1, seed: 0, subnetworks: 0 };

function hiddenUnitCount(layerSizes) {
  return layerSizes.slice(1, -1).reduce((sum, size) => sum + size, 0);
}

function describeUnits(layerSizes) {
  const hiddenTotal = hiddenUnitCount(layerSizes);
  if (hiddenTotal === 0) return "This network has no hidden layer.";
  if (hiddenTotal > MAX_HIDDEN_UNITS) {
    return `Thumbnails need at most ${MAX_HIDDEN_UNITS} hidden units in all; this network has ${hiddenTotal}.`;
  }
  return "Each thumbnail is one hidden unit's activation over the same plane, in the full network with "
    + "weight scaling; each layer has one symmetric scale. A faded, dashed thumbnail's unit was dropped in "
    + "the step the network view shows.";
}

export class DecisionPanel {
  /**
   * `root` is the panel (index.html, #plane-panel). `getSource()` returns the
   * store-like object the network view draws, whose `lastFrame` marks the
   * dropped units' thumbnails.
   */
  constructor(store, root, { getSource = () => store } = {}) {
    this.store = store;
    this.view = new PlaneView(root);
    this.getSource = getSource;
    this.runId = null;
    this.generation = 0; // bumped for every new run, so replies for an older one are dropped
    this.coveredStep = -1; // steps completed when the shown weights were read
    this.inFlight = false;
    this.lastRequestAt = -Infinity;
    this.timer = null;
    this.markedFrame = null;
    this.statusText = "";
    this.dataNote = "";
    store.subscribe(() => this.update());
  }

  /** Follows the store: switches runs, marks dropped units and schedules requests. Cheap when nothing changed. */
  update() {
    const run = this.store.run;
    const runId = run !== null && isTwoDimensional(run) ? run.id : null;
    if (runId !== this.runId) this.switchRun(run, runId);
    if (runId === null) return;
    const lastFrame = this.getSource().lastFrame;
    if (lastFrame !== this.markedFrame) {
      this.markedFrame = lastFrame;
      this.view.markKept(lastFrame);
    }
    this.schedule();
  }

  switchRun(run, runId) {
    this.generation += 1;
    clearTimeout(this.timer);
    this.timer = null;
    this.inFlight = false;
    this.runId = runId;
    this.coveredStep = -1;
    this.markedFrame = null;
    this.dataNote = "";
    this.view.clear();
    this.view.setVisible(runId !== null);
    if (runId === null) return;
    this.showStatus("Loading the run's examples and the first predictions…");
    this.loadData(run, this.generation);
  }

  async loadData(run, generation) {
    let loaded;
    try {
      loaded = await loadRunData(run);
    } catch (error) {
      loaded = { skipped: `loading the run's data failed (${error.message})` };
    }
    if (generation !== this.generation) return;
    if (loaded.skipped) {
      this.dataNote = ` Examples are not drawn: ${loaded.skipped}.`;
      this.view.setData(null, null);
      this.showStatus(this.statusText);
    } else {
      this.view.setData(loaded.splits, loaded.classNames);
    }
  }

  showStatus(text) {
    this.statusText = text;
    this.view.setStatus(text + this.dataNote);
  }

  /** Starts a request now, or sets a timer for when one may start. */
  schedule() {
    if (this.inFlight || this.timer !== null) return;
    if (this.store.stepsCompleted <= this.coveredStep) return;
    const waitMs = this.store.run.status === "running"
      ? this.lastRequestAt + TRAINING_REFRESH_MS - performance.now()
      : 0;
    if (waitMs > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.schedule();
      }, waitMs);
      return;
    }
    this.refresh();
  }

  async refresh() {
    const generation = this.generation;
    const run = this.store.run;
    const requestedStep = this.store.stepsCompleted;
    const hiddenTotal = hiddenUnitCount(run.layer_sizes);
    const body = { ...PREDICT_BODY, hidden_units: hiddenTotal > 0 && hiddenTotal <= MAX_HIDDEN_UNITS };
    this.inFlight = true;
    this.lastRequestAt = performance.now();
    try {
      const reply = await predict(run.id, body);
      if (generation !== this.generation) return;
      // the server's weights may be a step ahead of the stream
      this.coveredStep = Math.max(requestedStep, reply.step);
      this.view.show(reply, run.layer_sizes, describeUnits(run.layer_sizes));
      this.showStatus(
        `Colour: the class the full network predicts with weight scaling, dropout's evaluation rule, on a `
          + `${PLANE_GRID} × ${PLANE_GRID} grid over the standardized inputs. Updated every `
          + `${TRAINING_REFRESH_MS / 1000} s while training and after each step otherwise.`,
      );
    } catch (error) {
      if (generation !== this.generation) return;
      this.coveredStep = requestedStep; // try again after the next step, not in a loop
      this.showStatus(`Predicting on the grid failed: ${error.message} The panel tries again after the next step.`);
    } finally {
      if (generation === this.generation) {
        this.inFlight = false;
        this.schedule();
      }
    }
  }
}
