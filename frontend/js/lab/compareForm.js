// The Compare form: fills its fields from a base configuration, reads them
// back into a run configuration, and parses the values of the varied setting.
// Ranges are left to the server, whose 422 names the field and the value.

const NUMBER_SETTINGS = new Set(["input_drop_rate", "hidden_drop_rate", "learning_rate", "weight_decay"]);
const INTEGER_SETTINGS = new Set(["batch_size", "epochs", "seed"]);
const CHOICES = {
  activation: ["relu", "tanh", "sigmoid"],
  optimizer: ["sgd", "momentum", "nesterov", "adam"],
  variant: ["dropout", "dropconnect"],
  scaling: ["inverted", "classic"],
  mask_scope: ["per-step", "per-example"],
};
export const MAX_COMPARED_RUNS = 8;

/** Help text for the values of each varied setting. */
export const VALUE_HINTS = {
  hidden_drop_rate: "Rates in [0, 1), separated by commas, such as 0, 0.5.",
  input_drop_rate: "Rates in [0, 1), separated by commas, such as 0, 0.2.",
  learning_rate: "Positive numbers separated by commas, such as 0.01, 0.03, 0.1.",
  batch_size: "Whole numbers separated by commas, such as 8, 32.",
  weight_decay: "Numbers of at least 0 separated by commas, such as 0, 0.0001.",
  hidden_sizes: "Layer lists separated by semicolons, such as 32; 128,128.",
  activation: `Any of ${CHOICES.activation.join(", ")}, separated by commas.`,
  optimizer: `Any of ${CHOICES.optimizer.join(", ")}, separated by commas.`,
  variant: `Any of ${CHOICES.variant.join(", ")}, separated by commas.`,
  scaling: `Any of ${CHOICES.scaling.join(", ")}, separated by commas.`,
  mask_scope: `Any of ${CHOICES.mask_scope.join(", ")}, separated by commas.`,
};

function settingFields(form) {
  return Array.from(form.querySelectorAll("[data-setting]"));
}

function parseHiddenSizes(text) {
  const parts = text.split(/[,\s-]+/).filter((part) => part !== "");
  if (parts.length === 0 || !parts.every((part) => /^\d+$/.test(part))) return null;
  return parts.map(Number);
}

/** Sets every form field from `config`; `datasets` are the GET /api/datasets entries. */
export function fillCompareForm(form, config, datasets) {
  const datasetSelect = form.querySelector("[data-setting='dataset']");
  const names = datasets.filter((dataset) => dataset.available).map((dataset) => dataset.name);
  if (!names.includes(config.dataset)) names.push(config.dataset);
  datasetSelect.replaceChildren(...names.map((name) => new Option(name, name)));
  for (const field of settingFields(form)) {
    const value = config[field.dataset.setting];
    field.value = Array.isArray(value) ? value.join(",") : String(value ?? "");
  }
}

/** Disables the form field of the varied setting, whose values come from the values box. */
export function markVariedField(form, setting) {
  for (const field of settingFields(form)) {
    field.disabled = field.dataset.setting === setting;
    field.title = field.disabled ? "Set by the values of the varied setting" : "";
  }
}

/**
 * Returns { config, errors }: `baseConfig` overwritten by the form's fields.
 * Per-layer hidden drop rates are cleared, so the hidden drop rate applies to
 * every hidden layer as the form shows it.
 */
export function readBaseConfig(form, baseConfig) {
  const config = { ...baseConfig, hidden_drop_rates: null };
  const errors = [];
  for (const field of settingFields(form)) {
    field.removeAttribute("aria-invalid");
    if (field.disabled) continue;
    const setting = field.dataset.setting;
    const label = form.querySelector(`label[for='${field.id}']`)?.textContent ?? setting;
    const text = field.value.trim();
    let value = text;
    let error = null;
    if (setting === "hidden_sizes") {
      value = parseHiddenSizes(text);
      if (value === null) error = `${label}: "${text}" is not a list of whole numbers such as 128,128.`;
    } else if (NUMBER_SETTINGS.has(setting) || INTEGER_SETTINGS.has(setting)) {
      const integer = INTEGER_SETTINGS.has(setting);
      value = Number(text);
      if (text === "" || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
        error = `${label}: "${text}" is not a ${integer ? "whole number" : "number"}.`;
      }
    }
    if (error === null) {
      config[setting] = value;
    } else {
      errors.push(error);
      field.setAttribute("aria-invalid", "true");
    }
  }
  return { config, errors };
}

/** Returns { values, errors } for the text of the varied setting's values. */
export function parseVariedValues(setting, text) {
  const separator = setting === "hidden_sizes" ? /;/ : /[,;\s]+/;
  const parts = text.split(separator).map((part) => part.trim()).filter((part) => part !== "");
  const values = [];
  const errors = [];
  for (const part of parts) {
    let value = null;
    if (setting === "hidden_sizes") value = parseHiddenSizes(part);
    else if (NUMBER_SETTINGS.has(setting) || INTEGER_SETTINGS.has(setting)) {
      const number = Number(part);
      const valid = Number.isFinite(number) && (!INTEGER_SETTINGS.has(setting) || Number.isInteger(number));
      value = valid ? number : null;
    } else if (CHOICES[setting].includes(part)) value = part;
    if (value === null) errors.push(`"${part}" is not a valid value. ${VALUE_HINTS[setting]}`);
    else values.push(value);
  }

  const keys = values.map((value) => JSON.stringify(value));
  if (new Set(keys).size !== keys.length) errors.push("Each value may appear only once.");
  if (values.length < 2 && errors.length === 0) errors.push(`Give at least two values. ${VALUE_HINTS[setting]}`);
  if (values.length > MAX_COMPARED_RUNS) errors.push(`Give at most ${MAX_COMPARED_RUNS} values, not ${values.length}.`);
  return { values, errors };
}
