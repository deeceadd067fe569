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

import { predict } from "../api.js";
import { argmax, decisionColour, drawPoints, gridImage, paintGridImage } from "../render/decisionMap.js";
import { serverOffers } from "./labApi.js";

export const PREDICT_PATH = "/api/runs/{run_id}/predict";
export const MAP_RESOLUTION = 100; // grid points per axis: 10,000 points
// NOTE: mirrors MAX_PREDICT_WORK in backend/dropviz/api/schemas.py, which the
// API does not report. Past it the server replies 422 naming k.
const MAX_PREDICT_WORK = 2_000_000; // points times k
export const GALLERY_SUBNETWORKS = 8;

export function predictionEndpointOffered() {
  return serverOffers(PREDICT_PATH);
}

/** Returns the largest k, at most `k`, that the server accepts for a map. */
export function mapK(k) {
  return Math.max(1, Math.min(k, Math.floor(MAX_PREDICT_WORK / MAP_RESOLUTION ** 2)));
}

/** Requests weight-scaling and MC predictions on the server's grid over the run's data. */
export function fetchMapPredictions(runId, k, seed) {
  return predict(runId, { grid: MAP_RESOLUTION, k, seed, subnetworks: 0 });
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

function uncertaintyColour(share) {
  const shade = Math.round(255 - 215 * Math.max(0, Math.min(1, share)));
  return [shade, shade, shade];
}

/** Draws a grid image scaled to the canvas, then the labelled points on top. */
function paintMap(canvas, source, axes, points) {
  paintGridImage(canvas, source);
  const [count] = points === null ? [0] : drawPoints(canvas, axes, [{ ...points, marker: "train" }]);
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
