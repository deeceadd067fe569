// The run form. It is filled from the API, shows only the fields that apply
// to the chosen data set kind, variant, optimizer and schedule, and reads into
// a run config.
// It also shows errors next to the fields and enables the buttons that the
// run's status allows.

import { describeDetail } from "./api.js";

const INTEGER_FIELDS = new Set(["n_samples", "n_train", "batch_size", "epochs", "seed", "lr_step_epochs"]);
const NUMBER_FIELDS = new Set([
  "noise", "test_fraction", "input_drop_rate", "hidden_drop_rate", "learning_rate",
  "momentum", "adam_beta1", "adam_beta2", "adam_epsilon", "weight_decay", "lr_step_factor",
]);
const OPTIONAL_NUMBER_FIELDS = new Set(["max_norm", "n_train"]); // an empty field sends null

// Buttons each run status enables; a missing status (no run yet) enables none.
const ENABLED_ACTIONS = {
  created: ["start", "step", "stop"],
  running: ["pause", "stop"],
  paused: ["start", "step", "stop"],
  interrupted: ["start", "step", "stop"], // was training when the server stopped; resumes like paused
  finished: [],
  stopped: [],
  diverged: [],
};

/** Error for form input that is invalid before it reaches the server. `items` has one { field, label, text } per problem. */
export class FormError extends Error {
  constructor(items) {
    super(items.map(({ label, text }) => `${label}: ${text}`).join(" "));
    this.name = "FormError";
    this.items = items;
  }
}

/** Marks `field` invalid and shows `text` in a message right after it. A second problem with the field adds to that message. */
function showFieldError(field, text) {
  field.setAttribute("aria-invalid", "true");
  const id = `${field.id}-error`;
  let message = document.getElementById(id);
  if (message === null) {
    message = document.createElement("p");
    message.id = id;
    message.className = "field-error";
    field.after(message);
    field.setAttribute("aria-describedby", id);
  }
  message.textContent = message.textContent === "" ? text : `${message.textContent} ${text}`;
}

function labelText(form, name) {
  const field = form.elements.namedItem(name);
  const label = field?.id ? form.querySelector(`label[for="${field.id}"]`) : null;
  return label ? label.textContent.trim() : name;
}

/** Parses "128, 128" into [128, 128]; a network needs at least one hidden layer. */
export function parseHiddenSizes(text) {
  const parts = text.split(/[\s,]+/).filter((part) => part !== "");
  if (parts.length === 0) throw new Error("expected at least one layer size, such as 128,128; the field is empty.");
  for (const part of parts) {
    if (!/^\d+$/.test(part) || Number(part) < 1) {
      throw new Error(`expected positive whole numbers separated by commas, such as 128,128; got "${part}".`);
    }
  }
  return parts.map(Number);
}

/** Parses "0.5, 0.3" into [0.5, 0.3]. An empty string gives null, so every hidden layer uses the hidden drop rate. */
export function parseDropRates(text) {
  const parts = text.split(/[\s,]+/).filter((part) => part !== "");
  if (parts.length === 0) return null;
  for (const part of parts) {
    if (!Number.isFinite(Number(part))) {
      throw new Error(`expected numbers separated by commas, such as 0.5,0.3, or nothing; got "${part}".`);
    }
  }
  return parts.map(Number);
}

/**
 * Returns whether a `data-applies-when` condition holds for the form's
 * current values. The condition is a space-separated list of `name:value`
 * terms, each of which must hold, and `name:a|b` accepts either value.
 */
function conditionHolds(form, condition) {
  return condition.split(/\s+/).filter((term) => term !== "").every((term) => {
    const [name, values] = term.split(":");
    return values.split("|").includes(form.elements.namedItem(name)?.value);
  });
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
    form.addEventListener("change", () => this.updateApplicableFields(), { passive: true });
    this.updateApplicableFields();
  }

  /**
   * Lists the data sets from GET /api/datasets. An unavailable one is shown
   * disabled, and its hint, which explains how to make it available, is listed
   * under the select. The selection is kept when it is still available.
   */
  setDatasets(datasets) {
    const select = this.form.elements.namedItem("dataset");
    const selected = select.value;
    select.replaceChildren();
    this.datasets.clear();
    for (const dataset of datasets) {
      this.datasets.set(dataset.name, dataset);
      const available = dataset.available !== false;
      const option = new Option(available ? dataset.name : `${dataset.name} (unavailable)`, dataset.name);
      option.disabled = !available;
      if (!available && dataset.hint) option.title = dataset.hint;
      select.append(option);
    }
    if (this.datasets.get(selected)?.available !== false && this.datasets.has(selected)) select.value = selected;
    this.showUnavailable(datasets.filter((dataset) => dataset.available === false));
    this.updateDatasetFields();
  }

  showUnavailable(datasets) {
    const box = this.form.querySelector("#dataset-unavailable");
    if (box === null) return;
    box.hidden = datasets.length === 0;
    if (datasets.length === 0) {
      box.replaceChildren();
      return;
    }
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = `Unavailable: ${datasets.map(({ name }) => name).join(", ")}`;
    details.append(summary);
    for (const { name, hint } of datasets) {
      const paragraph = document.createElement("p");
      const label = document.createElement("strong");
      label.textContent = `${name}: `;
      paragraph.append(label, hint ?? "its files are missing.");
      details.append(paragraph);
    }
    box.replaceChildren(details);
  }

  /** Selects data set `name`, as after an upload. */
  selectDataset(name) {
    this.form.elements.namedItem("dataset").value = name;
    this.updateDatasetFields();
  }

  /** Writes a run config (such as GET /api/defaults) into the form. */
  setConfig(config) {
    for (const [key, value] of Object.entries(config)) {
      const field = this.form.elements.namedItem(key);
      if (field === null) continue;
      if (Array.isArray(value)) {
        field.value = value.join(",");
      } else if (field.type === "checkbox") {
        field.checked = Boolean(value);
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
    this.updateApplicableFields();
  }

  setSpeed(stepsPerSecond) {
    const select = this.form.elements.namedItem("max_steps_per_second");
    const value = stepsPerSecond === null ? "" : String(stepsPerSecond);
    if (![...select.options].some((option) => option.value === value)) {
      select.append(new Option(`${value} steps/s`, value));
    }
    select.value = value;
  }

  /** Returns the label text of the field named `name`. */
  labelOf(name) {
    return labelText(this.form, name);
  }

  /** Returns the speed select's value: steps per second, or null for full speed. */
  readSpeed() {
    const value = this.form.elements.namedItem("max_steps_per_second").value;
    return value === "" ? null : Number(value);
  }

  /**
   * Shows the fields that apply to the data set's `kind`: samples and noise
   * for generated sets, the training-set size for IDX sets, and the test
   * fraction for all but IDX sets, whose test split is a file of its own.
   */
  updateDatasetFields() {
    const dataset = this.datasets.get(this.form.elements.namedItem("dataset").value);
    // a server without `kind` predates IDX and CSV sets: a set without an image shape is generated
    const kind = dataset?.kind ?? (dataset?.input_shape === null ? "generated" : "bundled");
    for (const element of this.form.querySelectorAll("[data-dataset-kinds]")) {
      const hidden = !element.dataset.datasetKinds.split(" ").includes(kind);
      if (element.hidden !== hidden) element.hidden = hidden;
    }
    this.descriptionElement.textContent = dataset === undefined
      ? ""
      : `${dataset.description} (${dataset.n_features} features, ${dataset.n_classes} classes)`;
  }

  /** Hides each element with a `data-applies-when` condition that does not hold, such as momentum under Adam. */
  updateApplicableFields() {
    for (const element of this.form.querySelectorAll("[data-applies-when]")) {
      const hidden = !conditionHolds(this.form, element.dataset.appliesWhen);
      if (element.hidden !== hidden) element.hidden = hidden;
    }
  }

  /**
   * Reads the form into a run config; raises FormError naming each invalid
   * field. A hidden field does not apply to the chosen settings and is left
   * out, so the server uses its default and never rejects a value the user
   * cannot see.
   */
  readConfig() {
    const config = {};
    const items = [];
    const reject = (name, text) => items.push({ field: name, label: labelText(this.form, name), text });

    for (const field of this.form.elements) {
      const name = field.name;
      if (!name || field.tagName === "BUTTON" || field.closest("[hidden]") !== null) continue;
      const text = field.value.trim();
      if (field.validity.badInput) {
        // a number input returns "" for text it cannot parse, which would read as "none"
        reject(name, "expected a number; the field contains text that is not one.");
      } else if (name === "hidden_sizes" || name === "hidden_drop_rates") {
        try {
          config[name] = name === "hidden_sizes" ? parseHiddenSizes(text) : parseDropRates(text);
        } catch (error) {
          reject(name, error.message);
        }
      } else if (name === "max_steps_per_second") {
        config[name] = this.readSpeed();
      } else if (field.type === "checkbox") {
        config[name] = field.checked;
      } else if (OPTIONAL_NUMBER_FIELDS.has(name) && text === "") {
        config[name] = null;
      } else if (INTEGER_FIELDS.has(name) || NUMBER_FIELDS.has(name) || OPTIONAL_NUMBER_FIELDS.has(name)) {
        const value = Number(text);
        if (text === "" || !Number.isFinite(value) || (INTEGER_FIELDS.has(name) && !Number.isInteger(value))) {
          const kind = INTEGER_FIELDS.has(name) ? "a whole number" : "a number";
          const empty = OPTIONAL_NUMBER_FIELDS.has(name) ? ", or nothing for none" : "";
          reject(name, `expected ${kind}${empty}; got "${text}".`);
        } else if (field.min !== "" && value < Number(field.min)) {
          // caught here, so it is listed with the other fields' errors rather than after them
          reject(name, `expected ${field.min} or more; got ${text}.`);
        } else if (field.dataset.below !== undefined && value >= Number(field.dataset.below)) {
          // an HTML max is inclusive, and the server requires rates and factors below 1
          reject(name, `expected less than ${field.dataset.below}; got ${text}.`);
        } else {
          config[name] = value;
        }
      } else {
        config[name] = text;
      }
    }
    // DropConnect draws one weight mask per step, and the server rejects it
    // together with per-example masks.
    if (config.variant === "dropconnect") config.mask_scope = "per-step";
    if (items.length > 0) throw new FormError(items);
    return config;
  }

  /**
   * Shows `items` under a heading below the buttons. An item is a string, or
   * { field, label, text } for a problem with one form field. Such a field is
   * marked invalid and gets the text right under it, a collapsed section
   * around it is opened, and the first such field takes the focus.
   */
  showErrors(heading, items) {
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

    const invalidFields = [];
    for (const item of items) {
      const field = typeof item === "string" ? null : this.form.elements.namedItem(item.field);
      if (field === null) continue;
      showFieldError(field, item.text);
      if (!invalidFields.includes(field)) invalidFields.push(field);
    }
    const visibleFields = invalidFields.filter((field) => field.closest("[hidden]") === null);
    if (visibleFields.length === 0) {
      this.errorBox.scrollIntoView({ block: "nearest" });
      return;
    }
    for (const field of visibleFields) {
      const section = field.closest("details");
      if (section !== null) section.open = true;
    }
    visibleFields[0].focus();
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
    const items = error.detail.map((problem) => {
      const location = Array.isArray(problem.loc) ? problem.loc : [];
      const name = location[0] === "body" ? location[1] : undefined;
      const text = describeDetail([problem], () => "")[0];
      if (typeof name !== "string" || this.form.elements.namedItem(name) === null) return text;
      return { field: name, label: labelText(this.form, name), text };
    });
    this.showErrors(heading, items);
  }

  clearErrors() {
    this.errorBox.hidden = true;
    this.errorBox.replaceChildren();
    for (const message of this.form.querySelectorAll(".field-error")) message.remove();
    for (const field of this.form.querySelectorAll("[aria-invalid]")) {
      field.removeAttribute("aria-invalid");
      field.removeAttribute("aria-describedby");
    }
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
    const startLabel = status === "paused" || status === "interrupted" ? "Resume" : "Start";
    if (startButton.textContent !== startLabel) startButton.textContent = startLabel;
    const newButton = this.form.querySelector('button[type="submit"]');
    if (newButton.disabled !== busy) newButton.disabled = busy;
  }
}
