// The "sub-networks seen" meter: steps trained, distinct sub-networks seen,
// repeats, the 2^N possible sub-networks and the repeats expected under the
// run's keep probabilities (lessons/expectedRepeats.js), with a sentence on
// whether "almost no sub-network trains twice" holds for this run.

import { expectedRepeats, formatFromLog10, formatPowerOfTwo, superscript } from "../lessons/expectedRepeats.js";
import { unitKeepProbabilities } from "../lessons/keepProbabilities.js";
import { MAX_DISTINCT_KEYS } from "../lessons/subnetworkTally.js";
import { MASK_SCOPE_PER_EXAMPLE } from "../protocol.js";

const CLAIM = "“Almost no sub-network trains twice”";

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function setValue(element, text, value) {
  setText(element, text);
  const data = String(value);
  if (element.dataset.value !== data) element.dataset.value = data;
}

function formatCount(count) {
  return count.toLocaleString("en-US");
}

/** "2⁸ = 256", or "2³²⁰ ≈ 2.1 × 10⁹⁶" once it is too large to write out. */
function describePowerOfTwo(exponent) {
  const value = formatPowerOfTwo(exponent);
  return `2${superscript(exponent)} ${value.startsWith("≈") ? value : `= ${value}`}`;
}

/** Groups of droppable items, [{ count, keep }]: units per layer, or weights per layer under DropConnect. */
export function droppableGroups(config, layerSizes) {
  const keeps = config.variant === "dropconnect"
    ? unitKeepProbabilities({ ...config, variant: "dropout" }, layerSizes)
    : unitKeepProbabilities(config, layerSizes);
  const groups = [];
  for (let l = 0; l + 1 < layerSizes.length; l++) {
    const count = config.variant === "dropconnect" ? layerSizes[l] * layerSizes[l + 1] : layerSizes[l];
    groups.push({ count, keep: keeps[l] });
  }
  return groups;
}

export class SubnetworkMeterView {
  /** `fields` maps steps, distinct, repeats, expected, possible, verdict and method to elements. */
  constructor(fields) {
    this.fields = fields;
    this.cache = { key: null, result: null };
  }

  render(store, lessons) {
    const { fields } = this;
    const tally = lessons.tally;
    const config = store.run?.config ?? null;
    if (tally === null || config === null || store.layerSizes === null) {
      for (const name of ["steps", "distinct", "repeats", "expected", "possible"]) setValue(fields[name], "–", "");
      setText(fields.verdict, "");
      setText(fields.method, "");
      return;
    }

    const samples = tally.sampleCount;
    const groups = droppableGroups(config, store.layerSizes);
    const key = `${samples}|${JSON.stringify(groups)}`;
    if (this.cache.key !== key) this.cache = { key, result: expectedRepeats(samples, groups) };
    const expected = this.cache.result;

    const itemNoun = config.variant === "dropconnect" ? "weights" : "units";
    setValue(fields.steps, formatCount(samples), samples);
    setValue(fields.distinct, formatCount(tally.distinctCount), tally.distinctCount);
    setValue(fields.repeats, formatCount(tally.repeatCount), tally.repeatCount);
    setValue(fields.expected, formatFromLog10(expected.value, expected.log10Value), expected.value);
    fields.expected.dataset.log10 = String(expected.log10Value);
    setValue(fields.possible, describePowerOfTwo(expected.droppable), expected.droppable);
    setText(fields.verdict, this.verdict(tally, expected));
    setText(fields.method, this.method(tally, expected, groups, itemNoun, lessons.counts));
  }

  verdict(tally, expected) {
    const samples = tally.sampleCount;
    if (samples === 0) return "No step counted yet.";
    const repeats = tally.repeatCount;
    const expectedText = formatFromLog10(expected.value, expected.log10Value);
    if (expected.method === "none") {
      return `${formatCount(repeats)} of ${formatCount(samples)} steps retrained a sub-network seen before; the expected count was not computed for these keep probabilities.`;
    }
    if (expected.value < 0.01 && repeats === 0) {
      const stepNoun = samples === 1 ? "step" : "steps";
      return `${CLAIM} holds here: with 2${superscript(expected.droppable)} possible sub-networks, ${formatCount(samples)} ${stepNoun} should give only ${expectedText} repeats, and none occurred.`;
    }
    if (expected.value < 1 && repeats <= 1) {
      return `${CLAIM} holds so far: ${formatCount(repeats)} repeats in ${formatCount(samples)} steps, ${expectedText} expected.`;
    }
    return (
      `${CLAIM} fails here: with only ${describePowerOfTwo(expected.droppable)} possible sub-networks, ` +
      `${formatCount(samples)} steps trained ${formatCount(tally.distinctCount)} distinct ones, and ${formatCount(repeats)} steps retrained one seen before (${expectedText} expected).`
    );
  }

  method(tally, expected, groups, itemNoun, counts) {
    const sentences = [];
    const droppable = groups.filter(({ keep }) => keep < 1);
    const equiprobable = droppable.length > 0 && droppable.every(({ keep }) => keep === 0.5);
    if (expected.method === "exact") {
      sentences.push(`Expected repeats = T − Σ_m (1 − (1 − p(m))^T), summed exactly by grouping masks by their number of kept ${itemNoun} per layer.`);
    } else if (expected.method === "series") {
      sentences.push("Expected repeats = Σ_{j≥2} (−1)^j C(T, j) Σ_m p(m)^j, whose first term is the birthday bound C(T, 2) Σ_m p(m)².");
    }
    if (equiprobable) {
      sentences.push("Every droppable item has q = 0.5, so all masks are equally likely: T − 2^N(1 − (1 − 2^−N)^T) ≈ T²/2^(N+1) while T ≪ 2^(N/2).");
    }
    if (counts?.maskScope === MASK_SCOPE_PER_EXAMPLE) sentences.push("With per-example masks every example's mask is one sample.");
    sentences.push("Masks are hashed to 53-bit keys, not stored.");
    if (tally.saturated) sentences.push(`The tally stopped at ${formatCount(MAX_DISTINCT_KEYS)} distinct sub-networks.`);
    return sentences.join(" ");
  }
}
