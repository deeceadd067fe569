// Keep probabilities of a run's units and weights, read from its config.
// A unit of layer l is kept with q_l = 1 − drop rate of that layer; the output
// layer is never dropped (q = 1). Under dropout a weight W[l][i][j] trains when
// both of its units are kept, with probability q_l · q_{l+1}. Under DropConnect
// no unit is dropped and each weight is kept with q of its source layer.

/** Drop rate of every unit layer, input first and output (0) last. */
export function layerDropRates(config, layerSizes) {
  const hiddenCount = layerSizes.length - 2;
  const hidden = Array.isArray(config.hidden_drop_rates) && config.hidden_drop_rates.length === hiddenCount
    ? config.hidden_drop_rates
    : new Array(hiddenCount).fill(config.hidden_drop_rate ?? 0);
  return [config.input_drop_rate ?? 0, ...hidden, 0];
}

/** Probability that each unit layer's units are kept in a step; 1 for every layer under DropConnect. */
export function unitKeepProbabilities(config, layerSizes) {
  if (config.variant === "dropconnect") return layerSizes.map(() => 1);
  return layerDropRates(config, layerSizes).map((rate) => 1 - rate);
}

/**
 * Probability that a weight of each weight layer is in a step's sub-network,
 * with the factors that make it up, e.g. { probability: 0.25, factors: [0.5, 0.5] }.
 */
export function weightKeepProbabilities(config, layerSizes) {
  const rates = layerDropRates(config, layerSizes);
  const result = [];
  for (let l = 0; l + 1 < layerSizes.length; l++) {
    if (config.variant === "dropconnect") {
      result.push({ probability: 1 - rates[l], factors: [1 - rates[l]] });
    } else {
      const factors = [1 - rates[l], 1 - rates[l + 1]];
      result.push({ probability: factors[0] * factors[1], factors });
    }
  }
  return result;
}

/** Formats a probability with up to 4 significant digits: 0.8, 0.25, 0.6400. */
export function formatProbability(value) {
  return String(Number(value.toPrecision(4)));
}

/** Name of unit layer `layer` in a network of `layerCount` unit layers. */
export function unitLayerName(layer, layerCount) {
  if (layer === 0) return "input";
  if (layer === layerCount - 1) return "output";
  return `hidden ${layer}`;
}
