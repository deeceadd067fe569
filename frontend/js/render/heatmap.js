// Weight-update heatmaps: one canvas per weight layer whose pixel size is the
// matrix size (rows = source units, columns = destination units), scaled up by
// CSS. Each draw fills one ImageData from the precomputed palette and puts it once.

import { shadeIndex, SHADE_RGBA, cssGradient } from "./palette.js";

const MAX_MAP_HEIGHT_PX = 280;
const MIN_MAP_HEIGHT_PX = 60;
const MIN_FIGURE_WIDTH_PX = 170; // room for the legend under a narrow matrix
const FIGURE_GAP_PX = 28;

/** Formats a positive scale bound compactly, such as 0.0123 or 4.5e-5. */
export function formatScale(value) {
  if (!(value > 0)) return "0";
  if (value >= 0.01 && value < 1000) return value.toPrecision(3);
  return value.toExponential(2);
}

function unitLayerName(layer, layerCount) {
  if (layer === 0) return "input";
  if (layer === layerCount - 1) return "output";
  return `hidden ${layer}`;
}

export class HeatmapView {
  constructor(container) {
    this.container = container;
    this.layerSizes = null;
    this.figures = []; // per weight layer: its elements, ImageData and matrix shape
    this.availableWidth = 0;
  }

  render(store) {
    if (store.layerSizes === null) {
      this.container.replaceChildren();
      this.layerSizes = null;
      return;
    }
    if (this.layerSizes === null || this.layerSizes.join() !== store.layerSizes.join()) {
      this.build(store.layerSizes);
    }
    this.updateLayout();

    const lastFrame = store.lastFrame;
    for (let l = 0; l < this.figures.length; l++) {
      const deltas = lastFrame === null ? null : lastFrame.frame.weightDeltas[l];
      this.drawLayer(this.figures[l], deltas, lastFrame);
    }
    this.container.dataset.step = lastFrame === null ? "" : String(lastFrame.step);
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
      caption.textContent =
        `ΔW[${l}] ${rows}×${columns}: rows ${unitLayerName(l, layerCount)}, ` +
        `columns ${unitLayerName(l + 1, layerCount)}`;

      const canvas = document.createElement("canvas");
      canvas.width = columns;
      canvas.height = rows;
      canvas.setAttribute("aria-label", `weight update of weight layer ${l}`);
      const context = canvas.getContext("2d");
      const image = context.createImageData(columns, rows);

      const legend = document.createElement("div");
      legend.className = "heatmap-legend";
      const bar = document.createElement("div");
      bar.className = "gradient-bar";
      bar.style.background = cssGradient();
      const ticks = document.createElement("div");
      ticks.className = "gradient-ticks";
      const [lowTick, , highTick] = ["", "0", ""].map((text) => {
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
      this.figures.push({ figure, canvas, context, image, rows, columns, lowTick, highTick, zeroText });
    }
  }

  /** Sizes every map to one common height that lets all figures fit side by side. */
  updateLayout() {
    const width = this.container.clientWidth;
    if (width === this.availableWidth) return;
    this.availableWidth = width;

    const figureWidth = (height, { rows, columns }) => Math.max(MIN_FIGURE_WIDTH_PX, (height * columns) / rows);
    let height = MAX_MAP_HEIGHT_PX;
    const gaps = FIGURE_GAP_PX * (this.figures.length - 1);
    while (height > MIN_MAP_HEIGHT_PX) {
      const total = this.figures.reduce((sum, figure) => sum + figureWidth(height, figure), 0);
      if (total + gaps <= width) break;
      height -= 4;
    }
    for (const figure of this.figures) {
      const mapWidth = (height * figure.columns) / figure.rows;
      figure.canvas.style.width = `${mapWidth.toFixed(1)}px`;
      figure.canvas.style.height = `${height}px`;
      figure.figure.style.width = `${figureWidth(height, figure).toFixed(1)}px`;
    }
  }

  /** Fills the layer's ImageData in one pass over the deltas and puts it once. */
  drawLayer(figure, deltas, lastFrame) {
    const pixels = figure.image.data;

    let max = 0;
    let zeroCount = 0;
    if (deltas !== null) {
      for (let index = 0; index < deltas.length; index++) {
        const magnitude = Math.abs(deltas[index]);
        if (magnitude > max) max = magnitude;
        if (magnitude === 0) zeroCount++;
      }
    }

    const cellCount = figure.rows * figure.columns;
    for (let index = 0, offset = 0; index < cellCount; index++, offset += 4) {
      const shade = 4 * shadeIndex(deltas === null ? 0 : deltas[index], max);
      pixels[offset] = SHADE_RGBA[shade];
      pixels[offset + 1] = SHADE_RGBA[shade + 1];
      pixels[offset + 2] = SHADE_RGBA[shade + 2];
      pixels[offset + 3] = 255;
    }
    figure.context.putImageData(figure.image, 0, 0);

    if (deltas === null) {
      figure.lowTick.textContent = "";
      figure.highTick.textContent = "";
      figure.zeroText.textContent = "No weight update received yet.";
      return;
    }
    const bound = formatScale(max);
    figure.lowTick.textContent = `−${bound}`;
    figure.highTick.textContent = `+${bound}`;
    const frame = lastFrame.frame;
    const steps = frame.stepCount === 1
      ? `step ${frame.firstStep}`
      : `steps ${frame.firstStep}\u2060–\u2060${frame.firstStep + frame.stepCount - 1}`; // word joiners keep the range on one line
    figure.zeroText.textContent =
      `Scale: max |Δw| of ${steps}. Exactly 0 (grey): ${zeroCount.toLocaleString("en-US")} of ` +
      `${cellCount.toLocaleString("en-US")} weights.`;
  }
}
