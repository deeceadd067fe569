// The pinned weights: one card per weight with a chart of its value over
// steps, a tick under the chart for every step in which the weight was in the
// sub-network, and its latest updates written as recurrences with numbers.
// Cards are created once per pinned weight and updated in place.

import { formatProbability, unitLayerName, weightKeepProbabilities } from "../lessons/keepProbabilities.js";
import { describeUpdate, formatSigned, renderMath, updateRule } from "../lessons/updateRule.js";
import { formatShare } from "../lessons/explain.js";
import { drawAxes, drawMessage, prepareCanvas } from "./charts.js";

const VALUE_COLOUR = "#2f6db5";
const MARK_COLOUR = "#1e6b34";
const MERGED_COLOUR = "#d9711c";
const MARK_STRIP_PX = 8; // height of the strip of update marks at the bottom of the plot
const MAX_MERGED_MARKERS = 400; // above this many merged points, none is circled
const SHOWN_UPDATES = 3;

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function element(tag, className, text = "") {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}

export class PinnedView {
  /** `onUnpin(key)` is called when a card's remove button is pressed. */
  constructor(container, emptyNote, { onUnpin }) {
    this.container = container;
    this.emptyNote = emptyNote;
    this.onUnpin = onUnpin;
    this.cards = new Map(); // weight key → card elements
  }

  render(store, lessons) {
    const pinned = lessons.pinned.weights;
    this.emptyNote.hidden = pinned.length > 0;
    for (const [key, card] of this.cards) {
      if (!pinned.some((weight) => weight.key === key)) {
        card.root.remove();
        this.cards.delete(key);
      }
    }
    for (const weight of pinned) {
      let card = this.cards.get(weight.key);
      if (card === undefined) {
        card = this.buildCard(weight, store.layerSizes);
        this.cards.set(weight.key, card);
        this.container.append(card.root);
      }
      this.updateCard(card, weight, store, lessons);
    }
  }

  buildCard(weight, layerSizes) {
    const layerCount = layerSizes.length;
    const root = element("article", "pinned-card");
    root.dataset.key = weight.key;
    const header = element("header", "pinned-header");
    const title = element(
      "h3",
      "",
      `W[${weight.layer}][${weight.source}→${weight.destination}]: ${unitLayerName(weight.layer, layerCount)} unit ` +
        `${weight.source} → ${unitLayerName(weight.layer + 1, layerCount)} unit ${weight.destination}`,
    );
    const remove = element("button", "pinned-remove", "Unpin");
    remove.type = "button";
    remove.addEventListener("click", () => this.onUnpin(weight.key), { passive: true });
    header.append(title, remove);

    const summary = element("p", "pinned-summary");
    const canvas = element("canvas", "pinned-chart");
    canvas.setAttribute("aria-label", `value of weight ${weight.key} over steps`);
    const legend = element("div", "legend pinned-legend");
    legend.innerHTML =
      `<span class="legend-item"><span class="swatch-line" style="background:${VALUE_COLOUR}"></span>w after each frame</span>` +
      `<span class="legend-item"><span class="swatch-tick" style="background:${MARK_COLOUR}"></span>step in the sub-network</span>` +
      `<span class="legend-item merged-legend" hidden><span class="swatch-ring" style="border-color:${MERGED_COLOUR}"></span>point covering several steps</span>`;
    const rule = element("p", "pinned-rule");
    const updates = element("ol", "pinned-updates");
    root.append(header, summary, canvas, legend, rule, updates);
    return { root, summary, canvas, mergedLegend: legend.querySelector(".merged-legend"), rule, updates, renderedUpdates: null };
  }

  updateCard(card, weight, store, lessons) {
    const config = store.run?.config ?? {};
    const { probability } = weightKeepProbabilities(config, store.layerSizes)[weight.layer];
    const marked = weight.updateSteps.length + weight.updateSteps.overflowCount;
    const missed = weight.missedSteps > 0 ? ` ${weight.missedSteps.toLocaleString("en-US")} steps were missed while reconnecting.` : "";
    setText(
      card.summary,
      `w = ${formatSigned(weight.value)}. Followed from step ${weight.pinnedAtStep}: in the sub-network in ` +
        `${formatShare(marked, weight.stepsFollowed, "steps")}; theory ${formatProbability(probability)}.${missed}`,
    );
    this.drawChart(card.canvas, weight);
    const noMergedPoints = card.canvas.dataset.mergedPoints === "0";
    if (card.mergedLegend.hidden !== noMergedPoints) card.mergedLegend.hidden = noMergedPoints;

    const ruleText = `Rule: ${updateRule(config)}`;
    if (card.rule.dataset.text !== ruleText) {
      card.rule.dataset.text = ruleText;
      renderMath(card.rule, ruleText);
    }
    // the worker sends copies, so the newest update is recognized by its steps
    const newest = weight.recentUpdates.at(-1);
    const updatesKey = newest === undefined ? "" : `${newest.firstStep}+${newest.stepCount}`;
    if (card.renderedUpdates !== updatesKey) {
      card.renderedUpdates = updatesKey;
      this.renderUpdates(card.updates, config, store.run, weight.recentUpdates);
    }
  }

  renderUpdates(list, config, run, updates) {
    const items = updates.slice(-SHOWN_UPDATES).reverse().map((update) => {
      const { title, math, note } = describeUpdate(config, run, update);
      const item = element("li");
      const heading = element("div", "pinned-update-title", title);
      const formula = element("div", "pinned-update-math");
      renderMath(formula, math);
      item.append(heading, formula, element("div", "pinned-update-note", note));
      return item;
    });
    if (items.length === 0) items.push(element("li", "pinned-update-note", "No update since it was pinned."));
    list.replaceChildren(...items);
  }

  drawChart(canvas, weight) {
    const frame = prepareCanvas(canvas);
    const count = weight.pointCount;
    const lastStep = count > 0 ? weight.pointFirstSteps[count - 1] + weight.pointStepCounts[count - 1] : weight.pinnedAtStep + 1;
    const xDomain = [weight.pinnedAtStep, Math.max(weight.pinnedAtStep + 10, lastStep)];
    let min = weight.value;
    let max = weight.value;
    for (let index = 0; index < count; index++) {
      const value = weight.pointValues[index];
      if (!Number.isFinite(value)) continue;
      min = Math.min(min, value);
      max = Math.max(max, value);
    }
    const pad = max > min ? (max - min) * 0.08 : Math.max(1e-6, Math.abs(max) * 0.05);
    // the lower padding leaves the bottom MARK_STRIP_PX of the plot to the update marks
    const range = max - min + 2 * pad;
    const stripPad = (range * MARK_STRIP_PX) / Math.max(1, frame.plot.height - MARK_STRIP_PX);
    const { toX, toY } = drawAxes(frame, {
      xDomain, yDomain: [min - pad - stripPad, max + pad], xLabel: "step", yLabel: "w", integerX: true,
    });
    canvas.dataset.points = String(count);
    canvas.dataset.updateMarks = String(weight.updateSteps.length + weight.updateSteps.overflowCount);
    if (count === 0) {
      canvas.dataset.mergedPoints = "0";
      drawMessage(frame, "No step since it was pinned");
      return;
    }

    const { context, plot } = frame;
    context.strokeStyle = VALUE_COLOUR;
    context.lineWidth = 1.5;
    context.beginPath();
    context.moveTo(toX(weight.pinnedAtStep), toY(weight.pointValues[0]));
    let mergedPoints = 0;
    for (let index = 0; index < count; index++) {
      // a point is the value after its frame's last step
      const x = toX(weight.pointFirstSteps[index] + weight.pointStepCounts[index]);
      context.lineTo(x, toY(weight.pointValues[index]));
      if (weight.pointStepCounts[index] > 1) mergedPoints++;
    }
    context.stroke();
    canvas.dataset.mergedPoints = String(mergedPoints);

    if (mergedPoints > 0 && mergedPoints <= MAX_MERGED_MARKERS) {
      context.strokeStyle = MERGED_COLOUR;
      context.lineWidth = 1;
      context.beginPath();
      for (let index = 0; index < count; index++) {
        if (weight.pointStepCounts[index] <= 1) continue;
        const x = toX(weight.pointFirstSteps[index] + weight.pointStepCounts[index]);
        const y = toY(weight.pointValues[index]);
        context.moveTo(x + 2.5, y);
        context.arc(x, y, 2.5, 0, 2 * Math.PI);
      }
      context.stroke();
    }

    // one tick per pixel column that contains at least one update
    context.fillStyle = MARK_COLOUR;
    const stripTop = plot.top + plot.height - MARK_STRIP_PX + 1;
    let lastColumn = -1;
    const steps = weight.updateSteps.values;
    for (let index = 0; index < weight.updateSteps.length; index++) {
      const column = Math.floor(toX(steps[index] + 0.5));
      if (column === lastColumn) continue;
      lastColumn = column;
      context.fillRect(column, stripTop, 1, MARK_STRIP_PX - 2);
    }

  }
}
