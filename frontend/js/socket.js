// WebSocket client for `/ws/runs/{run_id}`: connects, reconnects with
// exponential backoff and applies text messages to the store. The socket
// itself lives in the stream worker (worker/workerClient.js), which decodes
// and applies the binary messages there, because receiving megabytes a
// second costs the thread that owns the socket. It never draws.
// It also sends client messages (docs/protocol.md, "Client messages") through
// the worker's socket: the options, again after every reconnect, and
// acknowledgements for step-locked mode. A steps gate, when set, receives
// each steps frame before the worker applies it, and has it applied later
// with applySteps, as slow motion does.

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
   * `store` receives the text messages and the snapshots' metadata;
   * `frames` (a StreamWorkerClient) opens the sockets in the stream worker.
   * `onRunEvent(message)` is called after each text message, and with {
   * type: "snapshot", status } after each snapshot, so the page can refresh
   * REST data.
   */
  constructor(store, frames, { onRunEvent = () => {} } = {}) {
    this.store = store;
    this.frames = frames;
    this.onRunEvent = onRunEvent;
    this.socket = null;
    this.runId = null;
    this.backoffMs = INITIAL_BACKOFF_MS;
    this.reconnectTimer = null;
    this.options = {}; // client options sent on every connection
    this.stepsGate = null; // { receive(frame), forget() }, or null to apply frames on arrival
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
   * Routes steps frames to `gate.receive(frame)` before the worker applies
   * them; the gate must pass each one to applySteps, in order. The frames it
   * gets carry no deltas, only which weights changed (see the worker's
   * gatedFrame). A new snapshot calls `gate.forget()`, because the frames it
   * holds no longer continue the weights. null applies frames on arrival again.
   */
  setStepsGate(gate) {
    this.stepsGate = gate;
    this.frames.setGate(gate !== null);
  }

  /**
   * Has the worker apply the gated steps frame that starts at
   * `frame.firstStep`. The worker applies it before any client message sent
   * after this call, such as its acknowledgement. A frame that does not
   * continue the weights is reported as a frame error, which starts a resync.
   */
  applySteps(frame) {
    this.frames.applyGatedFrame(frame.firstStep);
    return true;
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
    const socket = this.frames.openSocket(streamUrl(runId));
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
      this.handleText(event.data);
    });
    // a snapshot's run state, in arrival order with the text messages
    socket.addEventListener("snapshotmeta", (event) => {
      if (this.socket !== socket) return;
      this.store.applySnapshotMeta(event.detail);
      this.stepsGate?.forget();
      // messages sent before this connection were missed, such as a speed change
      this.onRunEvent({ type: "snapshot", status: event.detail.status });
    });
    // a decoded steps frame held in the worker until the gate has it applied
    socket.addEventListener("steps", (event) => {
      if (this.socket !== socket) return;
      if (this.stepsGate !== null) this.stepsGate.receive(event.detail);
    });
    // a frame the worker could not apply leaves the client's weights unknown,
    // so start over from a fresh snapshot rather than draw wrong numbers
    socket.addEventListener("frameerror", (event) => {
      if (this.socket !== socket) return;
      console.error(`dropviz: invalid frame for run ${this.runId}: ${event.detail}`);
      this.resync(event.detail);
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.handleClose(event);
    });
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
      this.store.markRunMissing(); // so the status and buttons show it too
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
