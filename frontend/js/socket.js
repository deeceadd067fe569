// WebSocket client for `/ws/runs/{run_id}`: connects, reconnects with
// exponential backoff and decodes every message into the store. It never draws.
// It also sends client messages (docs/protocol.md, "Client messages"): the
// options, again after every reconnect, and acknowledgements for step-locked
// mode. A steps gate, when set, receives decoded steps frames in place of the
// store and applies them later, as slow motion does.

import { decodeSnapshot, decodeSteps, FRAME_SNAPSHOT, readFrameType } from "./protocol.js";

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
   * `store` receives the decoded messages; `onRunEvent(message)` is called
   * after each text message so the page can refresh REST data.
   */
  constructor(store, { onRunEvent = () => {} } = {}) {
    this.store = store;
    this.onRunEvent = onRunEvent;
    this.socket = null;
    this.runId = null;
    this.backoffMs = INITIAL_BACKOFF_MS;
    this.reconnectTimer = null;
    this.options = {}; // client options sent on every connection
    this.stepsGate = null; // { receive(frame) }, or null to apply frames on arrival
  }

  /** Changes client options such as { step_locked: true }; they last across reconnects and runs. */
  setOptions(options) {
    Object.assign(this.options, options);
    this.send({ type: "options", ...options });
  }

  /** Acknowledges the steps up to `step`, the last step of a received frame, for step-locked mode. */
  acknowledge(step) {
    this.send({ type: "ack", step });
  }

  /** Sends a client message if the connection is open; a closed one gets the options again when it reopens. */
  send(message) {
    if (this.socket !== null && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  /**
   * Routes decoded steps frames to `gate.receive(frame)`, which must pass
   * them on to applySteps in order; null applies them on arrival again.
   */
  setStepsGate(gate) {
    this.stepsGate = gate;
  }

  /**
   * Applies a steps frame to the store. A frame that does not continue the
   * store's steps leaves the weights unknown, so it starts a resync and
   * returns false.
   */
  applySteps(frame) {
    if (this.store.applySteps(frame)) return true;
    const reason = `Steps frame starts at step ${frame.firstStep}, expected ${this.store.nextStep}.`;
    console.error(`dropviz: invalid frame for run ${this.runId}: ${reason}`);
    this.resync(reason);
    return false;
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
    this.store.setConnection("connecting", `connecting to run ${runId}`);

    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      this.backoffMs = INITIAL_BACKOFF_MS;
      this.store.setConnection("open", "live");
      if (Object.keys(this.options).length > 0) socket.send(JSON.stringify({ type: "options", ...this.options }));
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
    try {
      if (readFrameType(data) === FRAME_SNAPSHOT) {
        this.store.applySnapshot(decodeSnapshot(data));
        return;
      }
      if (this.store.layerSizes === null || this.store.weights === null) {
        throw new Error("Received a steps frame before the snapshot.");
      }
      const frame = decodeSteps(data, this.store.layerSizes);
      if (this.stepsGate !== null) {
        this.stepsGate.receive(frame);
        return;
      }
      this.applySteps(frame);
    } catch (error) {
      // A frame we cannot apply leaves the client's weights unknown, so start
      // over from a fresh snapshot rather than draw wrong numbers.
      console.error(`dropviz: invalid frame for run ${this.runId}: ${error.message}`);
      this.resync(error.message);
    }
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
