// Writes one pinned weight's update as a recurrence with its numbers.
// The page has the value before and after a frame and the frame's summed
// delta. Only under plain SGD can it recover the gradient, from
// Δa = −η·∂L/∂a, and only for a frame in which the weight trained in exactly
// one step: the other steps then changed it by exactly 0. Every other case
// states the optimizer's rule in words and shows the delta alone.
// Math is written with `_{...}` for subscripts; renderMath turns it into HTML.

/** Formats a number with 5 significant digits and a real minus sign. */
export function formatSigned(value) {
  if (!Number.isFinite(value)) return String(value);
  const text = Math.abs(value) < 1e-4 && value !== 0 ? value.toExponential(3) : String(Number(value.toPrecision(5)));
  return text.replace("-", "−");
}

/**
 * Returns the learning rate η of `step` (0-based, in 0-based `epoch`) as
 * { value, formula }, or { value: null, reason } when the page cannot know it.
 * The formulas mirror the server's schedules (dropviz.training.optim.learning_rate_at).
 */
export function learningRateAt(config, run, step, epoch) {
  const base = config.learning_rate;
  if (config.lr_schedule === "constant") return { value: base, formula: `η = ${formatSigned(base)}` };
  if (config.lr_schedule === "step") {
    const decays = Math.floor(epoch / config.lr_step_epochs);
    const value = base * config.lr_step_factor ** decays;
    return {
      value,
      formula: `η = ${formatSigned(base)} × ${formatSigned(config.lr_step_factor)}^${decays} = ${formatSigned(value)} (epoch ${epoch})`,
    };
  }
  if (config.lr_schedule === "cosine") {
    const totalSteps = run?.total_steps;
    if (!(totalSteps > 0)) {
      return { value: null, reason: "η is unknown: the cosine schedule needs the run's total step count, which the page has not loaded." };
    }
    const value = base * 0.5 * (1 + Math.cos((Math.PI * step) / totalSteps));
    return { value, formula: `η = ${formatSigned(base)} · ½(1 + cos(π·${step}/${totalSteps})) = ${formatSigned(value)}` };
  }
  return { value: null, reason: `η is unknown: the page does not know the ${config.lr_schedule} schedule.` };
}

const RULES = {
  sgd: "a_{t+1} = a_{t} − η·∂L/∂a_{t}",
  sgdDecay: "a_{t+1} = a_{t} − η·(∂L/∂a_{t} + λ·a_{t})",
  momentum: "v_{t+1} = μ·v_{t} − η·∂L/∂a_{t},  a_{t+1} = a_{t} + v_{t+1}",
  nesterov: "v_{t+1} = μ·v_{t} − η·∂L/∂a_{t},  a_{t+1} = a_{t} + μ·v_{t+1} − η·∂L/∂a_{t}",
  adam: "m_{t+1} = β_{1}·m_{t} + (1 − β_{1})·g_{t},  s_{t+1} = β_{2}·s_{t} + (1 − β_{2})·g_{t}²,  a_{t+1} = a_{t} − η·m̂/(√ŝ + ε)",
};

/** Returns the update rule of the run's optimizer, as math text. */
export function updateRule(config) {
  if (config.optimizer === "sgd") return config.weight_decay > 0 ? RULES.sgdDecay : RULES.sgd;
  return RULES[config.optimizer] ?? `the ${config.optimizer} update`;
}

function stepRange(update) {
  const last = update.firstStep + update.stepCount - 1;
  return update.stepCount === 1 ? `step ${update.firstStep}` : `steps ${update.firstStep}–${last}`;
}

function hiddenState(config) {
  if (config.optimizer === "momentum" || config.optimizer === "nesterov") {
    return "The stream does not carry the velocity v, so only the delta is known";
  }
  if (config.optimizer === "adam") return "The stream does not carry Adam's averages m and s, so only the delta is known";
  return "Only the delta is known";
}

/**
 * Describes one recorded update of a pinned weight (see PinnedWeight.recentUpdates)
 * as { title, math, note }: `math` is the recurrence with the numbers filled in.
 */
export function describeUpdate(config, run, update) {
  const before = formatSigned(update.valueBefore);
  const after = formatSigned(update.valueAfter);
  const delta = formatSigned(update.delta);
  const trained = update.trainedCount;
  const trainedText = trained === 0
    ? "not in the sub-network"
    : `in the sub-network at ${trained === 1 ? "step" : "steps"} ${update.trainedSteps.join(", ")}${trained > update.trainedSteps.length ? ", …" : ""}`;
  const title = `${stepRange(update)}: ${trainedText}`;
  const t = update.firstStep;
  const end = update.firstStep + update.stepCount;
  // "+ −0.0003" reads badly: a negative change is written as a subtraction
  const deltaTerm = update.delta < 0 ? `− ${formatSigned(-update.delta)}` : `+ ${delta}`;
  const summed = `a_{${end}} = a_{${t}} + Δa:  ${after} = ${before} ${deltaTerm}`;
  const plainSgd = config.optimizer === "sgd" && !(config.weight_decay > 0);
  const maxNorm = config.max_norm !== null && config.max_norm !== undefined;

  if (maxNorm) {
    return { title, math: summed, note: "Max-norm may rescale the unit's incoming weights after each step, so the gradient cannot be read from the delta." };
  }
  if (plainSgd && trained === 1) {
    const step = update.trainedSteps[0];
    const rate = learningRateAt(config, run, step, update.trainedEpochs[0]);
    if (rate.value === null) return { title, math: summed, note: rate.reason };
    const gradient = -update.delta / rate.value;
    const note = update.stepCount > 1
      ? `The frame merged ${update.stepCount} steps; plain SGD left the others at exactly 0, so Δa is this one update. ${rate.formula}; ∂L/∂a = −Δa/η.`
      : `${rate.formula}; ∂L/∂a = −Δa/η.`;
    return {
      title,
      math: `a_{${step + 1}} = a_{${step}} − η·∂L/∂a_{${step}}:  ${after} = ${before} − ${formatSigned(rate.value)} × ${formatSigned(gradient)}`,
      note,
    };
  }
  if (plainSgd && trained > 1) {
    return {
      title,
      math: summed,
      note: `The frame merged ${update.stepCount} steps and the weight trained in ${trained} of them; the stream sends only their summed update, so each step's gradient is unknown.`,
    };
  }
  if (config.optimizer === "sgd" && update.stepCount === 1) {
    // SGD with weight decay: Δa = −η(g + λa), so g = −Δa/η − λa
    const rate = learningRateAt(config, run, t, update.lastEpoch);
    if (rate.value === null) return { title, math: summed, note: rate.reason };
    const gradient = -update.delta / rate.value - config.weight_decay * update.valueBefore;
    return {
      title,
      math: `a_{${t + 1}} = a_{${t}} − η·(∂L/∂a_{${t}} + λ·a_{${t}}):  ${after} = ${before} − ${formatSigned(rate.value)} × (${formatSigned(gradient)} + ${formatSigned(config.weight_decay)} × ${before})`,
      note: `${rate.formula}; λ = ${formatSigned(config.weight_decay)}; ∂L/∂a = −Δa/η − λ·a${trained === 0 ? ", which is 0 outside the sub-network: weight decay alone moved it" : ""}.`,
    };
  }
  const outside = trained === 0 ? " It moved although it was outside the sub-network, because the update depends on earlier steps or on weight decay." : "";
  const merged = update.stepCount > 1 ? ` The frame merged ${update.stepCount} steps, so Δa is the sum of their updates.` : "";
  return { title, math: summed, note: `${hiddenState(config)}.${merged}${outside}` };
}

/** Replaces `element`'s content with math text, turning each `_{...}` into a subscript. */
export function renderMath(element, text) {
  const parts = text.split(/_\{([^}]*)\}/);
  const nodes = parts.map((part, index) => {
    if (index % 2 === 0) return document.createTextNode(part);
    const sub = document.createElement("sub");
    sub.textContent = part;
    return sub;
  });
  element.replaceChildren(...nodes);
}
