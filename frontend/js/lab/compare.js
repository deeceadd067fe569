// The "Compare runs" section: a base configuration, one varied setting and
// its values become runs with everything else equal, including the seed and
// so the data split. Their per-epoch curves are overlaid live.

import { getRun } from "../api.js";
import { drawCompareChart } from "./compareChart.js";
import { fillCompareForm, markVariedField, parseVariedValues, readBaseConfig, VALUE_HINTS } from "./compareForm.js";
import { Comparison } from "./compareRuns.js";
import { formatPercent, SETTING_NAMES } from "./format.js";

const byId = (id) => document.getElementById(id);
const DEFAULT_VALUES = {
  hidden_drop_rate: "0, 0.5",
  input_drop_rate: "0, 0.2",
  learning_rate: "0.01, 0.03, 0.1",
  batch_size: "8, 32",
  weight_decay: "0, 0.0001",
  hidden_sizes: "32; 128,128",
  activation: "relu, tanh",
  optimizer: "sgd, momentum",
  variant: "dropout, dropconnect",
  scaling: "inverted, classic",
  mask_scope: "per-step, per-example",
};

function textCell(text) {
  return Object.assign(document.createElement("td"), { textContent: text });
}

export class CompareSection {
  /** `onRunsChanged(comparison)` runs when runs are created or change state, for the URL and the run list. */
  constructor({ defaults, datasets, onRunsChanged, onEvaluateRun }) {
    this.defaults = defaults;
    this.datasets = datasets;
    this.runsById = new Map();
    this.onRunsChanged = onRunsChanged;
    this.onEvaluateRun = onEvaluateRun;
    this.drawn = { loss: [], accuracy: [] };
    this.lastStates = "";
    this.comparison = new Comparison({
      onChange: () => this.render(),
      onError: (error) => this.showErrors([error.message]),
    });

    const form = byId("compare-form");
    fillCompareForm(form, defaults, datasets);
    byId("compare-setting").addEventListener("change", () => this.settingChanged(true));
    byId("compare-base").addEventListener("change", (event) => this.baseChanged(event.target.value));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.start();
    });
    byId("button-compare-stop").addEventListener("click", () => this.comparison.stopAll());
    this.settingChanged(false);
  }

  /** Lists existing runs as possible base configurations. */
  setRuns(runs) {
    this.runsById = new Map(runs.map((run) => [run.id, run]));
    const select = byId("compare-base");
    const current = select.value;
    const options = [new Option("defaults", "")];
    for (const run of [...runs].reverse()) {
      options.push(new Option(`config of run ${run.id} (${run.config.dataset}, ${run.layer_sizes.join("-")})`, run.id));
    }
    select.replaceChildren(...options);
    select.value = this.runsById.has(current) ? current : "";
  }

  baseConfig() {
    const run = this.runsById.get(byId("compare-base").value);
    return run ? { ...run.config } : { ...this.defaults };
  }

  baseChanged() {
    fillCompareForm(byId("compare-form"), this.baseConfig(), this.datasets);
    this.settingChanged(false);
  }

  settingChanged(resetValues) {
    const setting = byId("compare-setting").value;
    markVariedField(byId("compare-form"), setting);
    byId("compare-values-hint").textContent = VALUE_HINTS[setting];
    if (resetValues) byId("compare-values").value = DEFAULT_VALUES[setting];
  }

  async start() {
    const form = byId("compare-form");
    const setting = byId("compare-setting").value;
    const { config, errors } = readBaseConfig(form, this.baseConfig());
    const varied = parseVariedValues(setting, byId("compare-values").value);
    const allErrors = [...errors, ...varied.errors.map((message) => `Values: ${message}`)];
    byId("compare-values").toggleAttribute("aria-invalid", varied.errors.length > 0);
    if (allErrors.length > 0) {
      this.showErrors(allErrors);
      return;
    }
    this.showErrors([]);
    const speed = byId("compare-speed").value;
    config.max_steps_per_second = speed === "" ? null : Number(speed);

    byId("button-compare").disabled = true;
    byId("compare-status").textContent = `Creating ${varied.values.length} runs…`;
    try {
      await this.comparison.create(config, setting, varied.values);
    } catch (error) {
      byId("compare-status").textContent = "";
      this.showErrors([error.message]);
    } finally {
      byId("button-compare").disabled = false;
    }
  }

  /** Follows the runs of an earlier comparison, such as one named in the URL. */
  async restore(setting, runIds) {
    const found = await Promise.allSettled(runIds.map((id) => getRun(id)));
    const summaries = found.filter((reply) => reply.status === "fulfilled").map((reply) => reply.value);
    const missing = runIds.length - summaries.length;
    if (missing > 0) this.showErrors([`${missing} of the compared runs no longer exist on the server.`]);
    if (summaries.length > 0) this.comparison.restore(setting, summaries);
  }

  showErrors(messages) {
    const box = byId("compare-errors");
    box.hidden = messages.length === 0;
    const list = document.createElement("ul");
    list.append(...messages.map((message) => Object.assign(document.createElement("li"), { textContent: message })));
    box.replaceChildren(list);
  }

  render() {
    const comparison = this.comparison;
    const runs = comparison.runs;
    const states = runs.map((run) => `${run.id}:${comparison.statusOf(run)}`).join(",");
    if (states !== this.lastStates) {
      this.lastStates = states;
      this.onRunsChanged(comparison);
    }
    byId("button-compare-stop").disabled = !comparison.active;
    byId("compare-subtitle").textContent = comparison.setting
      ? `varying ${SETTING_NAMES[comparison.setting] ?? comparison.setting}, everything else equal`
      : "";
    const queued = runs.filter((run) => run.queued).length;
    const running = runs.filter((run) => comparison.statusOf(run) === "running").length;
    if (runs.length > 0) {
      byId("compare-status").textContent = queued > 0
        ? `${running} running, ${queued} queued: the server trains a limited number of runs at once.`
        : comparison.active ? `${running} running.` : "All runs have ended.";
    }
    this.renderTable(runs);
    this.renderLegend(runs);
    this.redraw();
  }

  renderTable(runs) {
    const rows = runs.map((run) => {
      const summary = run.summary;
      const swatch = Object.assign(document.createElement("span"), { className: "swatch-box" });
      swatch.style.background = run.colour;
      const name = document.createElement("td");
      name.append(swatch, ` ${run.label}`);
      const evaluate = document.createElement("button");
      Object.assign(evaluate, { type: "button", className: "link", textContent: "Evaluate" });
      evaluate.addEventListener("click", () => this.onEvaluateRun(run.id));
      const action = document.createElement("td");
      action.append(evaluate);
      const row = document.createElement("tr");
      row.dataset.runId = run.id;
      row.append(
        name,
        textCell(run.id),
        textCell(this.comparison.statusOf(run)),
        textCell(`${summary.step} / ${summary.total_steps}`),
        textCell(formatPercent(summary.latest?.test_accuracy ?? null)),
        action,
      );
      return row;
    });
    if (rows.length > 0) byId("compare-rows").replaceChildren(...rows);
  }

  renderLegend(runs) {
    const items = runs.map((run) => {
      const item = Object.assign(document.createElement("span"), { className: "legend-item" });
      item.dataset.label = run.label;
      const swatch = Object.assign(document.createElement("span"), { className: "swatch-box" });
      swatch.style.background = run.colour;
      item.append(swatch, run.label);
      return item;
    });
    if (runs.length > 0) {
      for (const [style, text] of [["test", "test split"], ["train", "training split"]]) {
        const item = Object.assign(document.createElement("span"), { className: "legend-item" });
        item.append(Object.assign(document.createElement("span"), { className: `swatch-line ${style}` }), text);
        items.push(item);
      }
    }
    byId("compare-legend").replaceChildren(...items);
  }

  redraw() {
    const series = this.comparison.runs.map((run) => ({
      label: run.label,
      colour: run.colour,
      epochs: run.epochs,
      plannedEpochs: run.summary.config?.epochs,
    }));
    this.drawn = {
      loss: drawCompareChart(byId("compare-loss"), series, "loss"),
      accuracy: drawCompareChart(byId("compare-accuracy"), series, "accuracy"),
    };
  }

  snapshot() {
    const comparison = this.comparison;
    return {
      setting: comparison.setting,
      conflicts: comparison.conflicts,
      runs: comparison.runs.map((run) => ({ id: run.id, label: run.label, value: run.value, status: comparison.statusOf(run) })),
      charts: this.drawn,
    };
  }
}
