// The "How often each part is trained" panel. Each unit layer gets a histogram
// of the share of steps its units were kept, against their keep probability q.
// Each weight layer gets a heatmap of each weight's share of steps in the
// sub-network minus q_in·q_out, and a histogram of those shares. A histogram
// draws the theory as a vertical line at the probability and as a dashed
// curve, the count that Binomial(T, q) puts in each bin (normal approximation).

import { formatProbability, layerDropRates, unitKeepProbabilities, unitLayerName, weightKeepProbabilities } from "../lessons/keepProbabilities.js";
import { drawAxes, drawMessage, prepareCanvas } from "./charts.js";
import { cellAt, describeBlocks, fillDiverging, layoutMatrix } from "./matrixLayout.js";
import { cssGradient } from "./palette.js";

const MAX_BINS = 30;
const FIGURES_PER_DRAW = 2; // of a unit layer's histogram, or a weight layer's map and histogram
const BAR_COLOUR = "#8fa9c9";
const THEORY_COLOUR = "#c2410c";
const MAP_MAX_WIDTH_PX = 240;
const MAP_MAX_HEIGHT_PX = 160;
// A weight layer with more weights is summarized from every k-th source unit's
// row, so one redraw stays near 500,000 reads. Hover values are always exact.
const MAX_SUMMARY_WEIGHTS = 500_000;

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function element(tag, className, text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

/** Error function, Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7). */
function erf(x) {
  const sign = Math.sign(x);
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign * (1 - poly * Math.exp(-x * x));
}

function normalCdf(x, mean, sd) {
  return 0.5 * (1 + erf((x - mean) / (sd * Math.SQRT2)));
}

/**
 * Summarizes the counts of a (rows, columns) matrix in one pass, reading only
 * every `rowStride`-th row: { min, max, sampled, blockMeans }, where
 * blockMeans, when `layout` is given, holds the mean count of each drawn
 * block over the rows read.
 */
export function summarizeCounts(counts, rows, columns, layout = null, rowStride = 1) {
  let min = Infinity;
  let max = -Infinity;
  let sampled = 0;
  const cellCount = layout === null ? 0 : layout.drawnRows * layout.drawnColumns;
  const blockMeans = new Float32Array(cellCount);
  const blockSizes = new Uint32Array(cellCount);
  const drawnColumnOf = new Int32Array(layout === null ? 0 : columns);
  for (let j = 0; j < drawnColumnOf.length; j++) drawnColumnOf[j] = Math.floor(j / layout.columnBlock);
  for (let i = 0; i < rows; i += rowStride) {
    const rowStart = i * columns;
    const drawnRowStart = layout === null ? 0 : Math.floor(i / layout.rowBlock) * layout.drawnColumns;
    for (let j = 0; j < columns; j++) {
      const count = counts[rowStart + j];
      if (count < min) min = count;
      if (count > max) max = count;
      if (layout === null) continue;
      const cell = drawnRowStart + drawnColumnOf[j];
      blockMeans[cell] += count;
      blockSizes[cell]++;
    }
    sampled += columns;
  }
  for (let cell = 0; cell < cellCount; cell++) blockMeans[cell] = blockSizes[cell] > 0 ? blockMeans[cell] / blockSizes[cell] : NaN;
  return { min, max, sampled, blockMeans };
}

/**
 * Bins integer counts (0..total), whose extremes are `min` and `max`, into at
 * most MAX_BINS bins of whole counts. Returns { start, width, bins } where
 * bin b contains counts start + b·width ... + width − 1.
 */
export function binCounts(counts, total, expectedCount, countMin, countMax, columns, rowStride) {
  const min = Math.max(0, Math.floor(Math.min(countMin, expectedCount)));
  const max = Math.min(total, Math.ceil(Math.max(countMax, expectedCount)));
  const width = Math.max(1, Math.ceil((max - min + 1) / MAX_BINS));
  const start = Math.floor(min / width) * width;
  const bins = new Float64Array(Math.floor((max - start) / width) + 1);
  for (let rowStart = 0; rowStart < counts.length; rowStart += rowStride * columns) {
    for (let index = rowStart; index < rowStart + columns; index++) bins[Math.floor((counts[index] - start) / width)]++;
  }
  return { start, width, bins };
}

/** Drawn size of the share map of a rows × columns weight layer. */
export function countMapLayout(rows, columns) {
  return layoutMatrix(rows, columns, MAP_MAX_WIDTH_PX, MAP_MAX_HEIGHT_PX);
}

/**
 * Summarizes one weight layer's trained counts (rows × columns, out of
 * `total` samples) for its share map and histogram: { rowStride, summary,
 * histogram }, where `histogram` is binCounts's result, or null while
 * `total` is 0. A layer of more than MAX_SUMMARY_WEIGHTS weights is read
 * every `rowStride`-th source unit. Needs no DOM, so the stream worker runs it.
 */
export function summarizeWeightCounts(counts, rows, columns, total, probability) {
  const layout = countMapLayout(rows, columns);
  // at most one stride per drawn row, so every drawn cell reads at least one row
  const rowStride = Math.max(1, Math.min(layout.rowBlock, Math.ceil(counts.length / MAX_SUMMARY_WEIGHTS)));
  const summary = summarizeCounts(counts, rows, columns, layout, rowStride);
  const histogram = total > 0
    ? binCounts(counts, total, total * probability, summary.min, summary.max, columns, rowStride)
    : null;
  return { rowStride, summary, histogram };
}

/**
 * Draws a histogram of counts out of `total`, with the Binomial(total,
 * probability) theory. `histogram` comes from binCounts, `summary` from
 * summarizeCounts over the same counts.
 */
function drawShareHistogram(canvas, histogram, summary, total, probability, noun) {
  const frame = prepareCanvas(canvas);
  if (total === 0) {
    drawAxes(frame, { xDomain: [0, 1], yDomain: [0, 1], xLabel: "share of steps", yLabel: noun });
    drawMessage(frame, "No step counted yet");
    return;
  }
  const { start, width, bins } = histogram;
  const expected = new Float64Array(bins.length);
  const mean = total * probability;
  const sd = Math.sqrt(total * probability * (1 - probability));
  if (sd > 0) {
    for (let bin = 0; bin < bins.length; bin++) {
      const low = start + bin * width;
      expected[bin] = summary.sampled * (normalCdf(low + width - 0.5, mean, sd) - normalCdf(low - 0.5, mean, sd));
    }
  }
  const yMax = Math.max(1, ...bins, ...expected) * 1.1;
  const xDomain = [start / total, (start + bins.length * width) / total];
  const { toX, toY } = drawAxes(frame, { xDomain, yDomain: [0, yMax], xLabel: "share of steps", yLabel: noun });
  const { context } = frame;

  context.fillStyle = BAR_COLOUR;
  for (let bin = 0; bin < bins.length; bin++) {
    if (bins[bin] === 0) continue;
    const left = toX((start + bin * width) / total);
    const right = toX((start + (bin + 1) * width) / total);
    context.fillRect(left + 0.5, toY(bins[bin]), Math.max(1, right - left - 1), toY(0) - toY(bins[bin]));
  }

  context.strokeStyle = THEORY_COLOUR;
  context.lineWidth = 1.5;
  if (sd > 0) {
    context.setLineDash([4, 3]);
    context.beginPath();
    for (let bin = 0; bin < bins.length; bin++) {
      const x = toX((start + (bin + 0.5) * width) / total);
      if (bin === 0) context.moveTo(x, toY(expected[bin]));
      else context.lineTo(x, toY(expected[bin]));
    }
    context.stroke();
    context.setLineDash([]);
  }
  const theoryX = Math.round(toX(probability)) + 0.5;
  context.beginPath();
  context.moveTo(theoryX, toY(0));
  context.lineTo(theoryX, toY(yMax));
  context.stroke();
}

export class TrainingCountsView {
  /** `callbacks` as for HeatmapView: onHover, onLeave and onPin for the share maps. */
  constructor({ summary, lesson, units, weights }, callbacks) {
    this.elements = { summary, lesson, units, weights };
    this.callbacks = callbacks;
    this.layerSizes = null;
    this.unitFigures = [];
    this.weightFigures = [];
    this.nextFigure = 0; // the next figure of the pass in progress, 0 between passes
    this.passCounts = null; // the counts the pass in progress draws
  }

  /**
   * Redraws the panel from `lessons.counts`, FIGURES_PER_DRAW figures per
   * call, because all six histograms and three maps of a 784-512-512-10 run
   * at once took up to 45 ms of the page's main thread. Returns true while
   * figures of this pass remain or newer counts arrived during it, and the
   * caller calls again. A pass draws every figure from the counts it started
   * with, and the summary and lesson sentences change when it ends, so they
   * describe the figures on screen.
   */
  render(store, lessons) {
    if (lessons.counts === null || store.layerSizes === null) {
      this.elements.units.replaceChildren();
      this.elements.weights.replaceChildren();
      this.layerSizes = null;
      this.nextFigure = 0;
      setText(this.elements.summary, "");
      setText(this.elements.lesson, "");
      return false;
    }
    if (this.layerSizes === null || this.layerSizes.join() !== store.layerSizes.join()) this.build(store.layerSizes);
    if (this.nextFigure === 0) this.passCounts = lessons.counts;

    const counts = this.passCounts;
    const config = store.run?.config ?? {};
    const figureCount = this.unitFigures.length + this.weightFigures.length;
    const end = Math.min(figureCount, this.nextFigure + FIGURES_PER_DRAW);
    for (let index = this.nextFigure; index < end; index++) {
      if (index < this.unitFigures.length) this.drawUnitLayer(index, counts, config);
      else this.drawWeightLayer(index - this.unitFigures.length, counts, config);
    }
    this.nextFigure = end < figureCount ? end : 0;
    if (this.nextFigure > 0) return true;

    const total = counts.sampleCount;
    const missed = counts.missedSteps > 0 ? ` ${counts.missedSteps.toLocaleString("en-US")} steps were missed while reconnecting.` : "";
    const span = counts.stepCount > 0 ? `, steps ${counts.firstStep}–${counts.nextStep - 1}` : "";
    setText(
      this.elements.summary,
      `Counted from every step's masks, merged frames included: ${total.toLocaleString("en-US")} ${counts.sampleNoun}${span}.${missed}`,
    );
    setText(this.elements.lesson, this.lessonText(config, store.layerSizes, weightKeepProbabilities(config, store.layerSizes)));
    // counts that arrived during the pass were marked while it still ran, so only a new pass draws them
    return lessons.counts !== counts;
  }

  drawUnitLayer(layer, counts, config) {
    const figure = this.unitFigures[layer];
    const total = counts.sampleCount;
    const keep = unitKeepProbabilities(config, this.layerSizes)[layer];
    const keptCounts = counts.keptCounts[layer];
    const summary = summarizeCounts(keptCounts, 1, keptCounts.length);
    const histogram = total > 0
      ? binCounts(keptCounts, total, total * keep, summary.min, summary.max, keptCounts.length, 1)
      : null;
    drawShareHistogram(figure.canvas, histogram, summary, total, keep, "units");
    let sum = 0;
    for (let unit = 0; unit < keptCounts.length; unit++) sum += keptCounts[unit];
    const share = total > 0 ? sum / keptCounts.length / total : NaN;
    setText(figure.stat, `mean kept share ${Number.isFinite(share) ? share.toFixed(3) : "–"}; theory q = ${formatProbability(keep)}`);
  }

  build(layerSizes) {
    this.layerSizes = layerSizes.slice();
    this.nextFigure = 0;
    const layerCount = layerSizes.length;
    this.unitFigures = layerSizes.slice(0, -1).map((count, layer) => {
      const figure = element("figure", "counts-figure");
      figure.dataset.layer = String(layer);
      const canvas = element("canvas", "counts-histogram");
      canvas.setAttribute("aria-label", `histogram of kept shares of ${unitLayerName(layer, layerCount)} units`);
      const stat = element("figcaption", "counts-stat");
      figure.append(element("figcaption", "", `${unitLayerName(layer, layerCount)}: ${count.toLocaleString("en-US")} units`), canvas, stat);
      return { figure, canvas, stat };
    });
    this.elements.units.replaceChildren(...this.unitFigures.map(({ figure }) => figure));

    this.weightFigures = [];
    for (let l = 0; l + 1 < layerCount; l++) {
      const rows = layerSizes[l];
      const columns = layerSizes[l + 1];
      const figure = element("figure", "counts-figure counts-weight-figure");
      figure.dataset.layer = String(l);
      const caption = element(
        "figcaption",
        "",
        `W[${l}] ${unitLayerName(l, layerCount)} → ${unitLayerName(l + 1, layerCount)}, ${rows}×${columns}`,
      );
      const map = element("canvas", "counts-map");
      map.setAttribute("aria-label", `share of steps each weight of layer ${l} was trained, minus theory`);
      const layout = countMapLayout(rows, columns);
      map.width = layout.drawnColumns;
      map.height = layout.drawnRows;
      map.style.width = `${layout.width}px`;
      map.style.height = `${layout.height}px`;
      this.listen(map, l, rows, columns);
      const bar = element("div", "gradient-bar");
      bar.style.background = cssGradient();
      const ticks = element("div", "gradient-ticks");
      const tickSpans = ["", "", ""].map(() => element("span"));
      ticks.append(...tickSpans);
      const mapNote = element("div", "counts-map-note");
      const legend = element("div", "counts-legend");
      legend.append(bar, ticks, mapNote);
      const histogram = element("canvas", "counts-histogram");
      histogram.setAttribute("aria-label", `histogram of trained shares of weight layer ${l}`);
      const stat = element("figcaption", "counts-stat");
      figure.append(caption, map, legend, histogram, stat);
      this.weightFigures.push({
        figure, map, context: map.getContext("2d"), image: map.getContext("2d").createImageData(layout.drawnColumns, layout.drawnRows),
        layout, rows, columns, tickSpans, mapNote, histogram, stat,
      });
    }
    this.elements.weights.replaceChildren(...this.weightFigures.map(({ figure }) => figure));
  }

  listen(canvas, layer, rows, columns) {
    canvas.addEventListener("pointermove", (event) => {
      const cell = cellAt(event, canvas, rows, columns);
      if (cell === null) this.callbacks.onLeave();
      else this.callbacks.onHover({ layer, ...cell }, event);
    }, { passive: true });
    canvas.addEventListener("pointerleave", () => this.callbacks.onLeave(), { passive: true });
    canvas.addEventListener("click", (event) => {
      const cell = cellAt(event, canvas, rows, columns);
      if (cell !== null) this.callbacks.onPin({ layer, ...cell });
    }, { passive: true });
  }

  /** Draws weight layer `layer`'s share map and histogram from summarizeWeightCounts's result. */
  drawWeightLayer(layer, counts, config) {
    const figure = this.weightFigures[layer];
    const { rowStride, summary, histogram } = counts.weightLayers[layer];
    const { probability, factors } = weightKeepProbabilities(config, this.layerSizes)[layer];
    const total = counts.sampleCount;
    const share = total > 0 ? counts.trainedTotals[layer] / (figure.rows * figure.columns) / total : NaN;
    // shares of the mean count per drawn cell; the summary stays as it is, because a resize draws it again
    const means = summary.blockMeans;
    const drawn = new Float32Array(means.length);
    let bound = 0;
    for (let index = 0; index < drawn.length; index++) {
      drawn[index] = total > 0 ? means[index] / total : 0;
      if (Number.isFinite(drawn[index])) bound = Math.max(bound, Math.abs(drawn[index] - probability));
    }
    fillDiverging(figure.image, drawn, total > 0 ? bound : 0, total > 0 ? probability : 0);
    figure.context.putImageData(figure.image, 0, 0);
    const [low, middle, high] = figure.tickSpans;
    setText(low, total > 0 ? formatProbability(Math.max(0, probability - bound)) : "");
    setText(middle, formatProbability(probability));
    setText(high, total > 0 ? formatProbability(Math.min(1, probability + bound)) : "");
    setText(
      figure.mapNote,
      `Colour: share of steps in the sub-network minus ${factors.length > 1 ? "q_in·q_out" : "q"} = ${formatProbability(probability)}. ` +
        describeBlocks(figure.layout, "mean share") +
        (rowStride > 1 ? ` Map and histogram read the weights of one source unit in every ${rowStride}.` : ""),
    );

    drawShareHistogram(figure.histogram, histogram, summary, total, probability, "weights");
    figure.meanShare = share;
    const theory = factors.length > 1
      ? `theory q_in·q_out = ${factors.map(formatProbability).join(" × ")} = ${formatProbability(probability)}`
      : `theory q = ${formatProbability(probability)}`;
    setText(figure.stat, `mean trained share ${Number.isFinite(share) ? share.toFixed(3) : "–"}; ${theory}`);
    figure.figure.dataset.meanShare = Number.isFinite(share) ? share.toFixed(4) : "";
  }

  /** Returns the sentence that states the lesson, with this run's numbers. */
  lessonText(config, layerSizes, weightKeeps) {
    const layerCount = layerSizes.length;
    if (config.variant === "dropconnect") {
      return "Under DropConnect each weight is dropped on its own, with the drop rate of its source layer, so a weight trains in a share q of the steps and every unit trains in every step.";
    }
    // prefer a hidden-to-hidden layer, where both ends can be dropped
    let layer = weightKeeps.findIndex((_, l) => l >= 1 && l + 2 < layerCount);
    if (layer < 0) layer = 0;
    const { probability, factors } = weightKeeps[layer];
    const rates = layerDropRates(config, layerSizes);
    const measured = this.weightFigures[layer]?.meanShare ?? NaN;
    const measuredText = Number.isFinite(measured) ? ` Measured here: ${measured.toFixed(3)}.` : "";
    const names = `${unitLayerName(layer, layerCount)} → ${unitLayerName(layer + 1, layerCount)}`;
    if (layer + 2 === layerCount) {
      return `A weight into the output trains whenever its source unit is kept, a share q = ${formatProbability(factors[0])} of the steps (${names}).${measuredText}`;
    }
    // "not q_out" corrects the common mistake only when both ends can be dropped
    const contrast = factors.every((factor) => factor < 1) ? `, not ${formatProbability(factors[1])}` : "";
    return (
      `A weight trains only when both of its units are kept. For ${names}, at drop rates ` +
      `${formatProbability(rates[layer])} and ${formatProbability(rates[layer + 1])}, that is ` +
      `${factors.map(formatProbability).join(" × ")} = ${formatProbability(probability)} of the steps` +
      `${contrast}.${measuredText}`
    );
  }
}
