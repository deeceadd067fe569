// Test error of Monte Carlo averaging against the ensemble size k: the mean
// over repeats with a band of ± one standard deviation, for the arithmetic and
// the geometric mean, and weight scaling's error as a horizontal line. The k
// axis is base-10 logarithmic with ticks 1, 2, 5, 10, 20, ...

import {
  drawAxes, fillDots, linearScale, logScale, logTicks, niceTicks, prepareCanvas, strokePath, TEXT_COLOUR,
} from "./chartCanvas.js";
import { formatPercent, RULE_COLOURS } from "./format.js";

const EDGE_MARGIN = 12; // pixels between the outermost k and the plot's edges
const BAND_ALPHA = 0.16;
const MC_MEANS = ["arithmetic", "geometric"];

/** Builds the chart's numbers from an evaluation result that has an `mc` part. */
export function mcChartModel(result) {
  const model = {
    ks: result.mc.ks,
    repeats: result.mc.repeats,
    weightScalingError: result.weight_scaling.error,
  };
  for (const mean of MC_MEANS) {
    model[mean] = {
      errorMean: result.mc[mean].error_mean,
      errorStd: result.mc[mean].error_std,
      agreementMean: result.mc[mean].agreement_mean,
    };
  }
  return model;
}

function withAlpha(hex, alpha) {
  const value = Number.parseInt(hex.slice(1), 16);
  return `rgba(${value >> 16}, ${(value >> 8) & 255}, ${value & 255}, ${alpha})`;
}

function yDomainMax(model) {
  let top = model.weightScalingError;
  for (const mean of MC_MEANS) {
    model[mean].errorMean.forEach((value, index) => {
      top = Math.max(top, value + model[mean].errorStd[index]);
    });
  }
  return Math.min(1, Math.max(0.01, top * 1.12));
}

function drawBand(context, points, colour) {
  context.save();
  context.fillStyle = withAlpha(colour, BAND_ALPHA);
  context.beginPath();
  points.forEach(([x, upper], index) => (index === 0 ? context.moveTo(x, upper) : context.lineTo(x, upper)));
  for (let index = points.length - 1; index >= 0; index--) context.lineTo(points[index][0], points[index][2]);
  context.closePath();
  context.fill();
  context.restore();
}

/**
 * Labels the weight-scaling line at the plot's left end, where MC's error is
 * usually highest and so furthest from the line, on a white box that keeps it
 * readable where a curve crosses it.
 */
function drawLineLabel(context, plot, y, text) {
  const x = plot.left + 6;
  const width = context.measureText(text).width;
  context.fillStyle = "rgba(255, 255, 255, 0.85)";
  context.fillRect(x - 2, y - 17, width + 4, 14);
  context.fillStyle = RULE_COLOURS.weight_scaling;
  context.textAlign = "left";
  context.textBaseline = "bottom";
  context.fillText(text, x, y - 4);
}

function drawHighlight(context, plot, x, label) {
  context.save();
  context.strokeStyle = "rgba(31, 35, 41, 0.35)";
  context.setLineDash([2, 3]);
  context.beginPath();
  context.moveTo(Math.round(x) + 0.5, plot.top);
  context.lineTo(Math.round(x) + 0.5, plot.top + plot.height);
  context.stroke();
  context.restore();
  context.fillStyle = TEXT_COLOUR;
  context.textBaseline = "top";
  context.textAlign = x > plot.left + plot.width - 60 ? "right" : "left";
  context.fillText(label, x + (context.textAlign === "left" ? 4 : -4), plot.top + 2);
}

/**
 * Draws `model` (from mcChartModel) and marks the k at `highlightIndex`.
 * Returns what was drawn: the x ticks, the weight-scaling error and its
 * pixel row, and per mean the error values, so a test can compare them
 * with the API's numbers.
 */
export function drawMcChart(canvas, model, highlightIndex) {
  const surface = prepareCanvas(canvas);
  const { context, plot } = surface;
  const ks = model.ks;
  const xDomain = ks.length > 1 ? [ks[0], ks[ks.length - 1]] : [ks[0] / 2, ks[0] * 2];
  const xScale = logScale(xDomain, [plot.left + EDGE_MARGIN, plot.left + plot.width - EDGE_MARGIN]);
  const yMax = yDomainMax(model);
  const yScale = linearScale([0, yMax], [plot.top + plot.height, plot.top]);
  const xTicks = logTicks(xDomain[0], xDomain[1]);
  drawAxes(
    surface,
    { ticks: xTicks, scale: xScale, format: String, title: "k, sub-networks averaged (log scale)" },
    { ticks: niceTicks(0, yMax, 4), scale: yScale, format: (tick) => formatPercent(tick, 0), title: "test error" },
  );

  const clampY = (value) => yScale(Math.max(0, Math.min(yMax, value)));
  const drawn = { xTicks, ks: [...ks], weightScalingError: model.weightScalingError };
  for (const mean of MC_MEANS) {
    const { errorMean, errorStd } = model[mean];
    const band = ks.map((k, index) => [
      xScale(k),
      clampY(errorMean[index] + errorStd[index]),
      clampY(errorMean[index] - errorStd[index]),
    ]);
    drawBand(context, band, RULE_COLOURS[mean]);
    drawn[mean] = { errorMean: [...errorMean], errorStd: [...errorStd] };
  }
  for (const mean of MC_MEANS) {
    const line = ks.map((k, index) => [xScale(k), yScale(model[mean].errorMean[index])]);
    strokePath(context, line, RULE_COLOURS[mean], { dash: mean === "geometric" ? [6, 3] : [] });
    fillDots(context, line, RULE_COLOURS[mean], 2.5);
  }

  const wsY = Math.round(yScale(model.weightScalingError)) + 0.5;
  strokePath(context, [[plot.left, wsY], [plot.left + plot.width, wsY]], RULE_COLOURS.weight_scaling, {
    width: 1.5,
    dash: [8, 4],
  });
  drawLineLabel(context, plot, wsY, `weight scaling ${formatPercent(model.weightScalingError)}`);
  drawn.weightScalingPixelY = wsY;

  if (highlightIndex !== null && highlightIndex >= 0 && highlightIndex < ks.length) {
    const x = xScale(ks[highlightIndex]);
    drawHighlight(context, plot, x, `k = ${ks[highlightIndex]}`);
    for (const mean of MC_MEANS) {
      fillDots(context, [[x, yScale(model[mean].errorMean[highlightIndex])]], RULE_COLOURS[mean], 5);
    }
    drawn.highlightK = ks[highlightIndex];
  }

  canvas.dataset.xTicks = xTicks.join(",");
  canvas.dataset.weightScalingError = String(model.weightScalingError);
  canvas.dataset.highlightK = drawn.highlightK === undefined ? "" : String(drawn.highlightK);
  return drawn;
}
