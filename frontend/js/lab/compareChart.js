// Overlaid per-epoch curves of compared runs: one colour per run, the test
// split as a solid line and the training split dashed. x is the number of
// completed epochs (the API's 0-based `epoch` + 1).

import { drawAxes, fillDots, linearScale, niceTicks, prepareCanvas, strokePath, TEXT_COLOUR } from "./chartCanvas.js";
import { formatNumber, formatPercent } from "./format.js";

const METRICS = {
  loss: { train: "train_loss", test: "test_loss", title: "cross-entropy loss", format: (v) => formatNumber(v, 3) },
  accuracy: {
    train: "train_accuracy",
    test: "test_accuracy",
    title: "accuracy",
    format: (v) => formatPercent(v, 0),
  },
};

function yDomain(metric, values) {
  if (values.length === 0) return [0, 1];
  const top = Math.max(...values);
  if (metric === "loss") return [0, Math.max(0.05, top * 1.08)];
  const bottom = Math.min(...values);
  return [Math.max(0, Math.floor(bottom * 10) / 10 - 0.05), 1];
}

/**
 * Draws `metric` ("loss" or "accuracy") of every run in `runs` (each
 * { label, colour, epochs: EpochOut[] }). Returns, per run, the label and the
 * plotted x, train and test values, so a test can compare them with the API.
 */
export function drawCompareChart(canvas, runs, metric) {
  const spec = METRICS[metric];
  const surface = prepareCanvas(canvas, { left: 56, right: 16, top: 12, bottom: 40 });
  const { context, plot } = surface;

  const values = [];
  let lastEpoch = 1;
  for (const run of runs) {
    for (const epoch of run.epochs) {
      lastEpoch = Math.max(lastEpoch, epoch.epoch + 1);
      for (const key of [spec.train, spec.test]) if (Number.isFinite(epoch[key])) values.push(epoch[key]);
    }
  }
  const epochsPlanned = Math.max(lastEpoch, ...runs.map((run) => run.plannedEpochs ?? 1));
  const xDomain = [epochsPlanned > 1 ? 1 : 0, epochsPlanned];
  const xScale = linearScale(xDomain, [plot.left + 6, plot.left + plot.width - 6]);
  const [y0, y1] = yDomain(metric, values);
  const yScale = linearScale([y0, y1], [plot.top + plot.height, plot.top]);
  const xTicks = niceTicks(xDomain[0], xDomain[1], Math.max(2, Math.floor(plot.width / 70)))
    .filter((tick) => Number.isInteger(tick));
  drawAxes(
    surface,
    { ticks: xTicks, scale: xScale, format: String, title: "epochs completed" },
    { ticks: niceTicks(y0, y1, 4), scale: yScale, format: spec.format, title: spec.title },
  );

  if (runs.length === 0) {
    context.fillStyle = TEXT_COLOUR;
    context.textAlign = "center";
    context.textBaseline = "middle";
    context.fillText("No runs to compare yet.", plot.left + plot.width / 2, plot.top + plot.height / 2);
  }
  const drawn = [];
  for (const run of runs) {
    const finite = (key) => run.epochs.filter((epoch) => Number.isFinite(epoch[key]));
    for (const [key, dash] of [[spec.train, [5, 4]], [spec.test, []]]) {
      const line = finite(key).map((epoch) => [xScale(epoch.epoch + 1), yScale(epoch[key])]);
      strokePath(context, line, run.colour, { width: 2, dash });
      if (line.length === 1) fillDots(context, line, run.colour, 3);
    }
    drawn.push({
      label: run.label,
      epochs: run.epochs.map((epoch) => epoch.epoch + 1),
      train: run.epochs.map((epoch) => epoch[spec.train]),
      test: run.epochs.map((epoch) => epoch[spec.test]),
    });
  }
  canvas.dataset.series = String(drawn.length);
  return drawn;
}
