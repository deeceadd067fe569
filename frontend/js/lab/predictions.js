// Views built on `POST /api/runs/{run_id}/predict`: decision maps of a 2-D
// run on a grid, and single sub-networks' classes for the gallery. Servers
// without that endpoint still serve the rest of the lab, so the page checks
// the OpenAPI document for it before calling it.
//
// Used request and reply fields (backend/dropviz/api/schemas.py, PredictIn
// and PredictOut):
//   { "grid": n } or { "points": [[...], ...] }, with "k", "seed", "subnetworks"
//   → { "grid": {"x": [n], "y": [n]}, row-major with y rows ascending,
//       "weight_scaling": [[p × classes] × points],
//       "mc": {"k", "seed", "mean": [[...]], "geometric": [[...]], "entropy": [nats]},
//       "subnetworks": [{"source": "last_trained", "step", "probabilities"} |
//                       {"source": "sampled", "index", "probabilities"}] }

import { predict, serverOffers } from "./labApi.js";

export const PREDICT_PATH = "/api/runs/{run_id}/predict";
export const MAP_RESOLUTION = 100; // grid points per axis: 10,000 points
// NOTE: mirrors MAX_PREDICT_WORK in backend/dropviz/api/schemas.py, which the
// API does not report. Past it the server replies 422 naming k.
const MAX_PREDICT_WORK = 2_000_000; // points times k
export const GALLERY_SUBNETWORKS = 8;

/** Class colours as [r, g, b]; classes 0 and 1 use the dashboard's orange and blue. */
export const CLASS_COLOURS = [
  [203, 96, 26], [58, 116, 181], [46, 139, 87], [142, 91, 181], [192, 57, 43],
  [31, 154, 165], [138, 109, 30], [209, 73, 123], [96, 96, 96], [120, 160, 40],
];

export function predictionEndpointOffered() {
  return serverOffers(PREDICT_PATH);
}

/** Returns the class colour of `index` as a CSS colour. */
export function classColour(index) {
  const [r, g, b] = CLASS_COLOURS[index % CLASS_COLOURS.length];
  return `rgb(${r}, ${g}, ${b})`;
}

/** Returns the largest k, at most `k`, that the server accepts for a map. */
export function mapK(k) {
  return Math.max(1, Math.min(k, Math.floor(MAX_PREDICT_WORK / MAP_RESOLUTION ** 2)));
}

/** Requests weight-scaling and MC predictions on the server's grid over the run's data. */
export function fetchMapPredictions(runId, k, seed) {
  return predict(runId, { grid: MAP_RESOLUTION, k, seed, subnetworks: 0 });
}

function argmax(probabilities) {
  let best = 0;
  for (let c = 1; c < probabilities.length; c++) if (probabilities[c] > probabilities[best]) best = c;
  return best;
}

/**
 * Returns a Map from example index to { lastTrained, lastStep, sampled }: the
 * class that the last training step's sub-network predicts (null when the run
 * has none, such as DropConnect or per-example masks) and the classes of
 * GALLERY_SUBNETWORKS freshly sampled sub-networks. `source` is { points }
 * with the examples' features in the model's space, or { split, count } for
 * the first `count` examples of a split.
 */
export async function fetchSubnetworkClasses(runId, indices, source, seed) {
  // k = 1 because only the single sub-networks are used here
  const reply = await predict(runId, { ...source, k: 1, seed, subnetworks: GALLERY_SUBNETWORKS });
  const lastTrained = reply.subnetworks.find((member) => member.source === "last_trained") ?? null;
  const sampled = reply.subnetworks.filter((member) => member.source === "sampled");
  const classes = new Map();
  indices.forEach((exampleIndex, position) => {
    classes.set(exampleIndex, {
      lastTrained: lastTrained === null ? null : argmax(lastTrained.probabilities[position]),
      lastStep: lastTrained?.step ?? null,
      sampled: sampled.map((member) => argmax(member.probabilities[position])),
    });
  });
  return classes;
}

/** Paints one grid-resolution image, top row = largest y: `colourOf(pointIndex)` returns [r, g, b]. */
function gridImage(columns, rows, colourOf) {
  const image = new ImageData(columns, rows);
  for (let row = 0; row < rows; row++) {
    const sourceRow = rows - 1 - row; // the reply's rows run from the smallest y up
    for (let column = 0; column < columns; column++) {
      image.data.set([...colourOf(sourceRow * columns + column), 255], (row * columns + column) * 4);
    }
  }
  const source = document.createElement("canvas");
  source.width = columns;
  source.height = rows;
  source.getContext("2d").putImageData(image, 0, 0);
  return source;
}

function decisionColour(probabilities) {
  const classCount = probabilities.length;
  const best = argmax(probabilities);
  // confidence 1/C (uniform) is pale, confidence 1 is strong
  const strength = Math.max(0, (probabilities[best] - 1 / classCount) / (1 - 1 / classCount));
  const alpha = 0.18 + 0.62 * strength;
  return CLASS_COLOURS[best % CLASS_COLOURS.length].map((channel) => Math.round(255 + alpha * (channel - 255)));
}

function uncertaintyColour(share) {
  const shade = Math.round(255 - 215 * Math.max(0, Math.min(1, share)));
  return [shade, shade, shade];
}

/** Returns the map's extent: grid points are cell centres, so half a cell is added on each side. */
function extent(axis) {
  const step = axis.length > 1 ? (axis[axis.length - 1] - axis[0]) / (axis.length - 1) : 1;
  return [axis[0] - step / 2, axis[axis.length - 1] + step / 2];
}

/** Draws a grid image scaled to the canvas, then the labelled points on top. */
function paintMap(canvas, source, axes, points) {
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  const pixelRatio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * pixelRatio);
  canvas.height = Math.round(height * pixelRatio);
  const context = canvas.getContext("2d");
  context.setTransform(pixelRatio, 0, 0, pixelRatio, 0, 0);
  context.imageSmoothingEnabled = true;
  context.drawImage(source, 0, 0, width, height);
  const [xLow, xHigh] = extent(axes.x);
  const [yLow, yHigh] = extent(axes.y);
  const toX = (x) => ((x - xLow) / (xHigh - xLow)) * width;
  const toY = (y) => ((yHigh - y) / (yHigh - yLow)) * height;
  context.strokeStyle = "#ffffff";
  context.lineWidth = 1;
  const count = points === null ? 0 : points.labels.length;
  for (let index = 0; index < count; index++) {
    context.fillStyle = classColour(points.labels[index]);
    context.beginPath();
    context.arc(toX(points.features[2 * index]), toY(points.features[2 * index + 1]), 3, 0, 2 * Math.PI);
    context.fill();
    context.stroke();
  }
  canvas.dataset.drawn = String(count);
}

/**
 * Draws the three maps from a grid reply: weight scaling's class, MC's class
 * (arithmetic mean), and MC's predictive entropy divided by log of the class
 * count. `points` = { features: (n, 2) row-major, labels } are drawn as dots,
 * or null for none.
 */
export function drawDecisionMaps(canvases, reply, points) {
  const columns = reply.grid.x.length;
  const rows = reply.grid.y.length;
  const maxEntropy = Math.log(reply.weight_scaling[0].length);
  const images = {
    weightScaling: gridImage(columns, rows, (i) => decisionColour(reply.weight_scaling[i])),
    mc: gridImage(columns, rows, (i) => decisionColour(reply.mc.mean[i])),
    uncertainty: gridImage(columns, rows, (i) => uncertaintyColour(reply.mc.entropy[i] / maxEntropy)),
  };
  paintMap(canvases.weightScaling, images.weightScaling, reply.grid, points);
  paintMap(canvases.mc, images.mc, reply.grid, points);
  paintMap(canvases.uncertainty, images.uncertainty, reply.grid, points);
}
