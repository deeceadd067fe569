// Captions of the slow-motion phases (player.js). Each states what the
// trainer does in that phase under this run's settings, as
// backend/dropviz/training/ implements it (trainer.py, dropout.py, mlp.py,
// optim.py), with the numbers of the step shown. No DOM.

import { formatProbability, layerDropRates, unitLayerName } from "../lessons/keepProbabilities.js";
import { isUnitKept, isWeightKept, MASK_SCOPE_PER_EXAMPLE, MASK_SCOPE_WEIGHTS } from "../protocol.js";

/** The phases of one step, in the order they play. */
export const PHASES = Object.freeze(["mask", "forward", "loss", "backward", "update"]);
export const PHASE_TITLES = Object.freeze({
  mask: "Sample the mask",
  forward: "Forward",
  loss: "Loss",
  backward: "Backward",
  update: "Update",
});

function formatCount(count) {
  return count.toLocaleString("en-US");
}

/** Keep probability q of each masked unit layer (all but the output), input first. */
function keepProbabilities(config, layerSizes) {
  return layerDropRates(config, layerSizes).slice(0, -1).map((rate) => 1 - rate);
}

/** "input q = 0.8, hidden 1 q = 0.5": the keep probability of each masked layer. */
function describeKeep(config, layerSizes) {
  return keepProbabilities(config, layerSizes)
    .map((keep, layer) => `${unitLayerName(layer, layerSizes.length)} q = ${formatProbability(keep)}`)
    .join(", ");
}

/** "×1.25 for input, ×2 for hidden 1": the inverted-scaling factor 1/q of each layer that has dropout. */
function describeFactors(config, layerSizes) {
  const factors = keepProbabilities(config, layerSizes)
    .map((keep, layer) => ({ keep, layer }))
    .filter(({ keep }) => keep < 1)
    .map(({ keep, layer }) => `×${formatProbability(1 / keep)} for ${unitLayerName(layer, layerSizes.length)}`);
  return factors.length > 0 ? factors.join(", ") : "no layer has dropout, so nothing is scaled";
}

/** "input 2 of 2, hidden 1 5 of 8": kept units of each masked layer in mask row 0. */
function describeKeptUnits(masks, layerSizes) {
  return masks.map((maskBytes, layer) => {
    let kept = 0;
    for (let unit = 0; unit < layerSizes[layer]; unit++) kept += isUnitKept(maskBytes, unit, 0) ? 1 : 0;
    return `${unitLayerName(layer, layerSizes.length)} ${kept} of ${layerSizes[layer]}`;
  }).join(", ");
}

/** "W[0] 10 of 16, W[1] 40 of 64": kept weights of each DropConnect mask. */
function describeKeptWeights(masks, layerSizes) {
  return masks.map((maskBytes, layer) => {
    const rows = layerSizes[layer];
    const columns = layerSizes[layer + 1];
    let kept = 0;
    for (let source = 0; source < rows; source++) {
      for (let destination = 0; destination < columns; destination++) {
        kept += isWeightKept(maskBytes, columns, source, destination) ? 1 : 0;
      }
    }
    return `W[${layer}] ${formatCount(kept)} of ${formatCount(rows * columns)}`;
  }).join(", ");
}

function describeMask(config, layerSizes, lastFrame) {
  const maskScope = lastFrame.frame.maskScope;
  const keep = describeKeep(config, layerSizes);
  if (maskScope === MASK_SCOPE_WEIGHTS) {
    return `Each weight is kept with the probability q of its source layer (${keep}), and no unit is dropped. `
      + `This step keeps ${describeKeptWeights(lastFrame.masks, layerSizes)} weights; the dropped links fade.`;
  }
  const kept = describeKeptUnits(lastFrame.masks, layerSizes);
  if (maskScope === MASK_SCOPE_PER_EXAMPLE) {
    return `Each of the ${lastFrame.maskRows} examples of this mini-batch draws its own mask, keeping each unit `
      + `with its layer's probability q (${keep}). The view shows example 0's sub-network: it keeps ${kept}.`;
  }
  return `Each unit is kept with its layer's probability q (${keep}), independently of the other units and `
    + `steps. This step keeps ${kept}; the dropped units fade out.`;
}

function describeForward(config, layerSizes, maskScope) {
  const inverted = config.scaling !== "classic";
  const factors = describeFactors(config, layerSizes);
  if (maskScope === MASK_SCOPE_WEIGHTS) {
    return inverted
      ? `Only kept weights carry signals forward, each multiplied by 1/q (inverted scaling: ${factors}), so `
        + "the full network needs no scaling at evaluation."
      : "Only kept weights carry signals forward, unscaled (classic scaling); at evaluation each layer's "
        + "weights are multiplied by q instead.";
  }
  const who = maskScope === MASK_SCOPE_PER_EXAMPLE ? "Each example passes through its own sub-network: only its" : "Only";
  return inverted
    ? `${who} kept units pass activations forward, and each kept activation is multiplied by 1/q (inverted `
      + `dropout: ${factors}), so the full network needs no scaling at evaluation.`
    : `${who} kept units pass activations forward, unscaled (classic dropout); at evaluation each unit's `
      + "output is multiplied by q instead.";
}

function describeLoss(lastFrame) {
  const loss = Number.isFinite(lastFrame.loss) ? lastFrame.loss.toFixed(4) : String(lastFrame.loss);
  const accuracy = Number.isFinite(lastFrame.batchAccuracy) ? `${(lastFrame.batchAccuracy * 100).toFixed(1)}%` : "–";
  return "The output's softmax is compared with the labels: the mean cross-entropy of this step's mini-batch, "
    + `with dropout, is ${loss} (batch accuracy ${accuracy}).`;
}

function describeBackward(config, maskScope) {
  if (maskScope === MASK_SCOPE_WEIGHTS) {
    return "The gradient flows back through the kept weights only, so each dropped weight gets a gradient "
      + "of 0 from this mini-batch.";
  }
  if (maskScope === MASK_SCOPE_PER_EXAMPLE) {
    return "Each example's gradient flows back through its own sub-network, so a weight gets gradient only "
      + "from the examples whose masks kept both of its units.";
  }
  const factors = config.scaling === "classic" ? "the same mask" : "the same mask and 1/q factors";
  return `The gradient flows back through the same sub-network, multiplied by ${factors}. A dropped unit `
    + "passes no gradient, so every weight into or out of it, and its bias, gets a gradient of 0 from this "
    + "mini-batch.";
}

function describeLearningRate(config) {
  const rate = formatProbability(config.learning_rate);
  if (config.lr_schedule === "constant" || config.lr_schedule === undefined) return `η = ${rate}`;
  const schedule = config.lr_schedule === "step" ? "step decay" : config.lr_schedule;
  return `η from the ${schedule} schedule, ${rate} at the first step`;
}

/**
 * Describes the update. `changed` and `total` count the weights whose delta
 * in this step is nonzero and all weights of the layers the frame carries.
 */
function describeUpdate(config, maskScope, changed, total) {
  const learningRate = describeLearningRate(config);
  const momentum = config.momentum;
  const rule = {
    sgd: `SGD adds −η·gradient to each shared weight (${learningRate}).`,
    momentum: `Momentum SGD adds the velocity v = ${momentum}·v_previous − η·gradient to each shared weight `
      + `(${learningRate}).`,
    nesterov: `Nesterov momentum adds ${momentum}·v − η·gradient to each shared weight, where the velocity `
      + `v = ${momentum}·v_previous − η·gradient (${learningRate}).`,
    adam: "Adam adds −η times its bias-corrected running mean of gradients, divided by the square root of its "
      + `bias-corrected running mean of squared gradients plus ε, to each shared weight (${learningRate}).`,
  }[config.optimizer] ?? `The ${config.optimizer} optimizer updates the shared weights.`;

  const movers = [];
  if (config.optimizer === "momentum" || config.optimizer === "nesterov") {
    movers.push("the velocity still carries earlier steps' gradients");
  } else if (config.optimizer === "adam") {
    movers.push("Adam's running means still carry earlier steps' gradients");
  }
  if (config.weight_decay > 0) movers.push(`weight decay adds ${config.weight_decay}·w to every weight's gradient`);
  if (config.max_norm !== null && config.max_norm !== undefined) {
    movers.push(`max-norm rescales any unit's incoming weights whose norm exceeds ${config.max_norm}`);
  }
  const used = maskScope === MASK_SCOPE_PER_EXAMPLE ? "some example's sub-network used" : "this sub-network used";
  const outside = movers.length === 0
    ? `A weight with a gradient of 0 keeps its value, so only weights that ${used} can change.`
    : `Weights outside the sub-network can change too, because ${movers.join(", and ")}.`;
  return `${rule} ${outside} ${formatCount(changed)} of ${formatCount(total)} weights changed in this step `
    + "(bright cells); the others stay dark.";
}

/**
 * Returns the caption of `phase` for the step in `lastFrame` (a store-like
 * lastFrame: frame, step, masks, maskRows, loss, batchAccuracy). `detail`
 * has `layer`, the weight layer that the forward and backward phases are
 * at, and `changed` and `total` for the update.
 */
export function describePhase(phase, config, layerSizes, lastFrame, detail = {}) {
  const maskScope = lastFrame.frame.maskScope;
  const layerCount = layerSizes.length;
  const at = (from, to) => ` Now: ${unitLayerName(from, layerCount)} → ${unitLayerName(to, layerCount)}.`;
  if (phase === "mask") return describeMask(config, layerSizes, lastFrame);
  if (phase === "forward") return describeForward(config, layerSizes, maskScope) + at(detail.layer, detail.layer + 1);
  if (phase === "loss") return describeLoss(lastFrame);
  if (phase === "backward") return describeBackward(config, maskScope) + at(detail.layer + 1, detail.layer);
  if (phase === "update") return describeUpdate(config, maskScope, detail.changed, detail.total);
  throw new Error(`Unknown slow-motion phase ${JSON.stringify(phase)}; expected one of ${PHASES.join(", ")}.`);
}
