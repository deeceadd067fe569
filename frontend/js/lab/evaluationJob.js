// Follows one evaluation job from POST to its end. While the job runs, its
// progress comes from the run's WebSocket `evaluation` events, and a poll of
// `GET .../evaluations/{job_id}` every POLL_MS backs them up: the socket misses
// events sent before it connects, and the poll brings the result.

import { cancelEvaluation, readEvaluation, startEvaluation } from "./labApi.js";

const POLL_MS = 1000;

function evaluationStreamUrl(runId) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/ws/runs/${encodeURIComponent(runId)}`;
}

export class EvaluationJobTracker {
  /**
   * `onUpdate(job)` receives the job (EvaluationOut) whenever its status or
   * progress changes; `onError(error)` receives failed requests.
   */
  constructor({ onUpdate, onError }) {
    this.onUpdate = onUpdate;
    this.onError = onError;
    this.runId = null;
    this.job = null;
    this.socket = null;
    this.pollTimer = null;
    this.generation = 0; // ignores replies that belong to a job the page has left
  }

  get running() {
    return this.job !== null && this.job.status === "running";
  }

  /** Starts a job; the POST waits at most `waitSeconds` for the result. */
  async start(runId, request, waitSeconds) {
    this.close();
    const generation = this.generation;
    this.runId = runId;
    const { job } = await startEvaluation(runId, { ...request, wait_seconds: waitSeconds });
    if (generation !== this.generation) return;
    this.follow(runId, job);
  }

  /** Shows a job that already exists, following it when it still runs. */
  follow(runId, job) {
    this.runId = runId;
    this.job = job;
    this.onUpdate(job);
    if (job.status !== "running") return;
    this.openSocket(runId);
    this.pollTimer = setInterval(() => this.refresh(), POLL_MS);
  }

  /** Asks the server to cancel the running job; the update reports the final status. */
  async cancel() {
    if (!this.running) return;
    const generation = this.generation;
    const job = await cancelEvaluation(this.runId, this.job.id);
    if (generation === this.generation) this.finish(job);
  }

  /** Stops following the job without cancelling it on the server. */
  close() {
    this.generation += 1;
    clearInterval(this.pollTimer);
    this.pollTimer = null;
    if (this.socket !== null) {
      this.socket.close(1000, "evaluation followed to its end");
      this.socket = null;
    }
    this.job = null;
  }

  openSocket(runId) {
    // NOTE: the stream also carries every training step's weight deltas while
    // the run trains; this page reads only the text events and drops the rest.
    const socket = new WebSocket(evaluationStreamUrl(runId));
    socket.binaryType = "arraybuffer";
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string" || this.socket !== socket) return;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        console.warn(`dropviz lab: invalid JSON on the stream of run ${runId}: ${error.message}`);
        return;
      }
      this.applyEvent(message);
    });
    this.socket = socket;
  }

  applyEvent(message) {
    if (message.type !== "evaluation" || this.job === null || message.id !== this.job.id) return;
    if (message.status === "running") {
      if (message.progress > this.job.progress) {
        this.job = { ...this.job, progress: message.progress };
        this.onUpdate(this.job);
      }
      return;
    }
    this.refresh(); // the job ended: fetch its result
  }

  async refresh() {
    if (!this.running) return;
    const generation = this.generation;
    try {
      const job = await readEvaluation(this.runId, this.job.id);
      if (generation !== this.generation || this.job === null) return;
      if (job.status === "running") {
        if (job.progress > this.job.progress) {
          this.job = job;
          this.onUpdate(job);
        }
        return;
      }
      this.finish(job);
    } catch (error) {
      if (generation !== this.generation) return;
      // a 404 means the run or job is gone, so polling again cannot help
      if (error.status === 404) this.close();
      this.onError(error);
    }
  }

  finish(job) {
    const runId = this.runId;
    this.close();
    this.runId = runId;
    this.job = job;
    this.onUpdate(job);
  }
}
