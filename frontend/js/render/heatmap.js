// Weight-update heatmaps: one canvas per weight layer (rows = source units,
// columns = destination units), scaled up by CSS with pixelated rendering.
// Three modes: the latest frame's ΔW, a decaying trail, and the cumulative
// |ΔW| since the page connected (lessons/updateHistory.js). Each map sits in a
// bounded box (render/matrixLayout.js); a map larger than its box is drawn in
// blocks. Each draw fills one ImageData from the precomputed palette and puts it once.

import { SCALE_WINDOW_STEPS, TRAIL_HALF_LIFE_STEPS } from "../lessons/updateHistory.js";
import { unitLayerName } from "../lessons/keepProbabilities.js";
import { cellAt, describeBlocks, fillDiverging, layoutMatrix, MIN_SIDE_PX, reduceAndMeasure } from "./matrixLayout.js";
import { cssGradient } from "./palette.js";
import { clientSize } from "./elementSize.js";

const MAX_MAP_HEIGHT_PX = 280;
const MIN_MAP_HEIGHT_PX = 60;
const MAX_MAP_WIDTH_PX = 560;
const MIN_FIGURE_WIDTH_PX = 170; // room for the legend under a narrow matrix
const FIGURE_GAP_PX = 28;

const MODE_SYMBOLS = { delta: "ΔW", trail: "trail of ΔW", cumulative: "Σ|ΔW|" };

/** Formats a positive scale bound compactly, such as 0.0123 or 4.5e-5. */
export function formatScale(value) {
  if (!(value > 0)) return "0";
  if (value >= 0.01 && value < 1000) return value.toPrecision(3);
  return value.toExponential(2);
}

function formatCount(count) {
  return count.toLocaleString("en-US");
}

function stepRangeText(firstStep, lastStep) {
  // word joiners keep the range on one line
  return firstStep === lastStep ? `step ${firstStep}` : `steps ${firstStep}\u2060–\u2060${lastStep}`;
}

/**
 * Computes one map's pixels: `values` (rows × columns, or null before any
 * update) reduced to the figure's layout and coloured on the symmetric scale
 * whose bound `boundOf(shownMax)` returns for the largest finite |value| shown.
 * Returns { rgba, bound, zeroCount, nonFinite, empty }. Needs no DOM, so the
 * stream worker computes the live maps with it.
 */
export function heatmapPicture(values, { rows, columns, layout }, boundOf) {
  const rgba = new Uint8ClampedArray(4 * layout.drawnRows * layout.drawnColumns);
  if (values === null) {
    fillDiverging({ data: rgba }, new Float32Array(layout.drawnRows * layout.drawnColumns), 0);
    return { rgba, bound: 0, zeroCount: 0, nonFinite: 0, empty: true };
  }
  const { drawn, maxMagnitude, zeroCount } = reduceAndMeasure(values, rows, columns, layout);
  const bound = boundOf(maxMagnitude);
  const nonFinite = fillDiverging({ data: rgba }, drawn, bound);
  return { rgba, bound, zeroCount, nonFinite, empty: false };
}

export class HeatmapView {
  /**
   * `onHover({ layer, source, destination }, event)` and `onLeave()` drive the
   * tooltip; `onPin({ layer, source, destination })` follows a clicked weight.
   */
  constructor(container, { onHover = () => {}, onLeave = () => {}, onPin = () => {} } = {}) {
    this.container = container;
    this.callbacks = { onHover, onLeave, onPin };
    this.layerSizes = null;
    this.figures = []; // per weight layer: its elements, ImageData and matrix shape
    this.availableWidth = 0;
    this.mode = "delta";
    this.scale = "frame";
  }

  /** Chooses what the maps show: "delta", "trail" or "cumulative", with scale "frame", "recent" or "run". */
  setMode(mode, scale) {
    this.mode = mode;
    this.scale = scale;
  }

  /**
   * Redraws the maps. For a replayed step `history` replaces the update
   * history and the maps are computed here. For the live run `pictures` comes
   * from the stream worker (see `pictureRequest`), which computed them from
   * the run's history, and `history` is not read.
   */
  render(store, history, pictures = null) {
    if (store.layerSizes === null) {
      this.container.replaceChildren();
      this.layerSizes = null;
      return;
    }
    if (this.layerSizes === null || this.layerSizes.join() !== store.layerSizes.join()) {
      this.build(store.layerSizes);
    }
    this.updateLayout();

    if (pictures !== null) {
      // until the worker has drawn this mode and layout, the old maps stay
      if (pictures.key !== this.pictureKey) return;
      this.figures.forEach((figure, l) => this.paintLayer(figure, pictures.layers[l], pictures));
      this.container.dataset.step = pictures.step === null ? "" : String(pictures.step);
      this.container.dataset.mode = this.mode;
      return;
    }

    const lastFrame = store.lastFrame;
    const frame = lastFrame?.frame ?? null;
    const steps = {
      historyFirstStep: history?.firstStep ?? null,
      frameFirstStep: frame === null ? null : frame.firstStep,
      frameLastStep: frame === null ? null : frame.firstStep + frame.stepCount - 1,
    };
    for (let l = 0; l < this.figures.length; l++) {
      const figure = this.figures[l];
      const values = history === null ? null : history.values(this.mode, l, lastFrame);
      const picture = heatmapPicture(values, figure, (shownMax) => history.scaleBound(this.mode, l, this.scale, shownMax));
      this.paintLayer(figure, picture, steps);
    }
    // without a history (the live run before the worker's first maps) nothing of the step is shown
    this.container.dataset.step = lastFrame === null || history === null ? "" : String(lastFrame.step);
    this.container.dataset.mode = this.mode;
  }

  /**
   * Returns, per weight layer, the map's figure and canvas, its matrix shape
   * and its layout (render/matrixLayout.js), for views drawn over the maps.
   */
  maps() {
    return this.figures.map(({ figure, canvas, layer, rows, columns, layout }) => ({
      figure, canvas, layer, rows, columns, layout,
    }));
  }

  /** Identifies the mode, scale and map sizes that pictures must be computed for. */
  get pictureKey() {
    const layouts = this.figures.map(({ layout }) => (layout === null ? "" : `${layout.drawnRows}x${layout.drawnColumns}`));
    return `${this.mode}|${this.scale}|${layouts.join(",")}`;
  }

  /** The request for the live maps that the stream worker computes, or null before the first layout. */
  get pictureRequest() {
    if (this.figures.length === 0 || this.figures.some(({ layout }) => layout === null)) return null;
    return {
      key: this.pictureKey,
      mode: this.mode,
      scale: this.scale,
      figures: this.figures.map(({ rows, columns, layout }) => ({ rows, columns, layout })),
    };
  }

  build(layerSizes) {
    this.layerSizes = layerSizes.slice();
    this.availableWidth = 0;
    this.container.replaceChildren();
    this.figures = [];
    const layerCount = layerSizes.length;
    for (let l = 0; l + 1 < layerCount; l++) {
      const rows = layerSizes[l];
      const columns = layerSizes[l + 1];
      const figure = document.createElement("figure");
      figure.className = "heatmap";
      figure.dataset.layer = String(l);

      const caption = document.createElement("figcaption");
      const canvas = document.createElement("canvas");
      canvas.setAttribute("aria-label", `weight update of weight layer ${l}`);
      this.listen(canvas, l, rows, columns);

      const legend = document.createElement("div");
      legend.className = "heatmap-legend";
      const bar = document.createElement("div");
      bar.className = "gradient-bar";
      const ticks = document.createElement("div");
      ticks.className = "gradient-ticks";
      const [lowTick, middleTick, highTick] = ["", "0", ""].map((text) => {
        const span = document.createElement("span");
        span.textContent = text;
        ticks.append(span);
        return span;
      });
      const zeroText = document.createElement("div");
      zeroText.className = "heatmap-zero";
      legend.append(bar, ticks, zeroText);

      figure.append(caption, canvas, legend);
      this.container.append(figure);
      this.figures.push({
        figure, caption, canvas, context: canvas.getContext("2d"), image: null, layout: null,
        layer: l, rows, columns, bar, lowTick, middleTick, highTick, zeroText, barFrom: null,
        title: `${rows}×${columns}: rows ${unitLayerName(l, layerCount)}, columns ${unitLayerName(l + 1, layerCount)}`,
      });
    }
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

  /**
   * Sizes every map so all figures fit side by side, shrinking every box by
   * one factor, or, when even the smallest boxes do not fit, wraps them at full size.
   */
  updateLayout() {
    const { width } = clientSize(this.container);
    if (width === this.availableWidth) return;
    this.availableWidth = width;

    // every box shrinks by the same factor until the figures fit in one row
    const layoutsAt = (factor) => this.figures.map(({ rows, columns }) => layoutMatrix(
      rows,
      columns,
      Math.max(MIN_SIDE_PX, Math.min(MAX_MAP_WIDTH_PX * factor, width)),
      MAX_MAP_HEIGHT_PX * factor,
    ));
    const totalWidth = (layouts) =>
      layouts.reduce((sum, layout) => sum + Math.max(MIN_FIGURE_WIDTH_PX, layout.width), 0) +
      FIGURE_GAP_PX * (layouts.length - 1);

    let layouts = layoutsAt(1);
    for (let factor = 1; factor * MAX_MAP_HEIGHT_PX >= MIN_MAP_HEIGHT_PX; factor -= 0.02) {
      layouts = layoutsAt(factor);
      if (totalWidth(layouts) <= width) break;
    }
    if (totalWidth(layouts) > width) layouts = layoutsAt(1); // the figures wrap

    this.figures.forEach((figure, index) => {
      const layout = layouts[index];
      figure.layout = layout;
      figure.canvas.width = layout.drawnColumns;
      figure.canvas.height = layout.drawnRows;
      figure.image = figure.context.createImageData(layout.drawnColumns, layout.drawnRows);
      figure.canvas.style.width = `${layout.width}px`;
      figure.canvas.style.height = `${layout.height}px`;
      figure.figure.style.width = `${Math.max(MIN_FIGURE_WIDTH_PX, layout.width)}px`;
      figure.figure.dataset.blocks = `${layout.rowBlock}x${layout.columnBlock}`;
    });
  }

  /**
   * Puts a layer's picture (from heatmapPicture) and writes its caption and
   * legend. `steps` is { historyFirstStep, frameFirstStep, frameLastStep }.
   */
  paintLayer(figure, picture, steps) {
    const symbol = MODE_SYMBOLS[this.mode];
    const blocks = describeBlocks(figure.layout);
    const captionText = `${symbol}[${figure.layer}] ${figure.title}`;
    if (figure.caption.textContent !== captionText) figure.caption.textContent = captionText;

    const barFrom = this.mode === "cumulative" ? 0 : -1;
    if (figure.barFrom !== barFrom) {
      figure.bar.style.background = cssGradient(barFrom);
      figure.barFrom = barFrom;
    }

    figure.image.data.set(picture.rgba);
    figure.context.putImageData(figure.image, 0, 0);

    if (picture.empty) {
      figure.lowTick.textContent = "";
      figure.highTick.textContent = "";
      figure.zeroText.textContent = "No weight update received yet.";
      return;
    }
    const boundText = formatScale(picture.bound);
    figure.lowTick.textContent = this.mode === "cumulative" ? "0" : `−${boundText}`;
    figure.middleTick.textContent = this.mode === "cumulative" ? "" : "0";
    figure.highTick.textContent = `+${boundText}`;

    const cellCount = figure.rows * figure.columns;
    const sentences = [this.scaleSentence(steps)];
    if (this.mode === "trail") {
      sentences.push(`Each step multiplies the trail by 2^(−1/${TRAIL_HALF_LIFE_STEPS}), then the frame's ΔW is added.`);
    } else if (this.mode === "cumulative") {
      sentences.push("A merged frame adds |Σ Δw| of its steps.");
    }
    const zeroWord = this.mode === "cumulative" ? "Never changed" : "Exactly 0";
    sentences.push(`${zeroWord} (grey): ${formatCount(picture.zeroCount)} of ${formatCount(cellCount)} weights.`);
    if (picture.nonFinite > 0) sentences.push(`NaN or ±∞ (purple): ${formatCount(picture.nonFinite)} cells.`);
    if (blocks !== "") sentences.push(blocks);
    const text = sentences.join(" ");
    if (figure.zeroText.textContent !== text) figure.zeroText.textContent = text;
  }

  scaleSentence({ historyFirstStep, frameFirstStep, frameLastStep }) {
    const symbol = { delta: "|Δw|", trail: "|trail|", cumulative: "Σ|Δw|" }[this.mode];
    if (this.scale === "run") return `Scale: max ${symbol} since step ${historyFirstStep}.`;
    if (this.scale === "recent") return `Scale: max ${symbol} of the last ${SCALE_WINDOW_STEPS} steps.`;
    if (this.mode === "delta" && frameFirstStep !== null) {
      return `Scale: max ${symbol} of ${stepRangeText(frameFirstStep, frameLastStep)}.`;
    }
    return `Scale: max ${symbol} now.`;
  }
}
