// The input-plane panel of a run on 2-D data: the decision regions of the
// full network with weight scaling (dropout's evaluation rule) over a grid,
// the train and test examples on top, and one thumbnail per hidden unit with
// its activation over the same grid. It draws a reply of
// `POST /api/runs/{id}/predict` with `grid` and `hidden_units` (see
// decisionPanel.js) and never fetches anything itself.
//
// Attributes for tests and scripts: the map's `data-step` and `data-grid`,
// the points canvas's `data-train-points` and `data-test-points`, and one
// `.unit-thumbnail` per hidden unit with `data-layer`, `data-unit` and
// `data-kept` (whether the latest step's mask kept it).

import { unitLayerName } from "../lessons/keepProbabilities.js";
import { isUnitKept, MASK_SCOPE_WEIGHTS } from "../protocol.js";
import { classLegendItems, decisionColour, drawPoints, gridImage, paintGridImage, prepareCanvas } from "./decisionMap.js";
import { cssGradient, SHADE_RGBA, shadeIndex } from "./palette.js";

const DENSE_ABOVE_UNITS = 48; // more thumbnails than this are drawn smaller (style.css)

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function formatBound(value) {
  return value >= 0.01 && value < 1000 ? value.toPrecision(2) : value.toExponential(1);
}

/** Largest finite |value| over every unit of one hidden layer; 0 when there is none. */
function layerBound(units) {
  let bound = 0;
  for (const values of units) {
    for (const value of values) {
      const magnitude = Math.abs(value);
      if (magnitude > bound && Number.isFinite(magnitude)) bound = magnitude;
    }
  }
  return bound;
}

function activationColour(value, bound) {
  const offset = 4 * shadeIndex(value, bound);
  return [SHADE_RGBA[offset], SHADE_RGBA[offset + 1], SHADE_RGBA[offset + 2]];
}

export class PlaneView {
  /** `root` is the panel (index.html, #plane-panel). */
  constructor(root) {
    this.root = root;
    const find = (id) => root.querySelector(`#${id}`);
    this.elements = {
      note: find("plane-note"),
      status: find("plane-status"),
      map: find("plane-map"),
      regions: find("plane-regions"),
      points: find("plane-points"),
      legend: find("plane-legend"),
      units: find("plane-units"),
      unitsNote: find("plane-units-note"),
    };
    this.reply = null;
    this.splits = null; // { train, test } of runData.js, or null while unknown
    this.classNames = null;
    this.thumbnails = []; // per hidden layer, per unit: its canvas element
    this.layerSizes = null;
    new ResizeObserver(() => this.drawMap()).observe(this.elements.map);
  }

  /** Shows or hides the whole panel. */
  setVisible(visible) {
    if (this.root.hidden === visible) this.root.hidden = !visible;
  }

  /** Forgets what is drawn, for a new run. */
  clear() {
    this.reply = null;
    this.splits = null;
    this.classNames = null;
    this.thumbnails = [];
    this.layerSizes = null;
    this.elements.units.replaceChildren();
    this.elements.legend.replaceChildren();
    for (const canvas of [this.elements.regions, this.elements.points]) prepareCanvas(canvas);
    delete this.elements.map.dataset.step;
    delete this.elements.points.dataset.trainPoints;
    delete this.elements.points.dataset.testPoints;
    setText(this.elements.note, "");
    setText(this.elements.unitsNote, "");
  }

  setStatus(text) {
    setText(this.elements.status, text);
  }

  /** Sets the examples drawn over the map: `splits` as runData.js returns them, or null for none. */
  setData(splits, classNames) {
    this.splits = splits;
    this.classNames = classNames;
    this.drawPoints();
  }

  /**
   * Draws a predict reply. `layerSizes` are the run's; `unitsNote` says why
   * there are no thumbnails, or "" when the reply has them.
   */
  show(reply, layerSizes, unitsNote) {
    this.reply = reply;
    this.layerSizes = layerSizes;
    this.elements.map.dataset.step = String(reply.step);
    this.elements.map.dataset.grid = String(reply.grid.x.length);
    setText(this.elements.note, `(weights after ${reply.step.toLocaleString("en-US")} steps)`);
    setText(this.elements.unitsNote, unitsNote);
    this.renderLegend(reply.weight_scaling[0].length);
    this.drawMap();
    this.drawThumbnails();
  }

  renderLegend(classCount) {
    const legend = this.elements.legend;
    if (legend.childElementCount > 0 && Number(legend.dataset.classes) === classCount) return;
    legend.dataset.classes = String(classCount);
    const items = classLegendItems(classCount, this.classNames, "swatch-class");
    const markers = document.createElement("span");
    markers.className = "legend-item";
    markers.innerHTML = '<span class="marker-train"></span>train example <span class="marker-test"></span>test example';
    const lightness = document.createElement("span");
    lightness.className = "legend-item";
    lightness.textContent = "paler where the predicted class is less probable";
    legend.replaceChildren(...items, markers, lightness);
  }

  drawMap() {
    const reply = this.reply;
    if (reply === null || this.root.hidden) return;
    const columns = reply.grid.x.length;
    const rows = reply.grid.y.length;
    paintGridImage(this.elements.regions, gridImage(columns, rows, (i) => decisionColour(reply.weight_scaling[i])));
    this.drawPoints();
  }

  drawPoints() {
    const canvas = this.elements.points;
    prepareCanvas(canvas);
    if (this.reply === null || this.splits === null) return;
    const { train, test } = this.splits;
    const [trainCount, testCount] = drawPoints(canvas, this.reply.grid, [
      { features: train.features, labels: train.labels, marker: "train" },
      { features: test.features, labels: test.labels, marker: "test" },
    ]);
    canvas.dataset.trainPoints = String(trainCount);
    canvas.dataset.testPoints = String(testCount);
  }

  /** Draws one thumbnail per hidden unit; each hidden layer has one symmetric scale. */
  drawThumbnails() {
    const activations = this.reply.hidden_activations;
    if (activations === null || activations === undefined) {
      this.elements.units.replaceChildren();
      this.thumbnails = [];
      return;
    }
    const shape = activations.map((units) => units.length).join();
    if (this.thumbnails.map(({ canvases }) => canvases.length).join() !== shape) this.buildThumbnails(activations);
    const columns = this.reply.grid.x.length;
    const rows = this.reply.grid.y.length;
    activations.forEach((units, index) => {
      const bound = layerBound(units);
      const group = this.thumbnails[index];
      group.bound.textContent = `−${formatBound(bound)}`;
      group.boundHigh.textContent = `+${formatBound(bound)}`;
      units.forEach((values, unit) => {
        paintGridImage(group.canvases[unit], gridImage(columns, rows, (i) => activationColour(values[i], bound)));
      });
    });
  }

  buildThumbnails(activations) {
    const layerCount = this.layerSizes.length;
    const groups = activations.map((units, index) => {
      const layer = index + 1; // unit layer 0 is the input
      const figure = document.createElement("figure");
      figure.className = "plane-layer";
      const caption = document.createElement("figcaption");
      caption.textContent = `${unitLayerName(layer, layerCount)} (${units.length} units)`;
      const grid = document.createElement("div");
      grid.className = "plane-thumbnails";
      const canvases = units.map((_, unit) => {
        const canvas = document.createElement("canvas");
        canvas.className = "unit-thumbnail";
        canvas.dataset.layer = String(layer);
        canvas.dataset.unit = String(unit);
        canvas.title = `${unitLayerName(layer, layerCount)}, unit ${unit}`;
        grid.append(canvas);
        return canvas;
      });
      const scale = document.createElement("div");
      scale.className = "plane-scale";
      const bound = document.createElement("span");
      const bar = document.createElement("span");
      bar.className = "plane-scale-bar";
      bar.style.background = cssGradient(-1);
      const boundHigh = document.createElement("span");
      scale.append("activation", bound, bar, boundHigh);
      figure.append(caption, grid, scale);
      return { figure, canvases, bound, boundHigh };
    });
    this.thumbnails = groups.map(({ canvases, bound, boundHigh }) => ({ canvases, bound, boundHigh }));
    const unitCount = activations.reduce((sum, units) => sum + units.length, 0);
    this.elements.units.dataset.density = unitCount > DENSE_ABOVE_UNITS ? "dense" : "normal";
    this.elements.units.replaceChildren(...groups.map(({ figure }) => figure));
  }

  /**
   * Marks the thumbnails of units that `lastFrame`'s mask dropped (example
   * 0's row for per-example masks). Under DropConnect, or before any step,
   * every unit counts as kept.
   */
  markKept(lastFrame) {
    const unitMasks = lastFrame !== null && lastFrame.frame.maskScope !== MASK_SCOPE_WEIGHTS;
    this.thumbnails.forEach(({ canvases }, index) => {
      const layer = index + 1;
      canvases.forEach((canvas, unit) => {
        const kept = !unitMasks || layer >= lastFrame.masks.length || isUnitKept(lastFrame.masks[layer], unit, 0);
        const value = kept ? "1" : "0";
        if (canvas.dataset.kept !== value) canvas.dataset.kept = value;
      });
    });
  }
}
