// WebSocket client for `/ws/runs/{run_id}`: connects, reconnects with
// exponential backoff, applies text messages to the store and hands every
// binary message unread to the stream worker, which decodes and applies it
// (worker/workerClient.js). It never draws.

import { peekSnapshotMeta } from "./protocol.js";

const INITIAL_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10_000;

// Close codes from docs/protocol.md that mean "do not reconnect".
const CLOSE_RUN_DELETED = 1000;
const CLOSE_RUN_UNKNOWN = 1008;
// The server gave up on a slow client; a fresh connection brings a new snapshot.
const CLOSE_CLIENT_TOO_FAR_BEHIND = 1013;

/** Builds the stream URL for a run on the page's own host. */
export function streamUrl(runId, pageLocation = window.location) {
  const scheme = pageLocation.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${pageLocation.host}/ws/runs/${encodeURIComponent(runId)}`;
}

export class RunStream {
  /**
   * `store` receives the text messages and `frames` (a StreamWorkerClient)
   * the binary ones; `onRunEvent(message)` is called after each text message
   * so the page can refresh REST data.
   */
  constructor(store, frames, { onRunEvent = () => {} } = {}) {
    this.store = store;
    this.frames = frames;
    this.onRunEvent = onRunEvent;
    this.socket = null;
    this.connectionId = null; // the frames' id of the open socket's connection
    this.runId = null;
    this.backoffMs = INITIAL_BACKOFF_MS;
    this.reconnectTimer = null;
  }

  /** Connects to a run's stream, closing any previous connection first. */
  connect(runId) {
    this.close();
    this.runId = runId;
    this.backoffMs = INITIAL_BACKOFF_MS;
    this.open();
  }

  /** Closes the connection and cancels any pending reconnect. */
  close() {
    this.runId = null;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.socket !== null) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, "client closed");
    }
    this.store.setConnection("idle");
  }

  open() {
    const runId = this.runId;
    const socket = new WebSocket(streamUrl(runId));
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    this.connectionId = this.frames.startConnection();
    this.store.setConnection("connecting", `connecting to run ${runId}`);

    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      this.backoffMs = INITIAL_BACKOFF_MS;
      this.store.setConnection("open", "live");
    });
    socket.addEventListener("message", (event) => {
      if (this.socket !== socket) return;
      this.handleMessage(event.data);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.handleClose(event);
    });
  }

  handleMessage(data) {
    if (typeof data === "string") {
      this.handleText(data);
      return;
    }
    let meta = null;
    try {
      meta = peekSnapshotMeta(data);
    } catch (error) {
      // the worker rejects the frame too and the stream reconnects
      console.error(`dropviz: invalid binary message for run ${this.runId}: ${error.message}`);
    }
    if (meta !== null) this.store.applySnapshotMeta(meta);
    this.frames.sendFrame(this.connectionId, data);
  }

  /**
   * Called when the worker could not apply a frame of connection
   * `connectionId`. The client's weights are then unknown, so it starts over
   * from a fresh snapshot rather than draw wrong numbers.
   */
  handleFrameError(connectionId, message) {
    if (this.socket === null || connectionId !== this.connectionId) return; // a connection already replaced
    console.error(`dropviz: invalid frame for run ${this.runId}: ${message}`);
    this.resync(message);
  }

  handleText(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch (error) {
      console.error(`dropviz: invalid JSON text message for run ${this.runId}: ${error.message}`);
      return;
    }
    if (message.type === "status") {
      this.store.applyStatus(message);
    } else if (message.type === "epoch") {
      this.store.applyEpoch(message);
    }
    this.onRunEvent(message);
  }

  handleClose(event) {
    if (this.runId === null) return;
    if (event.code === CLOSE_RUN_DELETED) {
      this.store.setConnection("closed", "the run was deleted");
      return;
    }
    if (event.code === CLOSE_RUN_UNKNOWN) {
      this.store.setConnection("closed", `run ${this.runId} not found on the server`);
      this.store.markRunMissing();
      return;
    }
    if (event.code === CLOSE_CLIENT_TOO_FAR_BEHIND) {
      this.backoffMs = INITIAL_BACKOFF_MS;
    }
    this.scheduleReconnect(`connection closed (code ${event.code})`);
  }

  resync(reason) {
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) socket.close(1000, "resync");
    this.scheduleReconnect(reason);
  }

  scheduleReconnect(reason) {
    const delayMs = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    console.warn(`dropviz: ${reason}; reconnecting to run ${this.runId} in ${delayMs} ms`);
    this.store.setConnection("reconnecting", `${reason}; retrying in ${(delayMs / 1000).toFixed(1)} s`);
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (this.runId !== null) this.open();
    }, delayMs);
  }
}
