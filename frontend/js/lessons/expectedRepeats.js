// Expected number of repeated sub-networks after T independently sampled masks.
//
// A mask m with probability p(m) is seen at least once in T draws with
// probability 1 − (1 − p(m))^T, so
//   E[distinct] = Σ_m (1 − (1 − p(m))^T)   and
//   E[repeats]  = T − E[distinct] = Σ_m f(p(m)),  f(p) = (1 − p)^T − 1 + T·p.
// Items (units, or weights under DropConnect) that share a keep probability q
// form a group. A mask's probability depends only on how many items of each
// group it keeps, and keeping k of n gives C(n, k) masks of probability
// q^k (1 − q)^(n − k) each. While T · max p(m) is below SERIES_MAX_TP the
// alternating series
//   E[repeats] = Σ_{j≥2} (−1)^j C(T, j) S_j,  S_j = Σ_m p(m)^j = Π_groups (q^j + (1 − q)^j)^n,
// converges in a few terms; its first term C(T, 2)·S_2 is the birthday bound.
// Otherwise f is summed exactly over the kept counts. Everything is in log
// space, because 2^N overflows a double from N = 1,024 on and p(m) underflows.

const EXACT_TUPLE_LIMIT = 300_000; // count combinations summed exactly; about 10 ms at this size
const SERIES_MAX_TP = 0.5; // the series is used only while T · max p(m) is below this
const LN10 = Math.log(10);

/** Merges items with the same keep probability; items kept with probability 1 (or 0) never vary and are left out. */
export function mergeGroups(groups) {
  const byKeep = new Map();
  for (const { count, keep } of groups) {
    if (!(count > 0) || !(keep > 0 && keep < 1)) continue;
    byKeep.set(keep, (byKeep.get(keep) ?? 0) + count);
  }
  return [...byKeep].map(([keep, count]) => ({ count, keep }));
}

/** log of f(p) = (1 − p)^T − 1 + T·p for p = exp(logProbability), T ≥ 2, accurate when p underflows. */
export function logRepeatTerm(logProbability, T) {
  const p = Math.exp(logProbability);
  if (T * p < 1e-3) {
    // f = C(T,2)p² (1 − (T−2)p/3 + (T−2)(T−3)p²/12 − …); the omitted terms are below (Tp)³/60
    const correction = 1 - ((T - 2) * p) / 3 + ((T - 2) * (T - 3) * p * p) / 12;
    return Math.log((T * (T - 1)) / 2) + 2 * logProbability + Math.log(correction);
  }
  return Math.log(Math.expm1(T * Math.log1p(-p)) + T * p);
}

/** Sums exp(values) in log space: returns log Σ exp(v), -Infinity for none. */
class LogSum {
  constructor() {
    this.max = -Infinity;
    this.scaled = 0; // Σ exp(v − max)
  }

  add(value) {
    if (value === -Infinity) return;
    if (value > this.max) {
      this.scaled = this.scaled * Math.exp(this.max - value) + 1;
      this.max = value;
    } else {
      this.scaled += Math.exp(value - this.max);
    }
  }

  get log() {
    return this.scaled > 0 ? this.max + Math.log(this.scaled) : -Infinity;
  }
}

function logFactorials(maxN) {
  const table = new Float64Array(maxN + 1);
  for (let n = 2; n <= maxN; n++) table[n] = table[n - 1] + Math.log(n);
  return table;
}

function exactLogRepeats(T, groups) {
  const logFactorial = logFactorials(Math.max(...groups.map(({ count }) => count)));
  // per group, per kept count k: log C(n, k) and log of q^k (1 − q)^(n − k)
  const perGroup = groups.map(({ count, keep }) => {
    const logCounts = new Float64Array(count + 1);
    const logProbabilities = new Float64Array(count + 1);
    for (let k = 0; k <= count; k++) {
      logCounts[k] = logFactorial[count] - logFactorial[k] - logFactorial[count - k];
      logProbabilities[k] = k * Math.log(keep) + (count - k) * Math.log1p(-keep);
    }
    return { logCounts, logProbabilities };
  });

  const total = new LogSum();
  const visit = (group, logCount, logProbability) => {
    if (group === perGroup.length) {
      total.add(logCount + logRepeatTerm(logProbability, T));
      return;
    }
    const { logCounts, logProbabilities } = perGroup[group];
    for (let k = 0; k < logCounts.length; k++) {
      visit(group + 1, logCount + logCounts[k], logProbability + logProbabilities[k]);
    }
  };
  visit(0, 0, 0);
  return total.log;
}

/** log S_j = Σ n log(q^j + (1 − q)^j), written to stay finite for large j·n. */
function logPowerSum(groups, j) {
  let sum = 0;
  for (const { count, keep } of groups) {
    const larger = Math.max(keep, 1 - keep);
    const ratio = Math.min(keep, 1 - keep) / larger;
    sum += count * (j * Math.log(larger) + Math.log1p(ratio ** j));
  }
  return sum;
}

function seriesLogRepeats(T, groups) {
  // a_j = C(T, j) S_j; the sum is a_2 (1 − a_3/a_2 + a_4/a_2 − …)
  let logBinomial = Math.log((T * (T - 1)) / 2);
  const logFirst = logBinomial + logPowerSum(groups, 2);
  let relative = 1;
  for (let j = 3; j <= T; j++) {
    logBinomial += Math.log((T - j + 1) / j);
    const ratio = Math.exp(logBinomial + logPowerSum(groups, j) - logFirst);
    relative += (j % 2 === 0 ? 1 : -1) * ratio;
    if (ratio < 1e-15) break;
  }
  return logFirst + Math.log(relative);
}

/**
 * Returns the expected repeats after `T` sampled masks whose items fall in
 * `groups` ([{ count, keep }]): { value, log10Value, method, droppable },
 * where method is "exact", "series" or "none" (then value is NaN) and
 * droppable is N, the number of items that can be dropped, so 2^N masks exist.
 */
export function expectedRepeats(T, groups) {
  const merged = mergeGroups(groups);
  const droppable = merged.reduce((sum, { count }) => sum + count, 0);
  if (T < 2 || merged.length === 0) {
    // without droppable items every step trains the same network
    const value = merged.length === 0 ? Math.max(0, T - 1) : 0;
    return { value, log10Value: value > 0 ? Math.log10(value) : -Infinity, method: "exact", droppable };
  }

  let tuples = 1;
  for (const { count } of merged) tuples *= count + 1;
  let logValue;
  let method;
  const logMaxProbability = merged.reduce((sum, { count, keep }) => sum + count * Math.log(Math.max(keep, 1 - keep)), 0);
  // The series needs a few terms and is exact up to its last one, so it is used
  // wherever it converges fast. The exact sum costs one term per count combination.
  if (Math.log(T) + logMaxProbability < Math.log(SERIES_MAX_TP)) {
    logValue = seriesLogRepeats(T, merged);
    method = "series";
  } else if (tuples <= EXACT_TUPLE_LIMIT) {
    logValue = exactLogRepeats(T, merged);
    method = "exact";
  } else {
    return { value: NaN, log10Value: NaN, method: "none", droppable };
  }
  return { value: Math.exp(logValue), log10Value: logValue / LN10, method, droppable };
}

/** Formats a non-negative number that may be far below 1e-308, from its log10: "1,744.1", "0.0032", "2.1 × 10⁻³¹³". */
export function formatFromLog10(value, log10Value) {
  if (Number.isNaN(log10Value)) return "not computed";
  if (log10Value === -Infinity) return "0";
  if (log10Value >= -3 && log10Value < 15) {
    return value >= 100 ? value.toLocaleString("en-US", { maximumFractionDigits: 1 }) : String(Number(value.toPrecision(3)));
  }
  return formatPowerOfTen(log10Value);
}

const SUPERSCRIPTS = { "-": "⁻", "−": "⁻", 0: "⁰", 1: "¹", 2: "²", 3: "³", 4: "⁴", 5: "⁵", 6: "⁶", 7: "⁷", 8: "⁸", 9: "⁹" };

/** Writes an integer with superscript digits, as an exponent: -313 → ⁻³¹³. */
export function superscript(integer) {
  return [...String(integer)].map((character) => SUPERSCRIPTS[character] ?? character).join("");
}

/** Formats 10^log10Value as "2.1 × 10⁻³¹³", with the mantissa in [1, 10). */
function formatPowerOfTen(log10Value) {
  let exponent = Math.floor(log10Value);
  let mantissa = 10 ** (log10Value - exponent);
  if (mantissa.toFixed(1) === "10.0") {
    mantissa = 1;
    exponent += 1;
  }
  return `${mantissa.toFixed(1)} × 10${superscript(exponent)}`;
}

/** Formats 2^N, exactly while it is below 2^53 and as a power of 10 beyond. */
export function formatPowerOfTwo(exponent) {
  if (exponent <= 52) return (2 ** exponent).toLocaleString("en-US");
  return `≈ ${formatPowerOfTen(exponent * Math.log10(2))}`;
}
