// Canvas line charts: batch loss per step, decimated to one min/max pair per
// pixel column so spikes survive, and per-epoch train/test loss and accuracy.
// Canvas backing size = CSS size × devicePixelRatio.

import { clientSize } from "./elementSize.js";

const FONT = "11px system-ui, -apple-system, 'Segoe UI', sans-serif";
const AXIS_COLOUR = "#8a8f98";
const GRID_COLOUR = "#eceef1";
const TEXT_COLOUR = "#4a4f57";
const PADDING = { left: 52, right: 14, top: 12, bottom: 34 };
const Y_TITLE_PX = 18; // room for the rotated y-axis title left of the tick labels
const TRAIN_COLOUR = "#2f6db5";
const TEST_COLOUR = "#d9711c";
const LOSS_COLOUR = "#3d4a5c";

/**
 * Resizes the canvas backing store to its CSS size × devicePixelRatio, clears
 * it and returns { context, width, height, plot } in CSS pixels, with the plot
 * rectangle inside `padding`.
 */
export function prepareCanvas(canvas, { padding = PADDING, font = FONT } = {}) {
  const { width, height } = clientSize(canvas);
  const pixelRatio = window.devicePixelRatio || 1;
  const backingWidth = Math.round(width * pixelRatio);
  const backingHeight = Math.round(height * pixelRatio);
  if (canvas.width !== backingWidth || canvas.height !== backingHeight) {
    canvas.width = backingWidth;
    canvas.height = backingHeight;
  }
  const context = canvas.getContext("2d");
  context.setTransform(pixelRatio, 0, 0, pixelRatio, 0, 0);
  context.clearRect(0, 0, width, height);
  context.font = font;
  const plot = {
    left: padding.left,
    top: padding.top,
    width: Math.max(1, width - padding.left - padding.right),
    height: Math.max(1, height - padding.top - padding.bottom),
  };
  return { context, width, height, plot };
}

/** Returns about `count` round tick values covering [min, max]. */
export function niceTicks(min, max, count = 5) {
  if (!(max > min)) return [min];
  const rawStep = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(rawStep));
  const step = [1, 2, 2.5, 5, 10].map((factor) => factor * magnitude).find((candidate) => candidate >= rawStep);
  const ticks = [];
  for (let tick = Math.ceil(min / step) * step; tick <= max + step * 1e-9; tick += step) {
    ticks.push(Number(tick.toFixed(10)));
  }
  return ticks;
}

/** Formats a tick value: 0.25, 1,500, or 2.5e+6 from a million on, so labels stay short. */
export function formatTick(value) {
  if (Math.abs(value) >= 1e6) return value.toExponential(1).replace("e+", "e");
  if (Math.abs(value) >= 1000) return value.toLocaleString("en-US");
  return String(Number(value.toPrecision(4)));
}

/**
 * Draws grid, tick labels and axis titles; returns functions mapping data to
 * CSS pixels. The plot's left edge moves right when a y tick label is wider
 * than the default padding allows, so no label is cut off.
 */
export function drawAxes({ context, plot }, { xDomain, yDomain, xLabel, yLabel, formatY = formatTick, integerX = false }) {
  const [x0, x1] = xDomain;
  const [y0, y1] = yDomain;
  const yTicks = niceTicks(y0, y1, 4);
  const widestLabel = Math.max(0, ...yTicks.map((tick) => context.measureText(formatY(tick)).width));
  const left = Math.max(PADDING.left, Math.ceil(widestLabel) + Y_TITLE_PX + 8);
  plot.width = Math.max(1, plot.width - (left - plot.left));
  plot.left = left;
  const toX = (value) => plot.left + ((value - x0) / (x1 - x0)) * plot.width;
  const toY = (value) => plot.top + plot.height - ((value - y0) / (y1 - y0)) * plot.height;

  context.lineWidth = 1;
  context.fillStyle = TEXT_COLOUR;
  context.textBaseline = "middle";
  context.textAlign = "right";
  for (const tick of yTicks) {
    const y = Math.round(toY(tick)) + 0.5;
    context.strokeStyle = GRID_COLOUR;
    context.beginPath();
    context.moveTo(plot.left, y);
    context.lineTo(plot.left + plot.width, y);
    context.stroke();
    context.fillText(formatY(tick), plot.left - 6, y);
  }

  context.textBaseline = "top";
  context.textAlign = "center";
  const xTicks = niceTicks(x0, x1, Math.max(2, Math.floor(plot.width / 70)));
  for (const tick of xTicks) {
    if (integerX && !Number.isInteger(tick)) continue;
    context.fillText(formatTick(tick), toX(tick), plot.top + plot.height + 5);
  }

  context.strokeStyle = AXIS_COLOUR;
  context.beginPath();
  context.moveTo(plot.left + 0.5, plot.top);
  context.lineTo(plot.left + 0.5, plot.top + plot.height + 0.5);
  context.lineTo(plot.left + plot.width, plot.top + plot.height + 0.5);
  context.stroke();

  context.textBaseline = "bottom";
  context.fillText(xLabel, plot.left + plot.width / 2, plot.top + plot.height + PADDING.bottom);
  context.save();
  context.translate(12, plot.top + plot.height / 2);
  context.rotate(-Math.PI / 2);
  context.textBaseline = "middle";
  context.fillText(yLabel, 0, 0);
  context.restore();
  return { toX, toY };
}

/** Draws a legend box in the plot's top-right corner; each entry is { label, colour, dashed }. */
/**
 * Draws a legend box in the plot's top right corner, or its bottom right one
 * when `bottom` is true, for curves that end near the top, as accuracy does.
 */
export function drawLegend({ context, plot }, entries, { bottom = false } = {}) {
  const rowHeight = 15;
  const boxWidth = 26 + Math.max(...entries.map(({ label }) => context.measureText(label).width));
  const left = plot.left + plot.width - boxWidth - 6;
  const top = bottom ? plot.top + plot.height - rowHeight * entries.length - 4 : plot.top + 4;
  context.fillStyle = "rgba(255, 255, 255, 0.85)";
  context.fillRect(left - 4, top - 2, boxWidth + 8, rowHeight * entries.length + 4);
  context.textAlign = "left";
  context.textBaseline = "middle";
  entries.forEach(({ label, colour, dashed }, row) => {
    const y = top + rowHeight * row + rowHeight / 2;
    context.strokeStyle = colour;
    context.lineWidth = 2;
    context.setLineDash(dashed ? [4, 3] : []);
    context.beginPath();
    context.moveTo(left, y);
    context.lineTo(left + 18, y);
    context.stroke();
    context.setLineDash([]);
    context.fillStyle = TEXT_COLOUR;
    context.fillText(label, left + 24, y);
  });
}

export function drawMessage({ context, plot }, text) {
  context.fillStyle = AXIS_COLOUR;
  context.textAlign = "center";
  context.textBaseline = "middle";
  context.fillText(text, plot.left + plot.width / 2, plot.top + plot.height / 2);
}

function traceEverySteps(context, values, stepCount, toX, toY) {
  let penDown = false;
  for (let step = 0; step < stepCount; step++) {
    const value = values[step];
    if (!Number.isFinite(value)) {
      penDown = false; // a gap: steps streamed before this page connected, or a non-finite loss
      continue;
    }
    if (penDown) context.lineTo(toX(step), toY(value));
    else context.moveTo(toX(step), toY(value));
    penDown = true;
  }
}

/**
 * Draws each pixel column's range of values, min to max, as a bar of the
 * line's width, and joins each column's last value to the next column's
 * first, so spikes survive decimation. The bars are rectangles because a
 * stroked path that runs up and down every column, with round joins, took a
 * few milliseconds to rasterize in software.
 */
function drawColumnExtremes(context, values, stepCount, plot, columnCount, toY) {
  const stepsPerColumn = stepCount / columnCount;
  const halfWidth = context.lineWidth / 2;
  const joins = new Path2D();
  let previous = null; // { x, y } of the last value of the column before, unless it had none
  for (let column = 0; column < columnCount; column++) {
    const start = Math.floor(column * stepsPerColumn);
    const end = Math.min(stepCount, Math.floor((column + 1) * stepsPerColumn));
    let first = NaN;
    let last = NaN;
    let min = Infinity;
    let max = -Infinity;
    for (let step = start; step < end; step++) {
      const value = values[step];
      if (!Number.isFinite(value)) continue;
      if (Number.isNaN(first)) first = value;
      last = value;
      if (value < min) min = value;
      if (value > max) max = value;
    }
    if (Number.isNaN(first)) {
      previous = null;
      continue;
    }
    const x = plot.left + column + 0.5;
    const top = toY(max);
    context.fillRect(x - halfWidth, top - halfWidth, 2 * halfWidth, toY(min) - top + 2 * halfWidth);
    if (previous !== null) {
      joins.moveTo(previous.x, previous.y);
      joins.lineTo(x, toY(first));
    }
    previous = { x, y: toY(last) };
  }
  context.stroke(joins);
}

/**
 * Draws the batch loss of every step seen. When there are more steps than
 * pixel columns, each column draws its first, min, max and last value.
 */
export function drawStepLossChart(canvas, store) {
  const frame = prepareCanvas(canvas);
  const series = store.losses;
  const stepCount = series.length;
  const values = series.values;

  let maxLoss = 0;
  for (let step = 0; step < stepCount; step++) {
    if (Number.isFinite(values[step]) && values[step] > maxLoss) maxLoss = values[step];
  }
  const xDomain = [0, Math.max(10, stepCount)];
  const yDomain = [0, maxLoss > 0 ? maxLoss * 1.05 : 1];
  const { toX, toY } = drawAxes(frame, { xDomain, yDomain, xLabel: "step", yLabel: "batch loss", integerX: true });
  if (stepCount === 0) {
    drawMessage(frame, "No steps yet");
    return;
  }

  const { context, plot } = frame;
  context.strokeStyle = LOSS_COLOUR;
  context.fillStyle = LOSS_COLOUR;
  context.lineWidth = 1.25;
  context.lineJoin = "round";
  const columnCount = Math.max(1, Math.floor(plot.width));
  if (stepCount <= columnCount) {
    context.beginPath();
    traceEverySteps(context, values, stepCount, toX, toY);
    context.stroke();
  } else {
    drawColumnExtremes(context, values, stepCount, plot, columnCount, toY);
  }
  drawLegend(frame, [{ label: "batch loss (with dropout)", colour: LOSS_COLOUR }]);
}

/**
 * Draws one per-epoch metric for train and test. The x axis counts completed
 * epochs, so the evaluation after epoch 0 is at x = 1.
 */
export function drawEpochChart(canvas, store, { trainKey, testKey, yLabel, asPercent }) {
  const frame = prepareCanvas(canvas);
  const records = store.epochRecords;
  const epochs = store.run?.config?.epochs ?? 1;
  const xDomain = [0, Math.max(epochs, records.length > 0 ? records[records.length - 1].epoch + 1 : 1)];

  let yMax = asPercent ? 1 : 0;
  if (!asPercent) {
    for (const record of records) {
      for (const key of [trainKey, testKey]) {
        if (Number.isFinite(record[key]) && record[key] > yMax) yMax = record[key];
      }
    }
    yMax = yMax > 0 ? yMax * 1.1 : 1;
  }
  const formatY = asPercent ? (value) => `${Math.round(value * 100)}%` : formatTick;
  const { toX, toY } = drawAxes(frame, {
    xDomain, yDomain: [0, yMax], xLabel: "epochs completed", yLabel, formatY, integerX: true,
  });
  if (records.length === 0) {
    drawMessage(frame, "No epoch finished yet");
    return;
  }

  const { context } = frame;
  const series = [
    { key: trainKey, colour: TRAIN_COLOUR, dashed: false, label: `train ${yLabel}` },
    { key: testKey, colour: TEST_COLOUR, dashed: true, label: `test ${yLabel}` },
  ];
  for (const { key, colour, dashed } of series) {
    context.strokeStyle = colour;
    context.fillStyle = colour;
    context.lineWidth = 1.75;
    context.setLineDash(dashed ? [5, 3] : []);
    context.beginPath();
    let penDown = false;
    for (const record of records) {
      const value = record[key];
      if (!Number.isFinite(value)) {
        penDown = false;
        continue;
      }
      const x = toX(record.epoch + 1);
      if (penDown) context.lineTo(x, toY(value));
      else context.moveTo(x, toY(value));
      penDown = true;
    }
    context.stroke();
    context.setLineDash([]);
    if (records.length <= 60) {
      for (const record of records) {
        if (!Number.isFinite(record[key])) continue;
        context.beginPath();
        context.arc(toX(record.epoch + 1), toY(record[key]), 2.25, 0, 2 * Math.PI);
        context.fill();
      }
    }
  }
  drawLegend(frame, series.map(({ label, colour, dashed }) => ({ label, colour, dashed })), { bottom: asPercent });
}
