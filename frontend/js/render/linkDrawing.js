// Drawing of the sub-network's links on a 2D canvas context, without the DOM,
// so the stream worker can draw them on an OffscreenCanvas and the page can
// draw a replayed step on its own canvas. One path per sign and width bucket.

import { isUnitKept, isWeightKept, MASK_SCOPE_WEIGHTS } from "../protocol.js";
import { cssColour, NON_FINITE_CSS } from "./palette.js";

// Link widths by |w| in units of the layer's RMS weight: below 0.5, 0.5 to 1,
// 1 to 2, and 2 or more. Only the last bucket is wider than 1 px because
// software rasterizing is much slower above 1 px: headless Chromium 156 with
// --disable-gpu on a 2-core machine stroked one path of 8,000 lines on a
// 560×460 canvas in about 13 ms at 0.7 px and 220 ms at 1.3 px.
export const WIDTH_BUCKET_EDGES = [0.5, 1, 2];
export const WIDTH_BUCKET_PX = [0.4, 0.7, 1.0, 1.8];
const BUCKET_COLOUR_POSITION = [0.35, 0.55, 0.8, 1.0];
const LINK_ALPHA = 0.55;
export const FADED_STROKE = "rgb(150, 150, 150)";
export const FADED_ALPHA = 0.07;
export const FADED_WIDTH_PX = 0.5;
const NON_FINITE_WIDTH_PX = 1.4;
const PINNED_STROKE = "rgb(20, 20, 20)";
const PINNED_WIDTH_PX = 2.5;

/**
 * Returns, per unit layer, a Uint8Array with 1 for each unit in the
 * sub-network of `lastFrame`'s step. The output layer is never dropped, and
 * under DropConnect no unit is. Before any step every unit counts as kept.
 * With per-example masks the first example's row is shown.
 */
export function keptUnitsOf(layerSizes, lastFrame) {
  const unitMasks = lastFrame !== null && lastFrame.frame.maskScope !== MASK_SCOPE_WEIGHTS;
  return layerSizes.map((unitCount, layer) => {
    const kept = new Uint8Array(unitCount).fill(1);
    if (!unitMasks || layer >= lastFrame.masks.length) return kept;
    const maskBytes = lastFrame.masks[layer];
    for (let unit = 0; unit < unitCount; unit++) kept[unit] = isUnitKept(maskBytes, unit, 0) ? 1 : 0;
    return kept;
  });
}

/** Root mean square of the values; 0 for an empty array. */
export function rootMeanSquare(values) {
  let sum = 0;
  for (let index = 0; index < values.length; index++) sum += values[index] * values[index];
  return values.length > 0 ? Math.sqrt(sum / values.length) : 0;
}

function widthBucket(magnitude, scale) {
  const relative = scale > 0 ? magnitude / scale : 0;
  let bucket = 0;
  while (bucket < WIDTH_BUCKET_EDGES.length && relative >= WIDTH_BUCKET_EDGES[bucket]) bucket++;
  return bucket;
}

/**
 * Clears the context and draws the links of the sub-network, then the pinned
 * weights' links. A link belongs to the sub-network when both its units are
 * kept (`kept`, per unit layer, 1 = kept), or, when `weightMasks`
 * (DropConnect, per weight layer) is given, when its weight's bit is set.
 * `scene` is { layerSizes, positions: { x, y }, cssWidth, cssHeight,
 * pixelRatio }. Returns { fadedLinkCount, rmsWeights }.
 */
export function drawSubnetworkLinks(context, scene, { weights, kept, weightMasks, pinnedKeys }) {
  const { layerSizes, positions, cssWidth, cssHeight, pixelRatio } = scene;
  context.setTransform(pixelRatio, 0, 0, pixelRatio, 0, 0);
  context.clearRect(0, 0, cssWidth, cssHeight);
  const rmsWeights = weights.map(rootMeanSquare);

  // strong[0] contains negative weights, strong[1] positive ones, by width bucket
  const strong = [0, 1].map(() => WIDTH_BUCKET_PX.map(() => new Path2D()));
  const nonFinite = new Path2D(); // NaN and ±Infinity, whatever their sign
  let nonFiniteCount = 0;
  const { x, y } = positions;
  const layerCount = layerSizes.length;
  let linkCount = 0;
  let strongCount = 0;

  for (let layer = 0; layer + 1 < layerCount; layer++) {
    const destinationCount = layerSizes[layer + 1];
    linkCount += layerSizes[layer] * destinationCount;
    const destinationIsOutput = layer + 1 === layerCount - 1;
    const matrix = weights[layer]; // (n_layer, n_{layer+1})
    const weightMask = weightMasks === null ? null : weightMasks[layer]; // n_layer rows of n_{layer+1} bits
    const scale = rmsWeights[layer];
    for (let i = 0; i < layerSizes[layer]; i++) {
      if (kept[layer][i] === 0) continue;
      const rowStart = i * destinationCount;
      for (let j = 0; j < destinationCount; j++) {
        if (weightMask !== null) {
          if (!isWeightKept(weightMask, destinationCount, i, j)) continue;
        } else if (!destinationIsOutput && kept[layer + 1][j] === 0) {
          continue;
        }
        strongCount++;
        const weight = matrix[rowStart + j];
        let path;
        if (Number.isFinite(weight)) {
          path = strong[weight >= 0 ? 1 : 0][widthBucket(Math.abs(weight), scale)];
        } else {
          path = nonFinite;
          nonFiniteCount++;
        }
        path.moveTo(x[layer], y[layer][i]);
        path.lineTo(x[layer + 1], y[layer + 1][j]);
      }
    }
  }

  context.lineCap = "butt";
  context.globalAlpha = LINK_ALPHA;
  for (let bucket = 0; bucket < WIDTH_BUCKET_PX.length; bucket++) {
    context.lineWidth = WIDTH_BUCKET_PX[bucket];
    for (const sign of [0, 1]) {
      const position = (sign === 1 ? 1 : -1) * BUCKET_COLOUR_POSITION[bucket];
      context.strokeStyle = cssColour(position);
      context.stroke(strong[sign][bucket]);
    }
  }
  context.globalAlpha = 1;
  if (nonFiniteCount > 0) {
    context.lineWidth = NON_FINITE_WIDTH_PX;
    context.strokeStyle = NON_FINITE_CSS;
    context.stroke(nonFinite);
  }
  drawPinnedLinks(context, positions, pinnedKeys);
  return { fadedLinkCount: linkCount - strongCount, rmsWeights };
}

function drawPinnedLinks(context, { x, y }, pinnedKeys) {
  if (pinnedKeys.length === 0) return;
  context.lineWidth = PINNED_WIDTH_PX;
  context.strokeStyle = PINNED_STROKE;
  context.setLineDash([5, 3]);
  context.beginPath();
  for (const { layer, source, destination } of pinnedKeys) {
    context.moveTo(x[layer], y[layer][source]);
    context.lineTo(x[layer + 1], y[layer + 1][destination]);
  }
  context.stroke();
  context.setLineDash([]);
}
