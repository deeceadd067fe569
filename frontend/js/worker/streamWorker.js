// The stream worker: a module worker that owns the page's copy of the weights
// and everything counted from the frames, so that the main thread only draws.
// It owns the run's WebSocket, because receiving megabytes a second costs
// the thread that owns the socket. It passes the text messages and each
// snapshot's metadata on to the page, joins part frames, decodes, adds the
// deltas to the weights, and keeps the training
// counts, the sub-network tally, the heatmap trails and the pinned weights
// (a Store and a LessonState, as the page had them). It sends the page only
// what the views draw: heatmap pixels at screen size, count histograms, block
// statistics, the sub-network's links as a bitmap, and counters. Hover text
// and exact weights are sent on request.
//
// While the page's steps gate is on (slow motion), each decoded steps frame
// waits here: the page gets its masks, metrics and which weights changed,
// plays the step, and then has it applied ("applyFrame"), before it
// acknowledges the step to the server.
//
// Updates go out at most every PUSH_INTERVAL_MS, and the next one only after
// the page acknowledged the last, so a slow page gets fewer, newer updates
// instead of a queue. Some views have their own least interval
// (MIN_INTERVAL_MS), and a view whose part of an update took long waits
// until VIEW_BUDGET of the time since has passed: at thousands of steps a
// second the counting needs the worker's time more than one more link drawing.

import { describeUnit, describeWeight } from "../lessons/explain.js";
import { LessonState } from "../lessons/lessonState.js";
import {
  decodeSnapshot,
  decodeSteps,
  FRAME_PART,
  FRAME_SNAPSHOT,
  PartAssembler,
  peekSnapshotMeta,
  ProtocolError,
  readFrameType,
} from "../protocol.js";
import { OFFSCREEN_INTERVAL_MS } from "../loop.js";
import { Dirty, Store } from "../state.js";
import { ViewPictures } from "./viewPictures.js";

const PUSH_INTERVAL_MS = 66;
const VIEW_BUDGET = 0.25; // share of the worker's time one view's updates may take
const CLOSE_POLICY_VIOLATION = 1008; // the server also closes an unknown run with it
const CLOSE_ABNORMAL = 1006; // makes the page reconnect
const MIN_INTERVAL_MS = {
  [Dirty.TRAINING_COUNTS]: 400, // reads every counter of every weight
  [Dirty.SUBNETWORK_METER]: 250, // its numbers change little between updates
  [Dirty.PINNED]: 100, // copies each pinned weight's history
};

// The page requests fewer steps frames of a large network from the server, so the
// stream stays near this many bytes a second: a 784-512-512-10 frame carries
// 2.7 MB of float32 deltas, which the server would otherwise send up to 15
// times a second. Merged frames still carry every step's masks and the
// weights' change over their steps, so the counts and the weights stay exact; only
// the drawn sub-network and ΔW change less often. Small networks keep the
// server's 60 frames a second.
const STREAM_BYTES_PER_SECOND = 16_000_000;
const SERVER_DEFAULT_FRAMES_PER_SECOND = 60;

const store = new Store();
const lessons = new LessonState(store);
const assembler = new PartAssembler();
const pictures = new ViewPictures(store, lessons);
const pending = new Set(); // names of views changed since they were last sent
const lastSent = new Map(); // view name → time it was last sent
const viewCosts = new Map(); // view name → ms its part of the last update took
let generation = 0; // the page's count of cleared runs; older updates are ignored there
const sockets = new Map(); // id → WebSocket, until it closes
let connection = null; // id of the socket whose frames are applied
let failedConnection = null; // a socket whose frames are no longer applied
let frameRateRequested = null; // the socket that was asked for a lower frame rate
let frameRateRejected = false; // the server allows fewer frames a second than the page asked for
let views = { network: null, heatmap: null }; // what the page's views need, see "views"
let offscreen = new Set(); // views the page draws only every OFFSCREEN_INTERVAL_MS now
let awaitingAck = false;
let pushTimer = null;
let lastPushTime = -Infinity;
let metricsFrom = null; // first step whose loss and accuracy the page has not been sent
let historyNextStep = null; // next recorded step the page's history messages should bring, once requested
let socketMessages = []; // text messages and snapshot metadata not yet posted to the page
let socketMessageTimer = null;
let lastPushError = null; // logged once, not 15 times a second
let gated = false; // steps frames wait for the page's "applyFrame" instead of being applied on arrival
let gatedFrames = []; // decoded steps frames of `connection` posted to the page and not yet applied, oldest first

store.subscribe(() => {
  for (const name of store.takeDirty()) pending.add(name);
  schedulePush();
});

self.addEventListener("message", ({ data }) => {
  switch (data.type) {
    case "openSocket":
      openSocket(data.id, data.url);
      break;
    case "sendSocket":
      sendText(data.id, data.text);
      break;
    case "closeSocket":
      sockets.get(data.id)?.close(data.code, data.reason);
      break;
    case "clear":
      generation = data.generation;
      metricsFrom = null;
      historyNextStep = null;
      gatedFrames = [];
      store.clearRun();
      break;
    case "gate":
      gated = data.on;
      if (!gated) applyGatedFrames(Infinity); // frames posted while the page switched the gate off
      break;
    case "applyFrame":
      applyGatedFrames(data.firstStep);
      break;
    case "run":
      store.setRun(data.run);
      break;
    case "views":
      views = { network: data.network, heatmap: data.heatmap };
      store.markDirty(Dirty.NETWORK, Dirty.HEATMAP);
      break;
    case "history":
      if (data.generation === generation) addHistory(data.window);
      break;
    case "offscreen":
      offscreen = new Set(data.names);
      clearTimeout(pushTimer); // a view that came near may be due sooner now
      pushTimer = null;
      schedulePush();
      break;
    case "ack":
      awaitingAck = false;
      schedulePush();
      break;
    case "pin":
      lessons.pin(data.layer, data.source, data.destination);
      break;
    case "unpin":
      lessons.unpin(data.key);
      break;
    case "describe":
      self.postMessage({ type: "reply", id: data.id, value: describe(data.target) });
      break;
    case "readWeights":
      self.postMessage({ type: "reply", id: data.id, value: copyWeights() });
      break;
    default:
      console.error(`dropviz worker: unknown message type ${JSON.stringify(data.type)}`);
  }
});

function postSocketEvent(id, event, detail = null, transfer = []) {
  flushSocketMessages();
  self.postMessage({ type: "socket", id, event, detail }, transfer);
}

/**
 * Queues a text message or a snapshot's metadata for the page. The queue goes
 * out with the next update, or within PUSH_INTERVAL_MS when none is due, so
 * the epoch messages of a fast run (30 a second for digits at 5,000 steps a
 * second) redraw the page in the update's frames instead of frames of their own.
 */
function queueSocketMessage(id, event, detail) {
  socketMessages.push({ type: "socket", id, event, detail });
  if (socketMessageTimer !== null) return;
  const delayMs = Math.max(0, lastPushTime + PUSH_INTERVAL_MS - performance.now());
  socketMessageTimer = setTimeout(flushSocketMessages, delayMs);
}

function flushSocketMessages() {
  clearTimeout(socketMessageTimer);
  socketMessageTimer = null;
  for (const message of socketMessages) self.postMessage(message);
  socketMessages = [];
}

function sendText(id, text) {
  const socket = sockets.get(id);
  if (socket?.readyState === WebSocket.OPEN) socket.send(text);
  else console.error(`dropviz worker: socket ${id} is not open; a client message was not sent: ${text}`);
}

/** Opens the page's WebSocket `id`, whose binary messages replace those of any earlier socket. */
function openSocket(id, url) {
  connection = id;
  gatedFrames = [];
  assembler.reset();
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  sockets.set(id, socket);
  socket.addEventListener("open", () => postSocketEvent(id, "open"));
  socket.addEventListener("close", ({ code, reason }) => {
    sockets.delete(id);
    if (code === CLOSE_POLICY_VIOLATION && reason.startsWith("max_frames_per_second")) {
      // a server configured below the requested rate: reconnect without asking
      frameRateRejected = true;
      postSocketEvent(id, "close", { code: CLOSE_ABNORMAL, reason });
      return;
    }
    postSocketEvent(id, "close", { code, reason });
  });
  socket.addEventListener("message", ({ data }) => {
    if (typeof data === "string") {
      queueSocketMessage(id, "message", data);
      return;
    }
    let meta = null;
    try {
      meta = peekSnapshotMeta(data);
    } catch {
      // applyMessage rejects the same message and reports why
    }
    if (meta !== null) queueSocketMessage(id, "snapshotmeta", meta);
    applyMessage(id, data);
  });
}

/** Applies one binary message of socket `connectionId`; a failure is reported so the page reconnects. */
function applyMessage(connectionId, buffer) {
  if (connectionId !== connection || connectionId === failedConnection) return;
  try {
    let message = buffer;
    if (readFrameType(buffer) === FRAME_PART) {
      message = assembler.add(buffer);
      if (message === null) return;
    } else if (assembler.pending) {
      assembler.reset();
      throw new ProtocolError("A frame arrived between the parts of a split message.");
    }

    if (readFrameType(message) === FRAME_SNAPSHOT) {
      gatedFrames = []; // they continued the weights the snapshot replaces; the page forgets them on its metadata
      store.applySnapshot(decodeSnapshot(message));
      requestFrameRate(connectionId);
      requestHistory();
      return;
    }
    if (store.layerSizes === null || store.weights === null) {
      throw new ProtocolError("Received a steps frame before the snapshot.");
    }
    const frame = decodeSteps(message, store.layerSizes);
    if (gated) {
      gatedFrames.push(frame);
      const transfer = [];
      postSocketEvent(connectionId, "steps", gatedFrame(frame, transfer), transfer);
      return;
    }
    applySteps(frame);
  } catch (error) {
    reportFrameError(connectionId, error);
  }
}

/** Applies a decoded steps frame; throws when it does not continue the store's steps. */
function applySteps(frame) {
  if (!store.applySteps(frame)) {
    throw new ProtocolError(`Steps frame starts at step ${frame.firstStep}, expected ${store.nextStep}.`);
  }
  if (metricsFrom === null) metricsFrom = frame.firstStep;
}

/**
 * Asks the page, once per run, for the recorded steps before the first
 * snapshot, when the page connected to a run that had already trained. The
 * page reads them from the server (GET /api/runs/{id}/steps) and posts them
 * back in order as "history" messages.
 */
function requestHistory() {
  if (historyNextStep !== null || lessons.startStep === null || lessons.startStep === 0) return;
  historyNextStep = 0;
  self.postMessage({ type: "historyNeeded", generation, endStep: lessons.startStep });
}

/** Counts a window of recorded steps (decodeWindow's format) if it is the next one expected. */
function addHistory(window) {
  if (historyNextStep === null || window.firstStep !== historyNextStep || window.stepCount === 0) return;
  const stepCount = Math.min(window.stepCount, lessons.startStep - window.firstStep);
  if (stepCount <= 0) return;
  const steps = window.steps.slice(0, stepCount);
  lessons.addHistory({
    firstStep: window.firstStep,
    stepCount,
    maskScope: steps[0].maskScope,
    maskRows: steps.map((step) => step.maskRows),
    masks: steps.map((step) => step.masks),
  });
  steps.forEach((step, k) => {
    store.losses.set(window.firstStep + k, step.loss);
    store.batchAccuracies.set(window.firstStep + k, step.batchAccuracy);
  });
  metricsFrom = Math.min(metricsFrom ?? window.firstStep, window.firstStep);
  historyNextStep = window.firstStep + stepCount;
  store.markDirty(Dirty.STEP_CHART);
}

function reportFrameError(connectionId, error) {
  // a frame that cannot be applied leaves the weights unknown: the page reconnects for a fresh snapshot
  failedConnection = connectionId;
  postSocketEvent(connectionId, "frameerror", error.message);
}

/**
 * Applies the waiting frames up to the one that starts at `firstStep`, in
 * order. A request for a frame no longer waiting, as one of the connection
 * before a snapshot, is ignored.
 */
function applyGatedFrames(firstStep) {
  if (!gatedFrames.some((frame) => frame.firstStep <= firstStep)) return;
  try {
    while (gatedFrames.length > 0 && gatedFrames[0].firstStep <= firstStep) applySteps(gatedFrames.shift());
  } catch (error) {
    gatedFrames = [];
    reportFrameError(connection, error);
  }
}

/**
 * Returns what the page's steps gate gets of a steps frame, adding its
 * buffers to `transfer`: everything but the deltas, and in their place
 * `weightChanges`, per weight layer a Uint8Array with 1 where the delta is
 * nonzero (null for a layer the frame does not carry). The arrays are copies,
 * because the decoded ones may be views of the whole message.
 */
function gatedFrame(frame, transfer) {
  const copy = (values) => {
    if (values === null) return null;
    const copied = values.slice();
    if (ArrayBuffer.isView(copied)) transfer.push(copied.buffer);
    return copied;
  };
  const weightChanges = frame.weightDeltas.map((deltas) => {
    if (deltas === null) return null;
    const changes = new Uint8Array(deltas.length);
    for (let index = 0; index < deltas.length; index++) if (deltas[index] !== 0) changes[index] = 1;
    transfer.push(changes.buffer);
    return changes;
  });
  return {
    type: frame.type,
    firstStep: frame.firstStep,
    stepCount: frame.stepCount,
    maskScope: frame.maskScope,
    deltaDtype: frame.deltaDtype,
    epochs: copy(frame.epochs),
    maskRows: copy(frame.maskRows),
    losses: copy(frame.losses),
    batchAccuracies: copy(frame.batchAccuracies),
    masks: frame.masks.map((stepMasks) => stepMasks.map(copy)),
    weightChanges,
  };
}

/** Asks socket `id` for at most STREAM_BYTES_PER_SECOND of deltas, once per socket. */
function requestFrameRate(id) {
  const socket = sockets.get(id);
  if (frameRateRejected || frameRateRequested === id || socket === undefined) return;
  const sizes = store.layerSizes;
  let deltaBytes = 0;
  for (let l = 0; l + 1 < sizes.length; l++) deltaBytes += 4 * (sizes[l] + 1) * sizes[l + 1];
  const rate = Math.max(1, Math.floor((10 * STREAM_BYTES_PER_SECOND) / deltaBytes) / 10);
  if (rate >= SERVER_DEFAULT_FRAMES_PER_SECOND) return;
  frameRateRequested = id;
  socket.send(JSON.stringify({ type: "options", max_frames_per_second: rate }));
}

function dueTime(name) {
  const minIntervalMs = Math.max(MIN_INTERVAL_MS[name] ?? 0, offscreen.has(name) ? OFFSCREEN_INTERVAL_MS : 0);
  const intervalMs = Math.max(minIntervalMs, (viewCosts.get(name) ?? 0) / VIEW_BUDGET);
  return (lastSent.get(name) ?? -Infinity) + intervalMs;
}

function isDue(name, time) {
  return dueTime(name) <= time;
}

function schedulePush() {
  const names = [...pending];
  if (awaitingAck || pushTimer !== null || names.length === 0) return;
  const now = performance.now();
  let delayMs = Math.max(0, lastPushTime + PUSH_INTERVAL_MS - now);
  if (!names.some((name) => isDue(name, now + delayMs))) {
    // only views with their own interval are pending: wait for the first of them
    delayMs = Math.max(delayMs, Math.min(...names.map(dueTime)) - now);
  }
  pushTimer = setTimeout(push, delayMs);
}

function push() {
  pushTimer = null;
  const now = performance.now();
  const names = [...pending].filter((name) => isDue(name, now));
  if (names.length === 0) {
    schedulePush();
    return;
  }
  for (const name of names) {
    pending.delete(name);
    lastSent.set(name, now);
  }
  lastPushTime = now;
  try {
    const transfer = [];
    self.postMessage(buildUpdate(new Set(names), transfer), transfer);
  } catch (error) {
    // the views keep what they show; the same views are tried again after PUSH_INTERVAL_MS
    if (error.message !== lastPushError) console.error(`dropviz worker: sending an update failed: ${error.message}`);
    lastPushError = error.message;
    for (const name of names) pending.add(name);
    schedulePush();
    return;
  }
  awaitingAck = true;
  flushSocketMessages(); // after the update, which covers the steps they report on
}

/**
 * Returns the update for the views in `names`, adding every ArrayBuffer and
 * ImageBitmap it contains to `transfer`. A key is left out when its view did
 * not change; the page keeps what it had.
 */
function buildUpdate(names, transfer) {
  const update = {
    type: "update",
    generation,
    names: [...names],
    layerSizes: store.layerSizes,
    inputShape: store.inputShape,
    hasSnapshot: store.weights !== null,
    nextStep: store.nextStep,
  };

  if (names.has(Dirty.COUNTERS) || names.has(Dirty.NETWORK) || names.has(Dirty.STEP_CHART)) {
    update.lastFrame = pictures.lastFrame(transfer);
  }
  if (names.has(Dirty.STEP_CHART) && metricsFrom !== null) {
    const end = store.losses.length;
    update.metrics = {
      firstStep: metricsFrom,
      losses: store.losses.values.slice(metricsFrom, end),
      batchAccuracies: store.batchAccuracies.values.slice(metricsFrom, end),
    };
    transfer.push(update.metrics.losses.buffer, update.metrics.batchAccuracies.buffer);
    metricsFrom = null;
  }
  if (names.has(Dirty.NETWORK)) measureView(Dirty.NETWORK, () => pictures.addNetwork(update, views.network, transfer));
  if (names.has(Dirty.HEATMAP)) measureView(Dirty.HEATMAP, () => (update.pictures = pictures.heatmaps(views.heatmap, transfer)));
  if (names.has(Dirty.TRAINING_COUNTS)) measureView(Dirty.TRAINING_COUNTS, () => (update.counts = pictures.counts(transfer)));
  if (names.has(Dirty.SUBNETWORK_METER)) update.tally = pictures.tally();
  if (names.has(Dirty.PINNED)) update.pinned = pictures.pinned();
  return update;
}

function measureView(name, compute) {
  const start = performance.now();
  compute();
  viewCosts.set(name, performance.now() - start);
}

/** Hover content for a unit or weight, or null before the first snapshot. */
function describe(target) {
  if (store.layerSizes === null || lessons.counts === null) return null;
  if (target.kind === "unit") return describeUnit(store, lessons, target.layer, target.unit);
  return describeWeight(store, lessons, target.layer, target.source, target.destination);
}

/** Exact copies of the weights and biases, with the step count they are at. */
function copyWeights() {
  if (store.weights === null) return { nextStep: store.nextStep, weights: null, biases: null };
  return {
    nextStep: store.nextStep,
    weights: store.weights.map((values) => values.slice()),
    biases: store.biases.map((values) => values.slice()),
  };
}
