// The list of the server's runs in the top bar, newest first. A closed tab or
// a restarted server does not lose a run: the list opens it again, an
// interrupted one included. It is read from GET /api/runs each time the list
// is opened and after the page creates or imports a run.

import * as api from "./api.js";

/** Describes a run in one line: id, data set, layer sizes, status and steps. */
function runLabel(run) {
  const steps = `${run.step.toLocaleString("en-US")}/${run.total_steps.toLocaleString("en-US")} steps`;
  return `${run.id} · ${run.config.dataset} ${run.layer_sizes.join("-")} · ${run.status}, ${steps}`;
}

export class RunPicker {
  /**
   * `select` is the list's element; `onOpen(run)` is called with the Run
   * chosen. `getRunId()` returns the open run's id, or null.
   */
  constructor(select, { onOpen, getRunId }) {
    this.select = select;
    this.getRunId = getRunId;
    this.runs = new Map(); // id → Run, as of the last refresh
    select.addEventListener("focus", () => this.refresh(), { passive: true });
    select.addEventListener("pointerdown", () => this.refresh(), { passive: true });
    select.addEventListener("change", () => {
      const run = this.runs.get(select.value);
      if (run !== undefined && run.id !== this.getRunId()) onOpen(run);
    }, { passive: true });
  }

  /** Reads the runs and rebuilds the list, with the open run selected. */
  async refresh() {
    let runs;
    try {
      runs = await api.listRuns();
    } catch (error) {
      console.error(`dropviz: listing the runs failed: ${error.message}`);
      return;
    }
    runs.sort((a, b) => b.created_at.localeCompare(a.created_at)); // ISO 8601 times sort as text
    this.runs = new Map(runs.map((run) => [run.id, run]));
    const openId = this.getRunId();
    const placeholder = new Option(runs.length === 0 ? "No runs yet" : `Runs (${runs.length})`, "");
    placeholder.disabled = true;
    const options = runs.map((run) => new Option(runLabel(run), run.id));
    this.select.replaceChildren(placeholder, ...options);
    this.select.value = this.runs.has(openId) ? openId : "";
  }
}
