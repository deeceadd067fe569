// Hover text for one unit or one weight: its value, how often it was kept or
// trained, and the probability theory gives for that. Plain data, no DOM:
// { title, lines, image? }, where image contains a first-hidden-layer unit's
// incoming weights shaped like the input image.

import { formatProbability, layerDropRates, unitKeepProbabilities, unitLayerName, weightKeepProbabilities } from "./keepProbabilities.js";
import { isUnitKept, MASK_SCOPE_WEIGHTS } from "../protocol.js";

function formatValue(value) {
  if (!Number.isFinite(value)) return `${value} (not finite)`;
  return String(Number(value.toPrecision(4))).replace("-", "−");
}

function formatCount(count) {
  return count.toLocaleString("en-US");
}

/** "412 of 1,000 steps (41.2%)". */
export function formatShare(count, total, noun) {
  const percent = total > 0 ? ` (${((100 * count) / total).toFixed(1)}%)` : "";
  return `${formatCount(count)} of ${formatCount(total)} ${noun}${percent}`;
}

function latestKept(store, layer, unit) {
  const lastFrame = store.lastFrame;
  if (lastFrame === null || lastFrame.frame.maskScope === MASK_SCOPE_WEIGHTS || layer >= lastFrame.masks.length) return null;
  return isUnitKept(lastFrame.masks[layer], unit, 0);
}

/** Hover content for unit `unit` of unit layer `layer`. */
export function describeUnit(store, lessons, layer, unit) {
  const layerSizes = store.layerSizes;
  const layerCount = layerSizes.length;
  const config = store.run?.config ?? {};
  const lines = [];
  if (layer > 0 && store.biases !== null) lines.push(`bias b = ${formatValue(store.biases[layer - 1][unit])}`);

  const kept = latestKept(store, layer, unit);
  if (kept !== null) lines.push(kept ? "kept in the latest step" : "dropped in the latest step");

  const counts = lessons.counts;
  const keep = unitKeepProbabilities(config, layerSizes)[layer];
  const rate = layerDropRates(config, layerSizes)[layer];
  if (counts !== null) {
    const share = formatShare(counts.keptCount(layer, unit), counts.sampleCount, counts.sampleNoun);
    if (layer === layerCount - 1) {
      lines.push(`kept in ${share}; output units are never dropped, q = 1`);
    } else if (config.variant === "dropconnect") {
      lines.push(`kept in ${share}; DropConnect drops weights, never units`);
    } else {
      lines.push(`kept in ${share}; keep probability q = ${formatProbability(keep)} (drop rate ${formatProbability(rate)})`);
    }
  }

  const result = { title: `${unitLayerName(layer, layerCount)}, unit ${unit}`, lines, image: null };
  const inputShape = store.inputShape;
  if (layer === 1 && Array.isArray(inputShape) && inputShape[0] * inputShape[1] === layerSizes[0] && store.weights !== null) {
    // W[0] is (n_0, n_1), so column `unit` contains the unit's incoming weights, one per pixel
    const [height, width] = inputShape;
    const column = new Float32Array(height * width);
    for (let pixel = 0; pixel < column.length; pixel++) column[pixel] = store.weights[0][pixel * layerSizes[1] + unit];
    result.image = { values: column, height, width, caption: `incoming weights as a ${height}×${width} image` };
  }
  return result;
}

/** Hover content for weight W[layer][source][destination]. */
export function describeWeight(store, lessons, layer, source, destination) {
  const layerSizes = store.layerSizes;
  const layerCount = layerSizes.length;
  const config = store.run?.config ?? {};
  const index = source * layerSizes[layer + 1] + destination;
  const lines = [];
  if (store.weights !== null) lines.push(`w = ${formatValue(store.weights[layer][index])}`);
  const deltas = store.lastFrame?.frame.weightDeltas[layer];
  if (deltas) {
    const frame = store.lastFrame.frame;
    const span = frame.stepCount === 1 ? `step ${frame.firstStep}` : `steps ${frame.firstStep}–${frame.firstStep + frame.stepCount - 1}`;
    lines.push(`Δw of ${span} = ${formatValue(deltas[index])}`);
  }

  const counts = lessons.counts;
  if (counts !== null) {
    const { probability, factors } = weightKeepProbabilities(config, layerSizes)[layer];
    const share = formatShare(counts.trainedCount(layer, source, destination), counts.sampleCount, counts.sampleNoun);
    const theory = config.variant === "dropconnect"
      ? `keep probability of the weight q = ${formatProbability(probability)}`
      : `expected q_in·q_out = ${factors.map(formatProbability).join(" × ")} = ${formatProbability(probability)}`;
    lines.push(`in the sub-network in ${share}; ${theory}`);
  }
  lines.push("Click to follow this weight.");
  return {
    title: `W[${layer}][${source}→${destination}]: ${unitLayerName(layer, layerCount)} unit ${source} → ${unitLayerName(layer + 1, layerCount)} unit ${destination}`,
    lines,
    image: null,
  };
}
