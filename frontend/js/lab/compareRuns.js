// A comparison: runs that differ in one setting, created together, started
// as the server allows, and polled for their per-epoch metrics.
//
// The server trains at most `max_running_runs` runs at once (4 by default) and
// rejects one more start with 409 naming that limit. Rejected runs stay
// queued. The queue is retried when one of this comparison's runs stops
// running, and every RETRY_MS in case another client's run ended.
// Metrics are polled (GET /api/runs, then /metrics of runs whose step moved)
// rather than streamed: each run's WebSocket would also carry every step's
// weight deltas, several MB/s per run at full speed.

import { ApiError, controlRun, createRun, deleteRun, getMetrics, listRuns } from "../api.js";
import { RUN_COLOURS, settingLabel } from "./format.js";

const POLL_MS = 1000;
const RETRY_MS = 5000;
const FINAL_STATES = new Set(["finished", "stopped", "diverged", "deleted"]);
const RUN_LIMIT_PATTERN = /max_running_runs/;

export class Comparison {
  /** `onChange(comparison)` runs after every change of the runs' state or metrics. */
  constructor({ onChange, onError }) {
    this.onChange = onChange;
    this.onError = onError;
    this.setting = null;
    this.runs = []; // { id, value, label, colour, queued, summary, epochs, metricsStep }
    this.conflicts = 0; // 409 replies naming the running-run limit
    this.lastConflictAt = -Infinity;
    this.pollTimer = null;
    this.generation = 0;
  }

  get active() {
    return this.runs.some((run) => run.queued || !FINAL_STATES.has(this.statusOf(run)));
  }

  /** Returns "queued" for a run waiting for a free place, else the server's status. */
  statusOf(run) {
    if (run.queued) return "queued";
    return run.summary?.status ?? "created";
  }

  /**
   * Creates one run per value (base config with the setting replaced), then
   * starts them. A creation error deletes the runs created so far and raises.
   */
  async create(baseConfig, setting, values) {
    this.reset();
    const generation = this.generation;
    const created = [];
    for (const value of values) {
      try {
        created.push(await createRun({ ...baseConfig, [setting]: value }));
      } catch (error) {
        await Promise.allSettled(created.map((run) => deleteRun(run.id)));
        const label = settingLabel(setting, value);
        throw new ApiError(`The run with ${label} was not created: ${error.message}`, error.status, error.detail);
      }
    }
    if (generation !== this.generation) return;
    this.adopt(setting, created, true);
    await this.startQueued();
    this.schedulePoll();
  }

  /** Follows existing runs again, such as those a page reload finds in the URL. */
  restore(setting, summaries) {
    this.reset();
    this.adopt(setting, summaries, false);
    this.schedulePoll(0);
  }

  adopt(setting, summaries, queued) {
    this.setting = setting;
    this.runs = summaries.map((summary, index) => ({
      id: summary.id,
      value: summary.config[setting],
      label: settingLabel(setting, summary.config[setting]),
      colour: RUN_COLOURS[index % RUN_COLOURS.length],
      queued,
      summary,
      epochs: [],
      metricsStep: null,
    }));
    this.onChange(this);
  }

  reset() {
    this.generation += 1;
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
    this.runs = [];
    this.conflicts = 0;
    this.lastConflictAt = -Infinity;
  }

  /** Starts queued runs in order until the server refuses one for the run limit. */
  async startQueued() {
    for (const run of this.runs.filter((candidate) => candidate.queued)) {
      try {
        run.summary = await controlRun(run.id, "start");
        run.queued = false;
      } catch (error) {
        if (error.status === 409 && RUN_LIMIT_PATTERN.test(error.message)) {
          this.conflicts += 1;
          this.lastConflictAt = performance.now();
          break;
        }
        // any other rejection (the run was stopped or deleted elsewhere) ends its wait
        run.queued = false;
        this.onError(error);
      }
    }
    this.onChange(this);
  }

  /** Stops every run of the comparison, queued ones included. */
  async stopAll() {
    const stoppable = this.runs.filter((run) => ["queued", "created", "running", "paused"].includes(this.statusOf(run)));
    for (const run of stoppable) run.queued = false;
    const results = await Promise.allSettled(stoppable.map((run) => controlRun(run.id, "stop")));
    results.forEach((result, index) => {
      if (result.status === "fulfilled") stoppable[index].summary = result.value;
      else this.onError(result.reason);
    });
    this.onChange(this);
    this.schedulePoll(0);
  }

  schedulePoll(delay = POLL_MS) {
    clearTimeout(this.pollTimer);
    const generation = this.generation;
    this.pollTimer = setTimeout(async () => {
      try {
        await this.poll(generation);
      } catch (error) {
        this.onError(error);
      }
      if (generation === this.generation && this.active) this.schedulePoll();
    }, delay);
  }

  async poll(generation) {
    const summaries = new Map((await listRuns()).map((summary) => [summary.id, summary]));
    if (generation !== this.generation) return;
    let freedPlace = false;
    for (const run of this.runs) {
      const wasRunning = this.statusOf(run) === "running";
      const summary = summaries.get(run.id);
      run.summary = summary ?? { ...run.summary, status: "deleted" };
      if (summary === undefined) run.queued = false;
      if (wasRunning && this.statusOf(run) !== "running") freedPlace = true;
    }

    const queued = this.runs.some((run) => run.queued);
    if (queued && (freedPlace || performance.now() - this.lastConflictAt >= RETRY_MS)) await this.startQueued();

    const stale = this.runs.filter((run) => run.summary.status !== "deleted" && run.metricsStep !== run.summary.step);
    const replies = await Promise.allSettled(stale.map((run) => getMetrics(run.id)));
    if (generation !== this.generation) return;
    replies.forEach((reply, index) => {
      if (reply.status === "rejected") return;
      stale[index].epochs = reply.value.epochs;
      stale[index].metricsStep = stale[index].summary.step;
    });
    this.onChange(this);
  }
}
