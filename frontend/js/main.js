// Wiring only: builds the store, the stream, the views and the render loop,
// and connects the form's buttons to the REST API.

import * as api from "./api.js";
import { FormError, RunForm } from "./controls.js";
import { RenderLoop } from "./loop.js";
import { drawEpochChart, drawStepLossChart } from "./render/charts.js";
import { CountersView } from "./render/counters.js";
import { HeatmapView } from "./render/heatmap.js";
import { NetworkView, networkNote } from "./render/network.js";
import { RunNotesView } from "./render/runNotes.js";
import { RunStream } from "./socket.js";
import { Dirty, Store, TERMINAL_STATUSES } from "./state.js";

const store = new Store();
const form = new RunForm(
  document.getElementById("run-form"),
  document.getElementById("form-errors"),
  document.getElementById("dataset-description"),
);
const counters = new CountersView(document.querySelector(".counters"), document.getElementById("connection"));
const network = new NetworkView(document.getElementById("network"));
const heatmaps = new HeatmapView(document.getElementById("heatmaps"));
const runNotes = new RunNotesView({
  trainingSummary: document.getElementById("training-summary"),
  updateNote: document.getElementById("heatmap-update-note"),
});
const charts = {
  stepLoss: document.getElementById("chart-step-loss"),
  epochLoss: document.getElementById("chart-epoch-loss"),
  epochAccuracy: document.getElementById("chart-epoch-accuracy"),
};
const networkNotes = {
  step: document.getElementById("network-step"),
  scale: document.getElementById("network-scale"),
  mask: document.getElementById("network-mask-note"),
};
const stream = new RunStream(store, { onRunEvent: handleRunEvent });
let busy = false;

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function renderNetwork() {
  network.render(store);
  const lastFrame = store.lastFrame;
  let stepNote = `(step ${lastFrame?.step})`;
  if (lastFrame === null) {
    stepNote = store.nextStep > 0 ? `(no mask received since connecting at step ${store.nextStep})` : "(no step yet)";
  }
  setText(networkNotes.step, stepNote);
  const scales = network.rmsWeights.map((rms, layer) => `W[${layer}] ${rms.toPrecision(2)}`);
  setText(networkNotes.scale, scales.length > 0 ? `RMS of w: ${scales.join(", ")}` : "");
  setText(networkNotes.mask, networkNote(store, network));
}

function renderEpochCharts() {
  drawEpochChart(charts.epochLoss, store, { trainKey: "train_loss", testKey: "test_loss", yLabel: "loss", asPercent: false });
  drawEpochChart(charts.epochAccuracy, store, {
    trainKey: "train_accuracy", testKey: "test_accuracy", yLabel: "accuracy", asPercent: true,
  });
}

new RenderLoop(store, {
  [Dirty.COUNTERS]: () => {
    counters.render(store);
    runNotes.render(store);
  },
  [Dirty.CONTROLS]: () => form.updateButtons(store.run?.status ?? null, busy),
  [Dirty.NETWORK]: { render: renderNetwork, expensive: true },
  [Dirty.HEATMAP]: { render: () => heatmaps.render(store), expensive: true },
  [Dirty.STEP_CHART]: () => drawStepLossChart(charts.stepLoss, store),
  [Dirty.EPOCH_CHARTS]: renderEpochCharts,
});

function setBusy(value) {
  busy = value;
  store.markDirty(Dirty.CONTROLS);
}

/** Stores a Run from the API unless the page has moved on to another run meanwhile. */
function applyRun(run) {
  if (store.run !== null && store.run.id !== run.id) return;
  store.setRun(run);
}

async function loadMetrics(runId) {
  try {
    const metrics = await api.getMetrics(runId);
    if (store.run?.id !== runId) return;
    for (const record of metrics.epochs) store.applyEpoch(record);
  } catch (error) {
    console.error(`dropviz: loading metrics of run ${runId} failed: ${error.message}`);
  }
}

async function refreshRun(runId) {
  try {
    applyRun(await api.getRun(runId));
  } catch (error) {
    console.error(`dropviz: refreshing run ${runId} failed: ${error.message}`);
  }
}

function handleRunEvent(message) {
  const runId = store.run?.id;
  if (runId === undefined || message.type !== "status") return;
  refreshRun(runId);
  if (TERMINAL_STATUSES.has(message.status)) loadMetrics(runId);
}

/** Shows a run and streams it, for a new run and for a run named in the URL. */
function openRun(run) {
  stream.close();
  store.clearRun();
  store.setRun(run);
  form.setSpeed(run.max_steps_per_second ?? null);
  history.replaceState(null, "", `#run=${encodeURIComponent(run.id)}`);
  stream.connect(run.id);
  loadMetrics(run.id);
}

async function createRun(event) {
  event.preventDefault();
  let config;
  try {
    config = form.readConfig();
  } catch (error) {
    if (!(error instanceof FormError)) throw error;
    form.showErrors("The run settings are invalid.", error.items);
    return;
  }

  setBusy(true);
  try {
    const run = await api.createRun(config);
    form.clearErrors();
    openRun(run);
  } catch (error) {
    const heading = error.status === 422 ? "The server rejected the run settings." : "Creating the run failed.";
    form.showApiError(heading, error);
  } finally {
    setBusy(false);
  }
}

async function controlRun(action) {
  const runId = store.run?.id;
  if (runId === undefined) return;
  setBusy(true);
  try {
    applyRun(await api.controlRun(runId, action));
    form.clearErrors();
  } catch (error) {
    form.showApiError(`The ${action} request for run ${runId} failed.`, error);
    refreshRun(runId);
  } finally {
    setBusy(false);
  }
}

async function changeSpeed() {
  const run = store.run;
  if (run === null || TERMINAL_STATUSES.has(run.status)) return;
  try {
    applyRun(await api.updateRun(run.id, { max_steps_per_second: form.readSpeed() }));
  } catch (error) {
    form.showApiError(`Changing the speed of run ${run.id} failed.`, error);
  }
}

async function initialize() {
  try {
    const [defaults, datasets] = await Promise.all([api.getDefaults(), api.getDatasets()]);
    form.setDatasets(datasets);
    form.setConfig(defaults);
  } catch (error) {
    form.showErrors("Loading the defaults from the server failed.", [error.message, "Reload the page to try again."]);
  }

  const runId = new URLSearchParams(location.hash.slice(1)).get("run");
  if (runId) {
    try {
      openRun(await api.getRun(runId));
    } catch (error) {
      form.showApiError(`Opening run ${runId} from the address failed.`, error);
    }
  }
}

document.getElementById("run-form").addEventListener("submit", createRun);
for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", () => controlRun(button.dataset.action), { passive: true });
}
document.getElementById("field-speed").addEventListener("change", changeSpeed, { passive: true });

// redraw a view when its box changes size, and everything when the pixel ratio changes
const resizeTargets = [
  [document.getElementById("network"), [Dirty.NETWORK]],
  [document.getElementById("heatmaps"), [Dirty.HEATMAP]],
  [document.querySelector(".charts-panel"), [Dirty.STEP_CHART, Dirty.EPOCH_CHARTS]],
];
const resizeObserver = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const [, names] = resizeTargets.find(([element]) => element === entry.target);
    store.markDirty(...names);
  }
});
for (const [element] of resizeTargets) resizeObserver.observe(element);

function watchPixelRatio() {
  const query = matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`);
  query.addEventListener("change", () => {
    store.markDirty(...Object.values(Dirty));
    watchPixelRatio();
  }, { once: true, passive: true });
}
watchPixelRatio();

// Exposed for debugging in the browser console; the browser test also reads the weights here.
window.dropviz = { store, stream };

initialize();
