// The "Ensemble inference" section: the evaluation form, the job's progress,
// and the result views (MC chart with its k slider, scores, agreement, exact
// enumeration, DropConnect note). The gallery and decision maps live in
// inferenceExtras.js, since they need the run's data or the prediction endpoint.

import { EvaluationJobTracker } from "./evaluationJob.js";
import { renderAgreement, renderExact, renderKReadout, renderScores } from "./evaluationViews.js";
import { formatPercent, unitDropRates } from "./format.js";
import { ExtraViews } from "./inferenceExtras.js";
import { readEvaluation } from "./labApi.js";
import { drawMcChart, mcChartModel } from "./mcChart.js";

const MAX_ENUMERATED_UNITS = 16; // the server's limit for exact enumeration
const RULE_NAMES = { mc: "MC averaging", exact: "exact enumeration", weight_scaling: "weight scaling" };

const byId = (id) => document.getElementById(id);

function parseIntegers(text) {
  const parts = text.split(/[,\s]+/).filter((part) => part !== "");
  return parts.every((part) => /^\d+$/.test(part)) ? parts.map(Number) : null;
}

/** Returns { request, errors } from the evaluation form. */
function readRequest() {
  const rule = byId("field-rule").value;
  const request = { rule, split: byId("field-split").value };
  const errors = [];
  if (rule === "mc") {
    const ks = parseIntegers(byId("field-ks").value);
    if (ks === null || ks.length === 0 || ks.some((k) => k < 1 || k > 1000)) {
      errors.push("k values: give whole numbers from 1 to 1000 separated by commas, such as 1,10,100.");
    } else {
      request.ks = ks;
    }
    const repeats = Number(byId("field-repeats").value);
    if (!Number.isInteger(repeats) || repeats < 1 || repeats > 50) errors.push("Repeats: give a whole number from 1 to 50.");
    request.repeats = repeats;
    const seed = Number(byId("field-seed").value);
    if (!Number.isInteger(seed) || seed < 0) errors.push("Seed: give a whole number of at least 0.");
    request.seed = seed;
  } else if (rule === "exact") {
    const text = byId("field-layers").value.trim();
    const layers = text === "" ? null : parseIntegers(text);
    if (text !== "" && layers === null) errors.push("Layers: give unit layer numbers separated by commas, such as 1.");
    request.layers = layers;
  }
  return { request, errors };
}

function describeRunState(run) {
  const config = run.config;
  const variant = config.variant === "dropconnect" ? "DropConnect (a mask on each weight)" : "dropout";
  const accuracy = run.latest.test_accuracy === null ? "" : `, test accuracy ${formatPercent(run.latest.test_accuracy)}`;
  return `${config.dataset}, layers ${run.layer_sizes.join("-")}, ${config.activation}; ${variant}, drop rates `
    + `${unitDropRates(run).join(", ")} (input first), ${config.scaling} scaling. `
    + `${run.status} at step ${run.step} of ${run.total_steps}${accuracy}.`;
}

function describeEnumerableLayers(run) {
  if (run.config.variant === "dropconnect") return "Exact enumeration covers unit dropout only; this run uses DropConnect.";
  const layers = unitDropRates(run)
    .map((rate, layer) => ({ rate, layer, units: run.layer_sizes[layer] }))
    .filter(({ rate }) => rate > 0);
  if (layers.length === 0) return "This run has no dropout, so there is nothing to enumerate.";
  const list = layers.map(({ layer, units, rate }) => `${layer} (${units} units, rate ${rate})`).join(", ");
  return `Unit layers with dropout: ${list}. Exact enumeration takes at most ${MAX_ENUMERATED_UNITS} units `
    + "in all; layers left out use weight scaling.";
}

export class InferenceSection {
  /** `onSelection(runId, jobId)` runs when the shown run or evaluation changes, for the URL. */
  constructor({ onSelection }) {
    this.onSelection = onSelection;
    this.runs = new Map();
    this.runId = null;
    this.job = null;
    this.model = null;
    this.highlightIndex = null;
    this.drawn = null;
    this.waitSeconds = 1; // the POST's wait before it replies 202; tests may lower it
    this.starting = false; // true while the POST that starts a job is in flight
    this.extras = new ExtraViews();
    this.tracker = new EvaluationJobTracker({
      onUpdate: (job) => this.showJob(job),
      onError: (error) => this.showErrors([error.message]),
    });

    byId("evaluate-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.evaluate();
    });
    byId("button-cancel").addEventListener("click", () => {
      this.tracker.cancel().catch((error) => this.showErrors([error.message]));
    });
    byId("field-rule").addEventListener("change", () => this.showRuleFields());
    byId("run-select").addEventListener("change", (event) => this.selectRun(event.target.value));
    byId("k-slider").addEventListener("input", (event) => this.highlight(Number(event.target.value)), { passive: true });
    this.showRuleFields();
  }

  /** Replaces the run list; keeps the selection when that run still exists. */
  setRuns(runs) {
    this.runs = new Map(runs.map((run) => [run.id, run]));
    const select = byId("run-select");
    const options = [...runs].reverse().map((run) => {
      const config = run.config;
      const text = `${run.id} · ${config.dataset} · ${run.layer_sizes.join("-")} · ${run.status}`;
      return new Option(text, run.id);
    });
    if (options.length === 0) options.push(new Option("no runs yet", ""));
    select.replaceChildren(...options);
    select.value = this.runs.has(this.runId) ? this.runId : "";
    this.describeSelection();
  }

  /** Shows `runId`; a different run clears the results shown. */
  selectRun(runId) {
    if (runId !== this.runId) {
      this.tracker.close();
      this.clearResults();
    }
    this.runId = runId || null;
    byId("run-select").value = this.runId ?? "";
    this.describeSelection();
    this.onSelection(this.runId, null);
  }

  describeSelection() {
    const run = this.runs.get(this.runId);
    byId("run-summary").textContent = run ? describeRunState(run) : "Pick a run, or create runs under Compare runs below.";
    byId("layers-hint").textContent = run ? describeEnumerableLayers(run) : "";
    byId("button-evaluate").disabled = !run || this.starting || this.tracker.running;
  }

  /** Shows an existing evaluation job, such as one named in the URL. */
  async openEvaluation(runId, jobId) {
    this.selectRun(runId);
    try {
      this.tracker.follow(runId, await readEvaluation(runId, jobId));
    } catch (error) {
      this.showErrors([error.message]);
    }
  }

  showRuleFields() {
    const rule = byId("field-rule").value;
    for (const row of document.querySelectorAll("#evaluate-form .field-row[data-rule]")) {
      row.hidden = row.dataset.rule !== rule;
    }
  }

  async evaluate() {
    const { request, errors } = readRequest();
    if (this.runId === null) errors.unshift("No run selected: pick one, or create runs under Compare runs below.");
    if (errors.length > 0) {
      this.showErrors(errors);
      return;
    }
    this.showErrors([]);
    this.starting = true;
    this.describeSelection();
    byId("evaluation-status").textContent = `Starting ${RULE_NAMES[request.rule]}…`;
    try {
      await this.tracker.start(this.runId, request, this.waitSeconds);
    } catch (error) {
      byId("evaluation-status").textContent = "";
      this.showErrors([error.message]);
    } finally {
      this.starting = false;
      this.describeSelection();
    }
  }

  showErrors(messages) {
    const box = byId("evaluate-errors");
    box.hidden = messages.length === 0;
    const list = document.createElement("ul");
    list.append(...messages.map((message) => Object.assign(document.createElement("li"), { textContent: message })));
    box.replaceChildren(list);
  }

  showJob(job) {
    this.job = job;
    const running = job.status === "running";
    byId("evaluation-progress-row").hidden = !running;
    byId("evaluation-progress").value = job.progress;
    byId("evaluation-percent").textContent = formatPercent(job.progress, 0);
    byId("button-cancel").disabled = !running;
    this.describeSelection();

    const status = byId("evaluation-status");
    status.dataset.status = job.status;
    const description = `${RULE_NAMES[job.rule] ?? job.rule} of run ${job.run_id}, on its weights at step ${job.step}`;
    if (running) status.textContent = `Running ${description}…`;
    else if (job.status === "cancelled") {
      status.textContent = `Cancelled ${description} at ${formatPercent(job.progress, 0)}.`;
    }
    else if (job.status === "failed") {
      status.textContent = "";
      this.showErrors([`The evaluation failed on the server: ${job.error}`]);
    } else {
      status.textContent = `Done: ${description}.`;
      this.renderResult(job);
      this.onSelection(job.run_id, job.id);
    }
  }

  clearResults() {
    this.model = null;
    this.drawn = null;
    this.job = null;
    this.extras.clear();
    byId("inference-results").dataset.rule = "none";
    for (const id of ["mc-panel", "exact-panel", "scores-panel", "agreement-panel", "note-panel"]) byId(id).hidden = true;
    byId("empty-panel").hidden = false;
    byId("evaluation-status").textContent = "";
    byId("evaluation-progress-row").hidden = true;
    this.showErrors([]);
  }

  renderResult(job) {
    const result = job.result;
    const run = this.runs.get(job.run_id);
    let rule = "weight_scaling";
    if (result.mc) rule = "mc";
    else if (result.exact) rule = "exact";
    byId("inference-results").dataset.rule = rule;
    byId("empty-panel").hidden = true;
    byId("scores-panel").hidden = false;
    renderScores(byId("scores-rows"), byId("scores-subtitle"), result);

    byId("mc-panel").hidden = !result.mc;
    byId("agreement-panel").hidden = !result.mc;
    this.model = result.mc ? mcChartModel(result) : null;
    if (this.model !== null) {
      byId("mc-subtitle").textContent = `run ${job.run_id}, weights at step ${job.step}, `
        + `${result.mc.repeats} repeats, seed ${result.mc.seed}, ${result.n_examples} ${result.split} examples`;
      const slider = byId("k-slider");
      slider.max = String(this.model.ks.length - 1);
      slider.value = slider.max;
      this.highlight(this.model.ks.length - 1);
    }

    byId("exact-panel").hidden = !result.exact;
    if (result.exact && run) {
      renderExact(
        { subtitle: byId("exact-subtitle"), rows: byId("exact-rows"), total: byId("exact-total"), explanation: byId("exact-explanation") },
        result,
        run.layer_sizes,
      );
    }
    byId("note-panel").hidden = !result.note;
    byId("note-text").textContent = result.note ?? "";
    if (run) this.extras.show(run, result);
  }

  /** Highlights the k at `index` in the chart, the agreement table and the readout. */
  highlight(index) {
    if (this.model === null) return;
    this.highlightIndex = index;
    renderAgreement(byId("agreement-rows"), this.model, index);
    renderKReadout(byId("k-readout"), this.model, index);
    this.drawChart();
  }

  drawChart() {
    if (this.model === null || byId("mc-panel").hidden) return;
    this.drawn = drawMcChart(byId("mc-chart"), this.model, this.highlightIndex);
  }

  /** Redraws the canvases after a size change. */
  redraw() {
    this.drawChart();
    this.extras.redraw();
  }

  /** Returns what the section shows, for window.dropvizLab. */
  snapshot() {
    return { runId: this.runId, job: this.job, chart: this.drawn, ...this.extras.snapshot() };
  }
}
