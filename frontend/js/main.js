// Wiring only: builds the store, the stream, the views and the render loop,
// and connects the form's buttons to the REST API.

import * as api from "./api.js";
import { FormError, RunForm } from "./controls.js";
import { CsvUpload } from "./csvUpload.js";
import { DecisionPanel } from "./decisionPanel.js";
import { RenderLoop } from "./loop.js";
import { RunPicker } from "./runPicker.js";
import { drawEpochChart, drawStepLossChart } from "./render/charts.js";
import { CountersView } from "./render/counters.js";
import { HeatmapView } from "./render/heatmap.js";
import { NetworkView, networkNote } from "./render/network.js";
import { PinnedView } from "./render/pinnedView.js";
import { RunNotesView } from "./render/runNotes.js";
import { SlowMotionView } from "./render/slowMotionView.js";
import { SubnetworkMeterView } from "./render/subnetworkMeterView.js";
import { Tooltip } from "./render/tooltip.js";
import { TrainingCountsView } from "./render/trainingCountsView.js";
import { RunStream } from "./socket.js";
import { Dirty, Store, TERMINAL_STATUSES } from "./state.js";
import { ClassroomMode } from "./classroom.js";
import { ReplayController } from "./replay/replayController.js";
import { ShareState } from "./share.js";
import { SlowMotionPlayer } from "./slowmotion/player.js";
import { RunTransfer } from "./transfer.js";
import { StreamWorkerClient } from "./worker/workerClient.js";

const store = new Store();
// the worker applies the frames and keeps the lessons' counts, and this replaces LessonState here
const lessons = new StreamWorkerClient(store);
const form = new RunForm(
  document.getElementById("run-form"),
  document.getElementById("form-errors"),
  document.getElementById("dataset-description"),
);
const counters = new CountersView(document.querySelector(".counters"), document.getElementById("connection"));
const tooltip = new Tooltip();
let hovered = null; // { target, clientX, clientY } while the pointer is over a unit, link or cell


function targetKey(target) {
  if (target.kind === "unit") return `unit:${target.layer}:${target.unit}`;
  if (target.kind === "block") return `block:${target.layer}:${target.sourceBlock}:${target.destinationBlock}`;
  return `weight:${target.layer}:${target.source}:${target.destination}`;
}

/** Shows the hovered target's numbers: a summary block's from the view, a unit's or weight's from the worker. */
function showTooltip() {
  if (hovered === null || store.layerSizes === null) return;
  const { target } = hovered;
  const key = targetKey(target);
  if (target.kind === "block") {
    tooltip.show(network.summary.describeBlock(target, store.layerSizes.length), hovered.clientX, hovered.clientY, key);
    return;
  }
  lessons.describe(target).then((content) => {
    // the pointer may have moved on while the worker looked the numbers up
    if (content === null || hovered === null || targetKey(hovered.target) !== key) return;
    tooltip.show(content, hovered.clientX, hovered.clientY, key);
  });
}

const hoverCallbacks = {
  onHover(target, event) {
    hovered = { target: { kind: "weight", ...target }, clientX: event.clientX, clientY: event.clientY };
    showTooltip();
  },
  onLeave() {
    hovered = null;
    tooltip.hide();
  },
  onPin({ layer, source, destination }) {
    lessons.pin(layer, source, destination);
  },
};
const network = new NetworkView(document.getElementById("network"), hoverCallbacks);
const heatmaps = new HeatmapView(document.getElementById("heatmaps"), hoverCallbacks);
const pinnedView = new PinnedView(document.getElementById("pinned"), document.getElementById("pinned-empty"), {
  onUnpin: (key) => lessons.unpin(key),
});
const countsView = new TrainingCountsView(
  {
    summary: document.getElementById("counts-summary"),
    lesson: document.getElementById("counts-lesson"),
    units: document.getElementById("counts-units"),
    weights: document.getElementById("counts-weights"),
  },
  hoverCallbacks,
);
const meterView = new SubnetworkMeterView({
  steps: document.getElementById("meter-steps"),
  distinct: document.getElementById("meter-distinct"),
  repeats: document.getElementById("meter-repeats"),
  expected: document.getElementById("meter-expected"),
  possible: document.getElementById("meter-possible"),
  verdict: document.getElementById("meter-verdict"),
  method: document.getElementById("meter-method"),
});
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
const stream = new RunStream(store, lessons, { onRunEvent: handleRunEvent });
let busy = false;
const speedField = document.getElementById("field-speed");
const replay = new ReplayController(store, document.getElementById("replay"), document.getElementById("replay-heatmap-note"), {
  onChange: () => store.markDirty(Dirty.NETWORK, Dirty.HEATMAP),
});
const slowMotion = new SlowMotionPlayer(store, stream, {
  onChange: () => {
    slowMotionView.render();
    store.markDirty(Dirty.NETWORK);
  },
});
const slowMotionView = new SlowMotionView(document.getElementById("slowmo"), slowMotion, {
  store, network, heatmaps, networkContainer: document.getElementById("network"), onSettingsChange: () => share.update(),
});
const plane = new DecisionPanel(store, document.getElementById("plane-panel"), {
  getSource: () => replay.source ?? slowMotion.source ?? store,
});
const share = new ShareState(document.getElementById("run-form"), {
  getRunId: () => store.run?.id ?? null,
  getClassroom: () => classroom.enabled,
  getSlowMotion: () => (slowMotion.enabled ? slowMotion.phaseSeconds : null),
});

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/** Tells the stream worker the layouts of the views it computes pictures for. */
function sendWorkerViews() {
  const pictures = heatmaps.pictureRequest;
  lessons.setViews(`${network.sceneKey}|${pictures?.key}`, network.workerScene, pictures);
}

/**
 * The worker's drawings for the network view's `source`: all of them for the
 * live store. A step played in slow motion has the live weights, since its
 * frame is not applied yet, but its own mask: the view draws its links here
 * from the page's copy of the weights, and only a network too large for that
 * copy takes the worker's block statistics for its summary.
 */
function liveImagesFor(source) {
  if (source === store) return lessons.networkImages;
  if (source.slowMotionStep !== undefined && source.weights === null) {
    return { networkImage: null, summaryStats: lessons.networkImages.summaryStats };
  }
  return null;
}

function renderNetwork() {
  // while a step is replayed or played in slow motion, the view draws it instead of the live store
  const source = replay.source ?? slowMotion.source ?? store;
  network.render(source, lessons.pinned.weights, liveImagesFor(source));
  sendWorkerViews();
  const lastFrame = source.lastFrame;
  let stepNote = source === store ? `(step ${lastFrame?.step})` : `(replay: step ${lastFrame?.step}, not the latest)`;
  if (source.slowMotionStep !== undefined) {
    stepNote = `(slow motion: step ${source.slowMotionStep}, weights before its update)`;
  } else if (lastFrame === null) {
    stepNote = store.nextStep > 0 ? `(no mask received since connecting at step ${store.nextStep})` : "(no step yet)";
  }
  setText(networkNotes.step, stepNote);
  const scales = network.rmsWeights.map((rms, layer) => `W[${layer}] ${rms.toPrecision(2)}`);
  setText(networkNotes.scale, scales.length > 0 ? `RMS of w: ${scales.join(", ")}` : "");
  setText(networkNotes.mask, networkNote(source, network));
}

function renderEpochCharts() {
  drawEpochChart(charts.epochLoss, store, { trainKey: "train_loss", testKey: "test_loss", yLabel: "loss", asPercent: false });
  drawEpochChart(charts.epochAccuracy, store, {
    trainKey: "train_accuracy", testKey: "test_accuracy", yLabel: "accuracy", asPercent: true,
  });
}

// The stream worker sends an update at most every 66 ms, with every view it
// changed, and the views draw in the animation frame after it. So they all
// change in the same frames: each frame that changes something costs a
// compositor commit, and 15 a second leave most frames free. The network and
// the heatmaps only put pixels that the worker computed. The counts and the
// pinned weights still draw histograms and charts here, so at most one of
// those two draws per frame.
//
// Views off screen draw less often (loop.js). onVisibility passes the worker the
// off-screen views whose pictures it computes, so it computes them less often too.
const WORKER_PICTURE_VIEWS = [Dirty.NETWORK, Dirty.HEATMAP, Dirty.TRAINING_COUNTS, Dirty.PINNED];
const countsPanel = document.querySelector(".counts-panel");
const renderLoop = new RenderLoop(store, {
  [Dirty.COUNTERS]: () => {
    counters.render(store);
    runNotes.render(store);
  },
  [Dirty.CONTROLS]: () => form.updateButtons(store.runMissing ? null : (store.run?.status ?? null), busy),
  [Dirty.NETWORK]: { render: renderNetwork, visibleWith: [document.getElementById("network")] },
  [Dirty.HEATMAP]: {
    render: () => {
      if (replay.source !== null) heatmaps.render(replay.source, replay.heatmapHistory);
      else heatmaps.render(store, null, lessons.pictures);
      sendWorkerViews();
      slowMotionView.placeFlash(); // the overlays follow the maps' layout
    },
    visibleWith: [document.getElementById("heatmaps")],
  },
  [Dirty.STEP_CHART]: { render: () => drawStepLossChart(charts.stepLoss, store), visibleWith: [charts.stepLoss] },
  // small runs finish 30 epochs a second, more than a chart of all epochs can show
  [Dirty.EPOCH_CHARTS]: { render: renderEpochCharts, minIntervalMs: 250, visibleWith: [charts.epochLoss, charts.epochAccuracy] },
  [Dirty.SUBNETWORK_METER]: () => meterView.render(store, lessons),
  [Dirty.TRAINING_COUNTS]: {
    render: () => {
      const drawsMore = countsView.render(store, lessons); // a few figures per call, until all are drawn
      showTooltip(); // the hovered unit's or weight's numbers change as steps arrive
      return drawsMore;
    },
    expensive: true,
    budget: 0.2,
    visibleWith: [countsPanel],
  },
  [Dirty.PINNED]: {
    render: () => pinnedView.render(store, lessons),
    expensive: true,
    visibleWith: [document.querySelector(".pinned-panel")],
  },
}, {
  onVisibility: (offscreen) => lessons.setOffscreenViews(WORKER_PICTURE_VIEWS.filter((name) => offscreen.has(name))),
});

function setBusy(value) {
  busy = value;
  store.markDirty(Dirty.CONTROLS);
}

/**
 * Stores a Run from the API unless the page has moved on to another run
 * meanwhile. The speed field follows a speed that another tab or an API
 * client set, unless it has the focus.
 */
function applyRun(run) {
  if (store.run !== null && store.run.id !== run.id) return;
  store.setRun(run);
  // compared with the field, not the stored run: other messages may have updated the run first
  const speed = run.max_steps_per_second ?? null;
  if (speed !== form.readSpeed() && document.activeElement !== speedField) form.setSpeed(speed);
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

/** Marks the shown run as gone when `error` is the server's 404 for it; returns whether it was. */
function noteMissingRun(runId, error) {
  if (error.status !== 404 || store.run?.id !== runId) return false;
  store.markRunMissing();
  return true;
}

async function refreshRun(runId) {
  try {
    applyRun(await api.getRun(runId));
  } catch (error) {
    if (noteMissingRun(runId, error)) return;
    console.error(`dropviz: refreshing run ${runId} failed: ${error.message}`);
  }
}

function handleRunEvent(message) {
  const runId = store.run?.id;
  if (runId === undefined || !["status", "speed", "snapshot"].includes(message.type)) return;
  refreshRun(runId);
  if (TERMINAL_STATUSES.has(message.status)) loadMetrics(runId);
  if (message.type === "status") runPicker.refresh(); // its line shows each run's status
}

/** Shows a run and streams it: a new or imported run, one named in the URL or chosen in the run list. */
function openRun(run) {
  stream.close();
  store.clearRun();
  store.setRun(run);
  form.setSpeed(run.max_steps_per_second ?? null);
  share.update();
  stream.connect(run.id);
  loadMetrics(run.id);
  runPicker.refresh();
}

async function createRun(event) {
  event.preventDefault();
  // the buttons are disabled in the next animation frame, and a double click's second press comes sooner
  if (busy) return;
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
  if (runId === undefined || busy) return;
  setBusy(true);
  try {
    applyRun(await api.controlRun(runId, action));
    form.clearErrors();
  } catch (error) {
    if (noteMissingRun(runId, error)) {
      form.showErrors(`The ${action} request for run ${runId} failed.`, [
        "The server has no run with this id: it was deleted, or this server keeps its runs in another state folder. Create a new run.",
      ]);
      stream.close();
      return;
    }
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
    const rejected = share.applyToForm(form); // a shared link's config, over the defaults
    if (rejected.length > 0) {
      form.showErrors(
        "The link has values that its fields cannot take; those fields keep their defaults.",
        rejected.map(({ field, value }) => ({
          field,
          label: form.labelOf(field),
          text: field === "max_steps_per_second"
            ? `expected steps per second above 0, or nothing for full speed; got "${value}".`
            : `expected a number; got "${value}".`,
        })),
      );
    }
  } catch (error) {
    form.showErrors("Loading the defaults from the server failed.", [error.message, "Reload the page to try again."]);
  }

  const runId = share.initialRunId;
  if (runId) {
    try {
      const run = await api.getRun(runId);
      if (!share.hasConfig) form.setConfig(run.config); // a link with only run=<id>
      openRun(run);
    } catch (error) {
      if (error.status === 404) {
        form.showErrors(`Opening run ${runId} from the address failed.`, [
          "The server has no run with this id: it was deleted, or this server keeps its runs in another state folder. Create a new run.",
        ]);
      } else {
        form.showApiError(`Opening run ${runId} from the address failed.`, error);
      }
    }
  }
  share.update(); // the address now names only what the page shows
}

document.getElementById("run-form").addEventListener("submit", createRun);
for (const button of document.querySelectorAll("button[data-action]")) {
  button.addEventListener("click", () => controlRun(button.dataset.action), { passive: true });
}
speedField.addEventListener("change", changeSpeed, { passive: true });

const heatmapMode = document.getElementById("heatmap-mode");
const heatmapScale = document.getElementById("heatmap-scale");
function changeHeatmapMode() {
  heatmaps.setMode(heatmapMode.value, heatmapScale.value);
  store.markDirty(Dirty.HEATMAP);
}
heatmapMode.addEventListener("change", changeHeatmapMode, { passive: true });
heatmapScale.addEventListener("change", changeHeatmapMode, { passive: true });
changeHeatmapMode();

const networkLinks = document.getElementById("network-links");
networkLinks.addEventListener("change", () => {
  network.setLinkMode(networkLinks.value);
  store.markDirty(Dirty.NETWORK);
}, { passive: true });

new CsvUpload(document.getElementById("csv-upload"), {
  async onUploaded(dataset) {
    try {
      form.setDatasets(await api.getDatasets());
      form.selectDataset(dataset.name);
    } catch (error) {
      form.showErrors("Reloading the data sets failed.", [error.message]);
    }
  },
});

// redraw a view when its box changes size, and everything when the pixel ratio changes
const resizeTargets = [
  [document.getElementById("network"), [Dirty.NETWORK]],
  [document.getElementById("heatmaps"), [Dirty.HEATMAP]],
  [document.getElementById("pinned"), [Dirty.PINNED]],
  [document.getElementById("counts-units"), [Dirty.TRAINING_COUNTS]],
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

const runPicker = new RunPicker(document.getElementById("run-picker"), {
  onOpen: (run) => {
    form.setConfig(run.config); // so New run and Copy link repeat the run opened
    form.clearErrors();
    openRun(run);
  },
  getRunId: () => store.run?.id ?? null,
});
runPicker.refresh();

const toolsStatus = document.getElementById("tools-status");
const classroom = new ClassroomMode(
  document.getElementById("run-form"),
  document.getElementById("classroom-toggle"),
  document.getElementById("classroom-bar"),
  { onChange: () => share.update() },
);
if (share.initialClassroom) classroom.set(true);
if (share.initialSlowMotion !== null) slowMotionView.enable(share.initialSlowMotion);
document.getElementById("copy-link").addEventListener("click", async () => {
  setText(toolsStatus, await share.copyLink());
}, { passive: true });
const transfer = new RunTransfer(
  {
    archive: document.getElementById("download-archive"),
    weights: document.getElementById("download-weights"),
    file: document.getElementById("import-file"),
    status: toolsStatus,
  },
  { onImported: openRun },
);
store.subscribe(() => transfer.setRun(store.run?.id ?? null));

// Exposed for debugging in the browser console; the browser tests also read
// the weights (readWeights resolves to the worker's exact copy) and the
// replayed step's weights here.
window.dropviz = { store, stream, lessons, renderLoop, replay, share, plane, slowMotion, readWeights: () => lessons.readWeights() };

initialize();
