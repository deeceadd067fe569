// Text about the run's configuration: the update rule and learning-rate
// schedule, and what the weight-update heatmaps can show under them. Each
// sentence is chosen from the run's config, so it is true for that run.

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function formatValue(value) {
  return String(Number(value.toPrecision(4)));
}

const OPTIMIZER_REASONS = {
  momentum: "momentum adds the velocity left by earlier steps",
  nesterov: "Nesterov momentum adds the velocity left by earlier steps",
  adam: "Adam follows running averages of earlier gradients",
};

/** Describes the update rule, e.g. "momentum 0.9 · weight decay 0.0001". */
export function describeOptimizer(config) {
  const parts = [];
  if (config.optimizer === "sgd") {
    parts.push("SGD");
  } else if (config.optimizer === "momentum") {
    parts.push(`momentum ${formatValue(config.momentum)}`);
  } else if (config.optimizer === "nesterov") {
    parts.push(`Nesterov momentum ${formatValue(config.momentum)}`);
  } else if (config.optimizer === "adam") {
    parts.push(
      `Adam (β1 ${formatValue(config.adam_beta1)}, β2 ${formatValue(config.adam_beta2)}, ` +
        `ε ${formatValue(config.adam_epsilon)})`,
    );
  } else {
    parts.push(String(config.optimizer));
  }
  if (config.weight_decay > 0) parts.push(`weight decay ${formatValue(config.weight_decay)}`);
  if (config.max_norm !== null && config.max_norm !== undefined) parts.push(`max-norm ${formatValue(config.max_norm)}`);
  return parts.join(" · ");
}

/**
 * Describes the learning-rate schedule from the configuration alone. The
 * stream does not carry the current learning rate, so this never states it.
 */
export function describeSchedule(config) {
  const rate = formatValue(config.learning_rate);
  if (config.lr_schedule === "step") {
    const epochs = config.lr_step_epochs === 1 ? "epoch" : `${config.lr_step_epochs} epochs`;
    return `learning rate ${rate}, ×${formatValue(config.lr_step_factor)} every ${epochs}`;
  }
  if (config.lr_schedule === "cosine") return `learning rate ${rate}, cosine decay towards 0`;
  if (config.lr_schedule === "constant") return `learning rate ${rate}, constant`;
  return `learning rate ${rate} at the start, ${config.lr_schedule} schedule`;
}

/**
 * Explains which heatmap cells are exactly 0 under the run's update rule.
 * Weights outside a step's sub-network get a zero gradient. Only plain SGD
 * (no weight decay) with one mask per step and no max-norm leaves all of them
 * unchanged.
 */
export function weightUpdateNote(config) {
  const dropConnect = config.variant === "dropconnect";
  const reasons = [];
  if (config.optimizer in OPTIMIZER_REASONS) {
    reasons.push(OPTIMIZER_REASONS[config.optimizer]);
  } else if (config.optimizer !== "sgd") {
    reasons.push(`the ${config.optimizer} update can depend on earlier steps`);
  }
  if (config.weight_decay > 0) reasons.push("weight decay shrinks every weight");
  if (reasons.length > 0) {
    return (
      `Weights outside the sub-network move too, because ${reasons.join(" and ")}. ` +
      "The cells show the real deltas, so a cell that is not grey need not be in the sub-network."
    );
  }

  const sentences = [];
  if (dropConnect) {
    sentences.push("Under plain SGD a weight dropped in a step does not change, so its cell is exactly 0 (grey).");
  } else if (config.mask_scope === "per-step") {
    sentences.push(
      "Under plain SGD with one mask per step, weights outside the sub-network do not change, " +
        "so their cells are exactly 0 (grey).",
    );
  } else {
    sentences.push(
      "With one mask per example, a weight changes when it is in any example's sub-network, " +
        "so only weights outside all of them are exactly 0 (grey).",
    );
  }
  sentences.push("A weight in the sub-network whose gradient is 0 is grey too.");
  if (config.max_norm !== null && config.max_norm !== undefined) {
    sentences.push(
      "Max-norm can rescale a unit's incoming weights, and then the whole column moves, " +
        "inside the sub-network or not.",
    );
  }
  return sentences.join(" ");
}

export class RunNotesView {
  /** `trainingSummary` shows the update rule and schedule, and `updateNote` the heatmap sentence. */
  constructor({ trainingSummary, updateNote }) {
    this.trainingSummary = trainingSummary;
    this.updateNote = updateNote;
  }

  render(store) {
    const config = store.run?.config ?? null;
    if (config === null) {
      setText(this.trainingSummary, "");
      setText(this.updateNote, "");
      return;
    }
    setText(this.trainingSummary, `${describeOptimizer(config)} · ${describeSchedule(config)}`);
    setText(this.updateNote, weightUpdateNote(config));
  }
}
