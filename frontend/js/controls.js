// The run form: fills it from the API, reads it into a run config, shows
// errors next to it and enables the buttons that the run's status allows.

import { describeDetail } from "./api.js";

const INTEGER_FIELDS = new Set(["n_samples", "batch_size", "epochs", "seed"]);
const NUMBER_FIELDS = new Set(["noise", "test_fraction", "input_drop_rate", "hidden_drop_rate", "learning_rate"]);
const TWO_D_FIELDS = new Set(["n_samples", "noise"]);

// Buttons each run status enables; a missing status (no run yet) enables none.
const ENABLED_ACTIONS = {
  created: ["start", "step", "stop"],
  running: ["pause", "stop"],
  paused: ["start", "step", "stop"],
  finished: [],
  stopped: [],
  diverged: [],
};

/** Error for form input that is invalid before it reaches the server; `items` has one { label, text } per field. */
export class FormError extends Error {
  constructor(items, fields) {
    super(items.map(({ label, text }) => `${label}: ${text}`).join(" "));
    this.name = "FormError";
    this.items = items;
    this.fields = fields;
  }
}

function labelText(form, name) {
  const field = form.elements.namedItem(name);
  const label = field?.id ? form.querySelector(`label[for="${field.id}"]`) : null;
  return label ? label.textContent.trim() : name;
}

/** Parses "128, 128" into [128, 128]; an empty string means no hidden layer. */
export function parseHiddenSizes(text) {
  const parts = text.split(/[\s,]+/).filter((part) => part !== "");
  for (const part of parts) {
    if (!/^\d+$/.test(part) || Number(part) < 1) {
      throw new Error(`expected positive whole numbers separated by commas, such as 128,128; got "${part}".`);
    }
  }
  return parts.map(Number);
}

export class RunForm {
  constructor(form, errorBox, descriptionElement) {
    this.form = form;
    this.errorBox = errorBox;
    this.descriptionElement = descriptionElement;
    this.datasets = new Map();
    this.busy = false;
    this.status = null;
    form.elements.namedItem("dataset").addEventListener("change", () => this.updateDatasetFields(), { passive: true });
  }

  setDatasets(datasets) {
    const select = this.form.elements.namedItem("dataset");
    select.replaceChildren();
    for (const dataset of datasets) {
      this.datasets.set(dataset.name, dataset);
      select.append(new Option(dataset.name, dataset.name));
    }
    this.updateDatasetFields();
  }

  /** Writes a run config (such as GET /api/defaults) into the form. */
  setConfig(config) {
    for (const [key, value] of Object.entries(config)) {
      const field = this.form.elements.namedItem(key);
      if (field === null) continue;
      if (key === "hidden_sizes") {
        field.value = value.join(",");
      } else if (key === "max_steps_per_second") {
        this.setSpeed(value);
      } else if (field.tagName === "SELECT" && ![...field.options].some((option) => option.value === String(value))) {
        field.append(new Option(String(value), String(value)));
        field.value = String(value);
      } else {
        field.value = value === null ? "" : String(value);
      }
    }
    this.updateDatasetFields();
  }

  setSpeed(stepsPerSecond) {
    const select = this.form.elements.namedItem("max_steps_per_second");
    const value = stepsPerSecond === null ? "" : String(stepsPerSecond);
    if (![...select.options].some((option) => option.value === value)) {
      select.append(new Option(`${value} steps/s`, value));
    }
    select.value = value;
  }

  /** Returns the speed select's value: steps per second, or null for full speed. */
  readSpeed() {
    const value = this.form.elements.namedItem("max_steps_per_second").value;
    return value === "" ? null : Number(value);
  }

  updateDatasetFields() {
    const dataset = this.datasets.get(this.form.elements.namedItem("dataset").value);
    const twoD = dataset !== undefined && dataset.input_shape === null;
    for (const element of this.form.querySelectorAll(".two-d-only")) element.hidden = !twoD;
    this.descriptionElement.textContent = dataset === undefined
      ? ""
      : `${dataset.description} (${dataset.n_features} features, ${dataset.n_classes} classes)`;
  }

  /** Reads the form into a run config; raises FormError naming each invalid field. */
  readConfig() {
    const config = {};
    const items = [];
    const fields = [];
    const dataset = this.datasets.get(this.form.elements.namedItem("dataset").value);
    const twoD = dataset !== undefined && dataset.input_shape === null;

    for (const field of this.form.elements) {
      const name = field.name;
      if (!name || field.tagName === "BUTTON") continue;
      if (TWO_D_FIELDS.has(name) && !twoD) continue;
      const text = field.value.trim();
      if (name === "hidden_sizes") {
        try {
          config[name] = parseHiddenSizes(text);
        } catch (error) {
          items.push({ label: labelText(this.form, name), text: error.message });
          fields.push(name);
        }
      } else if (name === "max_steps_per_second") {
        config[name] = this.readSpeed();
      } else if (INTEGER_FIELDS.has(name) || NUMBER_FIELDS.has(name)) {
        const value = Number(text);
        if (text === "" || !Number.isFinite(value) || (INTEGER_FIELDS.has(name) && !Number.isInteger(value))) {
          const kind = INTEGER_FIELDS.has(name) ? "a whole number" : "a number";
          items.push({ label: labelText(this.form, name), text: `expected ${kind}; got "${text}".` });
          fields.push(name);
        } else {
          config[name] = value;
        }
      } else {
        config[name] = text;
      }
    }
    if (items.length > 0) throw new FormError(items, fields);
    return config;
  }

  /**
   * Shows `items` under a heading next to the form and marks the named fields
   * invalid. An item is a string, or { label, text } to name a form field first.
   */
  showErrors(heading, items, fields = []) {
    this.clearErrors();
    const title = document.createElement("p");
    title.textContent = heading;
    const list = document.createElement("ul");
    for (const item of items) {
      const entry = document.createElement("li");
      if (typeof item === "string") {
        entry.textContent = item;
      } else {
        const label = document.createElement("strong");
        label.textContent = `${item.label}: `;
        entry.append(label, item.text);
      }
      list.append(entry);
    }
    this.errorBox.replaceChildren(title, list);
    this.errorBox.hidden = false;
    for (const name of fields) this.form.elements.namedItem(name)?.setAttribute("aria-invalid", "true");
  }

  /**
   * Shows an ApiError. Each validation error is listed under the label of the
   * form field it concerns, with the server's message unchanged.
   */
  showApiError(heading, error) {
    if (!Array.isArray(error.detail)) {
      this.showErrors(heading, [error.message]);
      return;
    }
    const fields = [];
    const items = error.detail.map((problem) => {
      const location = Array.isArray(problem.loc) ? problem.loc : [];
      const name = location[0] === "body" ? location[1] : undefined;
      const text = describeDetail([problem], () => "")[0];
      if (typeof name !== "string" || this.form.elements.namedItem(name) === null) return text;
      fields.push(name);
      return { label: labelText(this.form, name), text };
    });
    this.showErrors(heading, items, fields);
  }

  clearErrors() {
    this.errorBox.hidden = true;
    this.errorBox.replaceChildren();
    for (const field of this.form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
  }

  /** Enables the buttons that `status` allows; every button is disabled while a request is pending. */
  updateButtons(status, busy) {
    this.status = status;
    this.busy = busy;
    const enabled = new Set(ENABLED_ACTIONS[status] ?? []);
    for (const button of this.form.querySelectorAll("button[data-action]")) {
      const disabled = busy || !enabled.has(button.dataset.action);
      if (button.disabled !== disabled) button.disabled = disabled;
    }
    const startButton = this.form.querySelector('button[data-action="start"]');
    const startLabel = status === "paused" ? "Resume" : "Start";
    if (startButton.textContent !== startLabel) startButton.textContent = startLabel;
    const newButton = this.form.querySelector('button[type="submit"]');
    if (newButton.disabled !== busy) newButton.disabled = busy;
  }
}
