// Canvas plumbing shared by the lab's charts: linear and base-10 log scales,
// ticks, grid and axis titles. The backing store and round ticks come from the
// dashboard's charts, and the fonts and greys follow them.

import { prepareCanvas as prepareChartCanvas } from "../render/charts.js";

export { niceTicks } from "../render/charts.js";

const FONT = "12px system-ui, -apple-system, 'Segoe UI', sans-serif";
const AXIS_COLOUR = "#8a8f98";
const GRID_COLOUR = "#eceef1";
export const TEXT_COLOUR = "#4a4f57";
const DEFAULT_PADDING = { left: 56, right: 16, top: 12, bottom: 40 };

/** Prepares the canvas as the dashboard's charts do, in the lab's font and `padding`. */
export function prepareCanvas(canvas, padding = DEFAULT_PADDING) {
  return prepareChartCanvas(canvas, { padding, font: FONT });
}

/** Maps [min, max] linearly onto [start, end] pixels. */
export function linearScale([min, max], [start, end]) {
  const span = max > min ? max - min : 1;
  return (value) => start + ((value - min) / span) * (end - start);
}

/** Maps [min, max] (both > 0) onto [start, end] pixels by log10. */
export function logScale([min, max], [start, end]) {
  const low = Math.log10(min);
  const span = max > min ? Math.log10(max) - low : 1;
  return (value) => start + ((Math.log10(value) - low) / span) * (end - start);
}

/** Returns the 1-2-5 sequence (1, 2, 5, 10, 20, ...) within [min, max], for a log axis. */
export function logTicks(min, max) {
  const ticks = [];
  for (let decade = 10 ** Math.floor(Math.log10(min)); decade <= max; decade *= 10) {
    for (const factor of [1, 2, 5]) {
      const tick = Math.round(decade * factor * 1e6) / 1e6;
      if (tick >= min - 1e-9 && tick <= max + 1e-9) ticks.push(tick);
    }
  }
  return ticks;
}

/**
 * Draws the grid, tick labels and axis titles. `x` and `y` are
 * { ticks, scale, format, title }; scales map data to CSS pixels.
 */
export function drawAxes({ context, plot }, x, y) {
  context.lineWidth = 1;
  context.fillStyle = TEXT_COLOUR;

  context.textBaseline = "middle";
  context.textAlign = "right";
  for (const tick of y.ticks) {
    const pixel = Math.round(y.scale(tick)) + 0.5;
    context.strokeStyle = GRID_COLOUR;
    context.beginPath();
    context.moveTo(plot.left, pixel);
    context.lineTo(plot.left + plot.width, pixel);
    context.stroke();
    context.fillText(y.format(tick), plot.left - 6, pixel);
  }

  context.textBaseline = "top";
  context.textAlign = "center";
  for (const tick of x.ticks) {
    const pixel = Math.round(x.scale(tick)) + 0.5;
    context.strokeStyle = GRID_COLOUR;
    context.beginPath();
    context.moveTo(pixel, plot.top);
    context.lineTo(pixel, plot.top + plot.height);
    context.stroke();
    context.fillText(x.format(tick), pixel, plot.top + plot.height + 5);
  }

  context.strokeStyle = AXIS_COLOUR;
  context.beginPath();
  context.moveTo(plot.left + 0.5, plot.top);
  context.lineTo(plot.left + 0.5, plot.top + plot.height + 0.5);
  context.lineTo(plot.left + plot.width, plot.top + plot.height + 0.5);
  context.stroke();

  context.fillText(x.title, plot.left + plot.width / 2, plot.top + plot.height + 22);
  context.save();
  context.translate(14, plot.top + plot.height / 2);
  context.rotate(-Math.PI / 2);
  context.textBaseline = "middle";
  context.fillText(y.title, 0, 0);
  context.restore();
}

/** Strokes a polyline through [x, y] pixel pairs; `dash` is a canvas line-dash array. */
export function strokePath(context, points, colour, { width = 2, dash = [] } = {}) {
  if (points.length === 0) return;
  context.save();
  context.strokeStyle = colour;
  context.lineWidth = width;
  context.lineJoin = "round";
  context.setLineDash(dash);
  context.beginPath();
  points.forEach(([x, y], index) => (index === 0 ? context.moveTo(x, y) : context.lineTo(x, y)));
  context.stroke();
  context.restore();
}

/** Fills dots of radius `radius` at [x, y] pixel pairs. */
export function fillDots(context, points, colour, radius = 3) {
  context.save();
  context.fillStyle = colour;
  for (const [x, y] of points) {
    context.beginPath();
    context.arc(x, y, radius, 0, 2 * Math.PI);
    context.fill();
  }
  context.restore();
}
