// Tables and text of an evaluation result: the scores of each rule, the
// agreement with weight scaling per k, the numbers at the chosen k, the exact
// enumeration and the DropConnect note. All text goes in as textContent.

import { formatNumber, formatPercent } from "./format.js";

function cell(text, className = "") {
  const element = document.createElement("td");
  element.textContent = text;
  if (className) element.className = className;
  return element;
}

function row(cells, className = "") {
  const element = document.createElement("tr");
  element.append(...cells);
  if (className) element.className = className;
  return element;
}

function scoreRow(name, score) {
  return row([
    cell(name),
    cell(formatPercent(score.error), "number"),
    cell(formatNumber(score.log_loss, 4), "number"),
    cell(formatPercent(score.agreement_with_weight_scaling), "number"),
  ]);
}

/** Fills the scores table: weight scaling, and the rule's own rows when it has them. */
export function renderScores(tbody, subtitle, result) {
  const rows = [scoreRow("weight scaling", result.weight_scaling)];
  subtitle.textContent = `${result.n_examples} ${result.split} examples`;
  if (result.mc) {
    const k = result.mc.ks[result.mc.ks.length - 1];
    rows.push(scoreRow(`MC arithmetic, k = ${k}`, result.mc.arithmetic.final));
    rows.push(scoreRow(`MC geometric, k = ${k}`, result.mc.geometric.final));
    subtitle.textContent += `; the MC rows are the last repeat's ensemble of ${k} sub-networks`;
  }
  if (result.exact) {
    rows.push(scoreRow("exact arithmetic", result.exact.arithmetic));
    rows.push(scoreRow("exact normalized geometric", result.exact.geometric));
  }
  tbody.replaceChildren(...rows);
}

/** Fills the agreement table, one row per k, and highlights the chosen k. */
export function renderAgreement(tbody, model, highlightIndex) {
  const rows = model.ks.map((k, index) =>
    row(
      [
        cell(String(k)),
        cell(formatPercent(model.arithmetic.agreementMean[index]), "number"),
        cell(formatPercent(model.geometric.agreementMean[index]), "number"),
      ],
      index === highlightIndex ? "highlight" : "",
    ),
  );
  tbody.replaceChildren(...rows);
}

/** Writes the numbers at the chosen k under the slider. */
export function renderKReadout(output, model, index) {
  const k = model.ks[index];
  const part = (name, mean) =>
    `${name} ${formatPercent(mean.errorMean[index])} ± ${formatPercent(mean.errorStd[index])}`
    + ` (agrees with weight scaling on ${formatPercent(mean.agreementMean[index])})`;
  output.textContent = `k = ${k}: test error, mean ± std over ${model.repeats} repeats: `
    + `${part("arithmetic", model.arithmetic)}; ${part("geometric", model.geometric)}; `
    + `weight scaling ${formatPercent(model.weightScalingError)}.`;
  output.dataset.k = String(k);
}

/**
 * Explains how the normalized geometric mean relates to weight scaling for
 * the enumerated layers. `lastHiddenLayer` is the unit layer that feeds the
 * output layer.
 */
function explainGeometric(layers, lastHiddenLayer) {
  if (layers.length === 1 && layers[0] === lastHiddenLayer) {
    return `Why the normalized geometric mean equals weight scaling here: the only enumerated layer, `
      + `unit layer ${lastHiddenLayer}, feeds the softmax through one linear map, so every sub-network's `
      + `logits are linear in its mask; their probability-weighted mean is the logits of the mean mask, `
      + `which are weight scaling's logits, and the normalized geometric mean is the softmax of that mean.`;
  }
  return `Enumerated unit layers ${layers.join(", ")} include one that feeds a nonlinear hidden layer, `
    + `so the mean logits differ from weight scaling's and the normalized geometric mean may disagree `
    + `with it. With only unit layer ${lastHiddenLayer}, the last hidden layer, enumerated the two `
    + `would be equal, because its masks enter the logits linearly.`;
}

/** Fills the exact-enumeration panel from a result with an `exact` part. */
export function renderExact(elements, result, layerSizes) {
  const exact = result.exact;
  elements.subtitle.textContent = `unit layers ${exact.layers.join(", ")}, `
    + `${exact.n_masks.toLocaleString("en-US")} masks, ${result.n_examples} ${result.split} examples`;
  elements.rows.replaceChildren(
    scoreRow("arithmetic mean", exact.arithmetic),
    scoreRow("normalized geometric mean", exact.geometric),
    scoreRow("weight scaling", result.weight_scaling),
  );
  const total = exact.unnormalized_geometric_total;
  elements.total.textContent = `The unnormalized geometric mean, exp of the probability-weighted mean `
    + `log-probability, sums over the classes to ${formatNumber(total, 4)} on average: below 1, as the `
    + `weighted AM–GM inequality requires, so it becomes a distribution only once it is normalized.`;
  elements.total.dataset.total = String(total);
  elements.explanation.textContent = explainGeometric(exact.layers, layerSizes.length - 2);
}
