// Number formats, colours and setting names shared by the lab's views.

/** Colours of up to eight compared runs, in creation order. */
export const RUN_COLOURS = ["#2f6db5", "#d9711c", "#2e8b57", "#8e5bb5", "#c0392b", "#1f9aa5", "#8a6d1e", "#d1497b"];

/** Colours of the ensemble rules; weight scaling is the dark reference line. */
export const RULE_COLOURS = {
  weight_scaling: "#3d4a5c",
  arithmetic: "#2f6db5",
  geometric: "#d9711c",
};

/** Readable names of the run settings the lab shows or varies. */
export const SETTING_NAMES = {
  hidden_drop_rate: "hidden drop rate",
  input_drop_rate: "input drop rate",
  learning_rate: "learning rate",
  batch_size: "batch size",
  weight_decay: "weight decay",
  hidden_sizes: "hidden layers",
  activation: "activation",
  optimizer: "optimizer",
  variant: "variant",
  scaling: "scaling",
  mask_scope: "mask scope",
  seed: "seed",
  dataset: "dataset",
  epochs: "epochs",
};

/** Formats a share in [0, 1] as a percentage; null and undefined become an en dash. */
export function formatPercent(share, digits = 1) {
  if (share === null || share === undefined || !Number.isFinite(share)) return "–";
  return `${(share * 100).toFixed(digits)}%`;
}

/** Formats a number with `digits` significant digits; null becomes an en dash. */
export function formatNumber(value, digits = 3) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return String(Number(value.toPrecision(digits)));
}

/** Formats a setting's value as a run label shows it: hidden sizes as 64-64, numbers as typed. */
export function formatSettingValue(value) {
  if (Array.isArray(value)) return value.join("-");
  if (value === null || value === undefined) return "none";
  return String(value);
}

/** Returns a run's legend label, such as "hidden drop rate 0.5". */
export function settingLabel(setting, value) {
  return `${SETTING_NAMES[setting] ?? setting} ${formatSettingValue(value)}`;
}

/** Returns the drop rate of each unit layer that can be masked, input first. */
export function unitDropRates(run) {
  const config = run.config;
  const hiddenCount = run.layer_sizes.length - 2;
  const hiddenRates = config.hidden_drop_rates ?? Array(hiddenCount).fill(config.hidden_drop_rate);
  return [config.input_drop_rate, ...hiddenRates];
}
