// The main thread's side of the stream worker (streamWorker.js). It opens
// the run's WebSocket in the worker, which applies the binary messages and
// passes the text ones on. It applies the worker's updates to the store and
// keeps what the lessons views draw, so it replaces the LessonState the page
// used to own:
// `counts`, `tally` and `pinned.weights` are summaries in the worker's
// words, and `pin`, `unpin`, `describe` and `readWeights` are requests.

import { loadHistory } from "./historyLoader.js";

/**
 * A WebSocket held by the stream worker, with the part of WebSocket's
 * interface that RunStream uses: "open", "close" and "message" events (text
 * messages only), readyState, send() for client messages, and close(). It
 * also dispatches "snapshotmeta" with a snapshot's metadata, "frameerror"
 * with the reason a frame could not be applied, and, while the steps gate is
 * on, "steps" with each steps frame before it is applied.
 */
class WorkerSocket extends EventTarget {
  constructor(worker, id) {
    super();
    this.worker = worker;
    this.id = id;
    this.readyState = WebSocket.CONNECTING; // as the worker last reported it
  }

  /** Sends a client message (docs/protocol.md), such as an options message, as text. */
  send(text) {
    this.worker.postMessage({ type: "sendSocket", id: this.id, text });
  }

  close(code, reason) {
    if (this.readyState !== WebSocket.CLOSED) this.readyState = WebSocket.CLOSING;
    this.worker.postMessage({ type: "closeSocket", id: this.id, code, reason });
  }
}

export class StreamWorkerClient {
  constructor(store) {
    this.store = store;
    this.sockets = new Map(); // id → WorkerSocket until its close event
    this.worker = new Worker(new URL("./streamWorker.js", import.meta.url), { type: "module" });
    this.worker.addEventListener("message", (event) => this.handleMessage(event.data));
    this.worker.addEventListener("error", (event) => {
      console.error(`dropviz: the stream worker failed: ${event.message}`);
    });
    this.socketCount = 0;
    this.generation = 0;
    this.sentRun = null;
    this.sentViewsKey = "";
    this.replies = new Map(); // request id → resolve function
    this.nextRequestId = 1;
    this.reset();
    store.addFrameListener(this);
    store.subscribe(() => this.sendRun());
  }

  reset() {
    this.counts = null; // training counts summary, see countsSummary in the worker
    this.tally = null; // { sampleCount, distinctCount, repeatCount, saturated }
    this.pinned = { weights: [] };
    this.pictures = null; // the heatmaps' pixels for the live run
    this.networkImage?.bitmap.close();
    this.networkImage = null; // { bitmap, step, fadedLinkCount, rmsWeights } of the latest drawn step
    this.summaryStats = null; // block statistics of the summary view
  }

  // Store frame listener: only onClear is called, because the worker applies the frames.
  onClear() {
    this.generation++;
    this.reset();
    this.sentRun = null;
    this.sentViewsKey = "";
    this.worker.postMessage({ type: "clear", generation: this.generation });
  }

  onSnapshot() {}

  onSteps() {}

  sendRun() {
    const run = this.store.run;
    if (run === null || run === this.sentRun) return;
    this.sentRun = run;
    this.worker.postMessage({ type: "run", run });
  }

  /**
   * Opens a WebSocket to `url` in the worker, which from then on applies its
   * binary messages instead of any earlier socket's. Returns a WorkerSocket.
   */
  openSocket(url) {
    const id = ++this.socketCount;
    const socket = new WorkerSocket(this.worker, id);
    this.sockets.set(id, socket);
    this.worker.postMessage({ type: "openSocket", id, url });
    return socket;
  }

  dispatchSocketEvent({ id, event, detail }) {
    const socket = this.sockets.get(id);
    if (socket === undefined) return;
    if (event === "message") {
      socket.dispatchEvent(new MessageEvent("message", { data: detail }));
    } else if (event === "close") {
      this.sockets.delete(id);
      socket.readyState = WebSocket.CLOSED;
      socket.dispatchEvent(new CloseEvent("close", detail));
    } else if (event === "open") {
      if (socket.readyState === WebSocket.CONNECTING) socket.readyState = WebSocket.OPEN;
      socket.dispatchEvent(new Event("open"));
    } else {
      socket.dispatchEvent(new CustomEvent(event, { detail }));
    }
  }

  /**
   * Tells the worker what the views need: `network` from NetworkView's
   * workerScene and `heatmap` from HeatmapView's pictureRequest. `key`
   * identifies them, so unchanged views are not sent again.
   */
  setViews(key, network, heatmap) {
    if (key === this.sentViewsKey) return;
    this.sentViewsKey = key;
    this.worker.postMessage({ type: "views", network, heatmap });
  }

  /**
   * Tells the worker which views are off screen (names from state.js's
   * Dirty), so it computes their pictures only once they come near again.
   */
  setOffscreenViews(names) {
    this.worker.postMessage({ type: "offscreen", names: [...names] });
  }

  /**
   * Turns the steps gate on or off. While it is on, the worker posts each
   * steps frame to its socket as a "steps" event and applies it only on
   * applyGatedFrame; switching it off applies the frames still waiting.
   */
  setGate(on) {
    this.worker.postMessage({ type: "gate", on });
  }

  /** Has the worker apply its waiting steps frames up to the one that starts at `firstStep`. */
  applyGatedFrame(firstStep) {
    this.worker.postMessage({ type: "applyFrame", firstStep });
  }

  pin(layer, source, destination) {
    this.worker.postMessage({ type: "pin", layer, source, destination });
  }

  unpin(key) {
    this.worker.postMessage({ type: "unpin", key });
  }

  /** Resolves to the hover content of a unit or weight target, or null before the first snapshot. */
  describe(target) {
    return this.request({ type: "describe", target });
  }

  /** Resolves to { nextStep, weights, biases }: exact copies of the worker's weights. */
  readWeights() {
    return this.request({ type: "readWeights" });
  }

  request(message) {
    const id = this.nextRequestId++;
    return new Promise((resolve) => {
      this.replies.set(id, resolve);
      this.worker.postMessage({ ...message, id });
    });
  }

  handleMessage(message) {
    if (message.type === "update") {
      this.applyUpdate(message);
    } else if (message.type === "socket") {
      this.dispatchSocketEvent(message);
    } else if (message.type === "historyNeeded") {
      const runId = this.store.run?.id;
      const { generation, endStep } = message;
      if (runId === undefined || generation !== this.generation) return;
      const isCurrent = () => this.generation === generation && this.store.run?.id === runId;
      loadHistory(this.worker, runId, generation, endStep, isCurrent);
    } else if (message.type === "reply") {
      const resolve = this.replies.get(message.id);
      this.replies.delete(message.id);
      resolve?.(message.value);
    }
  }

  applyUpdate(update) {
    // acknowledged once the page had a chance to draw it, so updates never queue up
    requestAnimationFrame(() => this.worker.postMessage({ type: "ack" }));
    if (update.generation !== this.generation) {
      update.networkImage?.bitmap.close(); // computed for a run the page has left
      return;
    }
    if ("counts" in update) this.counts = update.counts;
    if ("tally" in update) this.tally = update.tally;
    if ("pinned" in update) this.pinned = { weights: update.pinned };
    if ("pictures" in update) this.pictures = update.pictures;
    if ("summaryStats" in update) this.summaryStats = update.summaryStats;
    if ("networkImage" in update) {
      this.networkImage?.bitmap.close();
      this.networkImage = update.networkImage;
    }
    this.store.applyUpdate(update);
  }

  /** The live run's link bitmap and block statistics, as NetworkView.render takes them. */
  get networkImages() {
    return { networkImage: this.networkImage, summaryStats: this.summaryStats };
  }
}
