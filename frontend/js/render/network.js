// The whole network at once: every unit at a fixed place, one column per unit
// layer, with the latest step's sub-network drawn strongly. A background canvas
// shows every link faded and is redrawn only on resize. A second canvas shows
// the sub-network's links, batched into one path per style, each step.
// Units are SVG circles created once, and each circle's `data-kept` attribute
// is exactly what is drawn. Under DropConnect no unit is dropped: every unit
// is drawn kept and each link is strong or faded by its weight-mask bit.
// A network with more than FULL_VIEW_MAX_LINKS links is drawn as a summary
// instead (render/networkSummary.js), because stroking every link would stall
// the page. Hovering a unit or link reports it; clicking a link pins its weight.

import { MASK_SCOPE_PER_EXAMPLE, MASK_SCOPE_WEIGHTS } from "../protocol.js";
import { drawSubnetworkLinks, FADED_ALPHA, FADED_STROKE, FADED_WIDTH_PX, keptUnitsOf } from "./linkDrawing.js";
import { NetworkPointer } from "./networkPointer.js";
import { NetworkSummary } from "./networkSummary.js";
import { clientSize } from "./elementSize.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const MARGIN_X = 48; // px from the panel edge to the first and last column
const MARGIN_TOP = 30; // room for the layer titles
const MARGIN_BOTTOM = 26; // room for the kept counts
const MAX_UNIT_SPACING = 22; // px between unit centres in a small layer
const MAX_UNIT_RADIUS = 7;
const MIN_UNIT_RADIUS = 1.2;

// Above this many links the "auto" view draws the summary, because stroking
// costs time in proportion to the links drawn. The default digits network,
// 64-128-128-10, has 25,856 links, so it is still drawn link by link.
export const FULL_VIEW_MAX_LINKS = 30_000;
// Even "every link" draws the summary above this many: stroking millions of
// lines would stall the page for seconds on every step.
export const MAX_DRAWN_LINKS = 250_000;

function createSvgElement(name, attributes) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

function layerTitle(layer, layerCount) {
  if (layer === 0) return "input";
  if (layer === layerCount - 1) return "output";
  return `hidden ${layer}`;
}

export class NetworkView {
  /**
   * `onHover(target, event)` gets { kind: "unit", layer, unit }, { kind:
   * "weight", layer, source, destination } or a summary block; `onLeave()`
   * hides the tooltip; `onPin({ layer, source, destination })` follows a weight.
   */
  constructor(container, { onHover = () => {}, onLeave = () => {}, onPin = () => {} } = {}) {
    this.container = container;
    this.callbacks = { onHover, onLeave, onPin };
    [this.backgroundCanvas, this.canvas] = container.querySelectorAll("canvas");
    this.svg = container.querySelector("svg");
    this.linkMode = "auto"; // "auto", "all" or "summary"
    this.summary = new NetworkSummary();
    this.summaryShown = false;
    this.kept = null; // per unit layer, Uint8Array of the last render
    this.weightMasks = null;
    this.pinnedKeys = [];
    this.layerSizes = null;
    this.units = []; // per unit layer, SVG circle elements by unit index
    this.keptDrawn = []; // per unit layer, Int8Array: 1 kept, 0 dropped, -1 not written yet
    this.titles = [];
    this.keptLabels = [];
    this.positions = null; // { x: per layer, y: per layer Float32Array, radius: per layer }
    this.cssWidth = 0;
    this.cssHeight = 0;
    this.rmsWeights = [];
    this.linkCount = 0;
    this.fadedLinkCount = 0; // links drawn only in the faded style by the last render
    this.inputShape = null;
    this.pointer = new NetworkPointer(this, this.callbacks);
  }

  /** Returns whether every link is drawn; false when the summary is shown. */
  get drawsLinks() {
    return !this.showsSummary;
  }

  get showsSummary() {
    if (this.linkMode === "summary" || this.linkCount > MAX_DRAWN_LINKS) return true;
    return this.linkMode === "auto" && this.linkCount > FULL_VIEW_MAX_LINKS;
  }

  /** Returns the x of each unit layer's column in CSS px, or null before the first render places them. */
  columnCentres() {
    if (this.summaryShown) return this.summary.layout?.map(({ centreX }) => centreX) ?? null;
    return this.positions?.x ?? null;
  }

  /** Chooses "auto", "all" or "summary"; the next render rebuilds the view. */
  setLinkMode(mode) {
    this.linkMode = mode;
    this.layerSizes = null;
  }

  /**
   * Redraws from the store; cheap when nothing but the masks and weights
   * changed. `live`, for the live run, is { networkImage, summaryStats } from the
   * stream worker, which draws the links and sums the summary's blocks there;
   * without it (a replayed step) this thread computes both from `store.weights`.
   */
  render(store, pinnedWeights = [], live = null) {
    const layerSizes = store.layerSizes;
    if (layerSizes === null) {
      this.clear();
      return;
    }
    if (!sameSizes(layerSizes, this.layerSizes)) this.buildUnits(layerSizes);
    if (String(store.inputShape) !== String(this.inputShape)) {
      this.inputShape = store.inputShape;
      this.cssWidth = 0; // the summary draws the input as an image-shaped grid
    }
    this.updateLayout();

    const lastFrame = store.lastFrame;
    const weightMasks = lastFrame?.frame.maskScope === MASK_SCOPE_WEIGHTS ? lastFrame.masks : null;
    const kept = this.keptUnits(store);
    this.kept = kept;
    this.weightMasks = weightMasks;
    this.pinnedKeys = pinnedWeights.map(({ layer, source, destination }) => ({ layer, source, destination }));
    let linksShowStep = true; // false while the links on screen are of an earlier step
    if (this.summaryShown) {
      if (live !== null) this.summary.setStats(live.summaryStats);
      const image = live?.networkImage ?? null;
      if (image !== null && image.step === (lastFrame?.step ?? null) && this.drawLinkImage(image)) {
        this.summary.updateLines(kept, weightMasks); // hover hit tests read the lines, which the worker's bitmap does not carry
      } else {
        this.drawSummary(store.weights, kept, weightMasks);
      }
    } else if (live !== null) {
      const image = live.networkImage;
      linksShowStep = image !== null && image.step === (lastFrame?.step ?? null) && this.drawLinkImage(image);
      this.updateUnits(kept);
    } else {
      this.drawLinks(store.weights, kept, weightMasks);
      this.updateUnits(kept);
    }

    this.svg.dataset.view = this.summaryShown ? "summary" : "all";
    this.container.dataset.view = this.svg.dataset.view; // the legend hides what the summary does not draw
    if (!linksShowStep) {
      // a resize cleared the canvas, or the worker's links are of another step
      delete this.svg.dataset.step;
      return;
    }
    this.svg.dataset.step = lastFrame === null ? "" : String(lastFrame.step);
    this.svg.dataset.maskRows = lastFrame === null ? "" : String(lastFrame.maskRows);
    if (this.drawsLinks) this.svg.dataset.fadedLinks = String(this.fadedLinkCount);
    else delete this.svg.dataset.fadedLinks;
  }

  /** Identifies the layout that workerScene describes. */
  get sceneKey() {
    return `${this.layerSizes}|${this.cssWidth}x${this.cssHeight}@${this.pixelRatio}|${this.summaryShown}|${this.inputShape}`;
  }

  /**
   * Describes the layout for the stream worker: what it needs to draw the
   * links, or the summary's blocks, or null before the first layout.
   */
  get workerScene() {
    if (this.layerSizes === null || this.cssWidth === 0) return null;
    if (this.summaryShown) {
      return { kind: "summary", ...this.linkScene(), inputShape: this.inputShape, blockLayout: this.summary.blockLayout };
    }
    return { kind: "links", ...this.linkScene() };
  }

  drawSummary(weights, kept, weightMasks) {
    const context = this.canvas.getContext("2d");
    context.setTransform(this.pixelRatio, 0, 0, this.pixelRatio, 0, 0);
    context.clearRect(0, 0, this.cssWidth, this.cssHeight);
    this.summary.draw(context, { weights, kept, weightMasks, now: performance.now() });
    this.rmsWeights = this.summary.layerRms;
  }

  clear() {
    this.svg.replaceChildren();
    this.layerSizes = null;
    this.units = [];
    this.keptDrawn = [];
    this.titles = [];
    this.keptLabels = [];
    this.positions = null;
    this.kept = null;
    for (const canvas of [this.backgroundCanvas, this.canvas]) {
      const context = canvas.getContext("2d");
      context.setTransform(1, 0, 0, 1, 0, 0);
      context.clearRect(0, 0, canvas.width, canvas.height);
    }
    delete this.svg.dataset.step;
    delete this.svg.dataset.fadedLinks;
  }

  buildUnits(layerSizes) {
    this.clear();
    this.layerSizes = layerSizes.slice();
    this.linkCount = layerSizes.slice(1).reduce((sum, size, index) => sum + size * layerSizes[index], 0);
    this.cssWidth = 0; // forces positions to be recomputed
    this.summaryShown = this.showsSummary;
    if (this.summaryShown) return; // the summary draws its units on the canvas
    const layerCount = layerSizes.length;
    for (let layer = 0; layer < layerCount; layer++) {
      const group = createSvgElement("g", { class: "unit-layer" });
      const circles = [];
      for (let unit = 0; unit < layerSizes[layer]; unit++) {
        const circle = createSvgElement("circle", {
          "data-layer": String(layer),
          "data-unit": String(unit),
          class: layer === layerCount - 1 ? "unit output" : "unit",
        });
        circles.push(circle);
        group.append(circle);
      }
      const title = createSvgElement("text", { class: "layer-title", "text-anchor": "middle" });
      title.textContent = `${layerTitle(layer, layerCount)} (${layerSizes[layer]})`;
      const keptLabel = createSvgElement("text", { class: "layer-kept", "text-anchor": "middle" });
      group.append(title, keptLabel);
      this.svg.append(group);
      this.units.push(circles);
      this.keptDrawn.push(new Int8Array(layerSizes[layer]).fill(-1));
      this.titles.push(title);
      this.keptLabels.push(keptLabel);
    }
  }

  /** Recomputes unit positions and the canvas backing size when the panel size changed. */
  updateLayout() {
    const { width, height } = clientSize(this.container);
    const pixelRatio = window.devicePixelRatio || 1;
    if (width === this.cssWidth && height === this.cssHeight && pixelRatio === this.pixelRatio) return;
    this.cssWidth = width;
    this.cssHeight = height;
    this.pixelRatio = pixelRatio;

    for (const canvas of [this.backgroundCanvas, this.canvas]) {
      canvas.width = Math.round(width * pixelRatio);
      canvas.height = Math.round(height * pixelRatio);
    }
    this.svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    if (this.summaryShown) {
      this.summary.place(this.layerSizes, width, height, this.inputShape);
      const context = this.backgroundCanvas.getContext("2d");
      context.setTransform(pixelRatio, 0, 0, pixelRatio, 0, 0);
      context.clearRect(0, 0, width, height);
      this.summary.drawBackground(context);
      return;
    }

    const layerCount = this.layerSizes.length;
    const columnGap = (width - 2 * MARGIN_X) / Math.max(1, layerCount - 1);
    const usableHeight = Math.max(1, height - MARGIN_TOP - MARGIN_BOTTOM);
    const x = [];
    const y = [];
    const radius = [];
    for (let layer = 0; layer < layerCount; layer++) {
      const unitCount = this.layerSizes[layer];
      const spacing = Math.min(MAX_UNIT_SPACING, usableHeight / unitCount);
      const top = MARGIN_TOP + (usableHeight - spacing * unitCount) / 2 + spacing / 2;
      x.push(layerCount === 1 ? width / 2 : MARGIN_X + layer * columnGap);
      y.push(Float32Array.from({ length: unitCount }, (_, unit) => top + unit * spacing));
      radius.push(Math.max(MIN_UNIT_RADIUS, Math.min(MAX_UNIT_RADIUS, spacing * 0.4)));
    }
    this.positions = { x, y, radius };
    this.drawAllLinksFaded();

    // positions change only on resize, so writing every circle here is fine
    for (let layer = 0; layer < layerCount; layer++) {
      const cx = x[layer].toFixed(1);
      const r = radius[layer].toFixed(2);
      this.units[layer].forEach((circle, unit) => {
        circle.setAttribute("cx", cx);
        circle.setAttribute("cy", y[layer][unit].toFixed(1));
        circle.setAttribute("r", r);
      });
      this.titles[layer].setAttribute("x", cx);
      this.titles[layer].setAttribute("y", String(MARGIN_TOP - 14));
      this.keptLabels[layer].setAttribute("x", cx);
      this.keptLabels[layer].setAttribute("y", String(height - 8));
    }
  }

  /** Per unit layer, 1 for each unit in the latest step's sub-network (see keptUnitsOf). */
  keptUnits(store) {
    return keptUnitsOf(this.layerSizes, store.lastFrame);
  }

  /** Draws every link in the faded style; needed only when the layout changes. */
  drawAllLinksFaded() {
    const context = this.backgroundCanvas.getContext("2d");
    context.setTransform(this.pixelRatio, 0, 0, this.pixelRatio, 0, 0);
    context.clearRect(0, 0, this.cssWidth, this.cssHeight);
    if (!this.drawsLinks) return;
    const { x, y } = this.positions;
    const path = new Path2D();
    for (let layer = 0; layer + 1 < this.layerSizes.length; layer++) {
      for (const sourceY of y[layer]) {
        for (const destinationY of y[layer + 1]) {
          path.moveTo(x[layer], sourceY);
          path.lineTo(x[layer + 1], destinationY);
        }
      }
    }
    // globalAlpha with an opaque colour rasterized about 3 times faster than an
    // rgba() colour in the same measurement
    context.globalAlpha = FADED_ALPHA;
    context.strokeStyle = FADED_STROKE;
    context.lineWidth = FADED_WIDTH_PX;
    context.stroke(path);
    context.globalAlpha = 1;
  }

  /**
   * Draws the links of the sub-network from `weights` on this thread; the
   * live view gets them drawn by the stream worker instead (drawLinkImage).
   */
  drawLinks(weights, kept, weightMasks) {
    const context = this.canvas.getContext("2d");
    this.fadedLinkCount = this.linkCount;
    if (weights === null) {
      context.setTransform(this.pixelRatio, 0, 0, this.pixelRatio, 0, 0);
      context.clearRect(0, 0, this.cssWidth, this.cssHeight);
      return;
    }
    const drawn = drawSubnetworkLinks(context, this.linkScene(), { weights, kept, weightMasks, pinnedKeys: this.pinnedKeys });
    this.fadedLinkCount = drawn.fadedLinkCount;
    this.rmsWeights = drawn.rmsWeights;
  }

  /**
   * Returns the layout that the link drawing needs, which is also sent to the
   * stream worker; in the summary view `positions` is null.
   */
  linkScene() {
    return {
      layerSizes: this.layerSizes,
      positions: this.positions,
      cssWidth: this.cssWidth,
      cssHeight: this.cssHeight,
      pixelRatio: this.pixelRatio,
    };
  }

  /**
   * Shows links the stream worker drew for the latest step: `image` is {
   * bitmap, step, fadedLinkCount, rmsWeights } with a bitmap of the canvas's size.
   * Returns false, drawing nothing, when the bitmap has another size, as
   * after a resize, until the worker draws the new layout.
   */
  drawLinkImage(image) {
    const { bitmap } = image;
    if (bitmap.width !== this.canvas.width || bitmap.height !== this.canvas.height) return false;
    const context = this.canvas.getContext("2d");
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.clearRect(0, 0, this.canvas.width, this.canvas.height);
    context.drawImage(bitmap, 0, 0);
    this.fadedLinkCount = image.fadedLinkCount;
    this.rmsWeights = image.rmsWeights;
    return true;
  }

  updateUnits(kept) {
    for (let layer = 0; layer < this.layerSizes.length; layer++) {
      const circles = this.units[layer];
      const drawn = this.keptDrawn[layer];
      let keptCount = 0;
      for (let unit = 0; unit < circles.length; unit++) {
        const value = kept[layer][unit];
        keptCount += value;
        if (drawn[unit] === value) continue;
        drawn[unit] = value;
        circles[unit].setAttribute("data-kept", String(value));
        circles[unit].classList.toggle("dropped", value === 0);
      }
      const text = `kept ${keptCount}/${circles.length}`;
      if (this.keptLabels[layer].textContent !== text) this.keptLabels[layer].textContent = text;
    }
  }
}

function sameSizes(a, b) {
  return a !== null && b !== null && a.length === b.length && a.every((size, index) => size === b[index]);
}

/** Text for the network legend's notes about masks and links, or "" when there is nothing to add. */
export function networkNote(store, view) {
  const notes = [];
  const lastFrame = store.lastFrame;
  if (lastFrame !== null && lastFrame.frame.maskScope === MASK_SCOPE_PER_EXAMPLE) {
    notes.push(`Per-example masks: showing the sub-network of example 0 of ${lastFrame.maskRows}.`);
  }
  const dropConnect = lastFrame !== null
    ? lastFrame.frame.maskScope === MASK_SCOPE_WEIGHTS
    : store.run?.config?.variant === "dropconnect";
  if (dropConnect) {
    notes.push("DropConnect drops weights, never units, so each faded link is a weight dropped in this step.");
  }
  if (!view.drawsLinks) {
    const limit = view.linkMode === "all" ? MAX_DRAWN_LINKS : FULL_VIEW_MAX_LINKS;
    const reason = view.linkMode === "summary"
      ? "as chosen"
      : `because its ${view.linkCount.toLocaleString("en-US")} links exceed ${limit.toLocaleString("en-US")}`;
    notes.push(
      `Summary view, ${reason}: each square is a unit, and each line joins two blocks of units. ` +
        "Line colour: Σw ÷ Σ|w| of the block's weights; width: their RMS ÷ the layer's RMS " +
        "(<0.75, 0.75–1, 1–1.33, ≥1.33); opacity: the share of them in this step's sub-network.",
    );
  } else {
    notes.push("Hover a unit or link for its numbers; click a link to follow its weight.");
  }
  return notes.join(" ");
}
