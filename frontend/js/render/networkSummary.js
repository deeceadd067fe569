// The network drawn as a summary, for layers too large to draw link by link.
// Each unit layer is a compact grid of squares (shaped like the image for the
// input of image data), and links are aggregated per block of units. A block
// is a run of consecutive grid rows, so units keep their place. One line joins
// each pair of blocks: its colour is Σw ÷ Σ|w| over the pair's weights, its
// width their RMS relative to the layer's RMS, and its opacity the share of
// the pair's weights in the latest step's sub-network.

import { isWeightKept } from "../protocol.js";
import { unitLayerName } from "../lessons/keepProbabilities.js";
import { cssColour, NON_FINITE_CSS } from "./palette.js";

const MARGIN_X = 40;
const MARGIN_TOP = 30;
const MARGIN_BOTTOM = 26;
const MAX_GRID_WIDTH_PX = 150;
const MAX_CELL_PX = 14;
const MAX_BLOCKS = 12; // blocks per layer, so at most 144 lines per weight layer
// Block statistics pass over every weight, so they refresh at most every
// STATS_INTERVAL_MS, and at most every STATS_COST_FACTOR times their last cost.
const STATS_INTERVAL_MS = 400;
const STATS_COST_FACTOR = 10;
const MAX_STATS_WEIGHTS = 250_000; // per weight layer; a larger layer is sampled
export const SUMMARY_WIDTH_EDGES = [0.75, 1, 1.33];
export const SUMMARY_WIDTH_PX = [0.8, 1.6, 2.6, 3.6];
const KEPT_FILL = "#2b3440";
const OUTPUT_FILL = "#4d5a6b";
const DROPPED_STROKE = "#b4bac2";
const HIT_TOLERANCE_PX = 5;

/** Grid of a layer of `count` units in at most maxWidth × maxHeight: { columns, rows, cell }. */
function chooseGrid(count, maxWidth, maxHeight, shape) {
  if (shape !== null) {
    const [rows, columns] = shape;
    return { columns, rows, cell: Math.min(MAX_CELL_PX, maxWidth / columns, maxHeight / rows) };
  }
  let best = { columns: 1, rows: count, cell: 0 };
  for (let columns = 1; columns <= Math.min(count, 128); columns++) {
    const rows = Math.ceil(count / columns);
    const cell = Math.min(MAX_CELL_PX, maxWidth / columns, maxHeight / rows);
    if (cell > best.cell + 1e-9) best = { columns, rows, cell };
  }
  return best;
}

function widthBucket(relative) {
  let bucket = 0;
  while (bucket < SUMMARY_WIDTH_EDGES.length && relative >= SUMMARY_WIDTH_EDGES[bucket]) bucket++;
  return bucket;
}

function distanceToSegment(px, py, x0, y0, x1, y1) {
  const dx = x1 - x0;
  const dy = y1 - y0;
  const t = Math.max(0, Math.min(1, ((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - (x0 + t * dx), py - (y0 + t * dy));
}

function blockLayoutKey(layout) {
  return layout.map(({ count, unitsPerBlock }) => `${count}/${unitsPerBlock}`).join(",");
}

/**
 * Sums each block pair's weights: per weight layer { sum, sumAbs, sumSquares,
 * nonFinite, sampled, rowStride, layerRms }, each array indexed by block pair.
 * `layout` is per unit layer { count, unitsPerBlock, blocks: [{ first }] }. A
 * layer of more than MAX_STATS_WEIGHTS weights is sampled: every
 * `rowStride`-th source unit of each block, from its first, so the
 * statistics are estimates. Returns { layoutKey, layers }, or the layers
 * alone when `withKey` is false.
 */
export function blockStatistics(weights, layout, withKey = false) {
  const blockOf = (layer, unit) => Math.floor(unit / layout[layer].unitsPerBlock);
  const stats = [];
  for (let l = 0; l + 1 < layout.length; l++) {
    const sourceLayout = layout[l];
    const destinationLayout = layout[l + 1];
    const destinationBlocks = destinationLayout.blocks.length;
    const pairCount = sourceLayout.blocks.length * destinationBlocks;
    const sum = new Float64Array(pairCount);
    const sumAbs = new Float64Array(pairCount);
    const sumSquares = new Float64Array(pairCount);
    const nonFinite = new Uint32Array(pairCount);
    const sampled = new Uint32Array(pairCount); // weights read per pair, finite or not
    const matrix = weights[l]; // (n_l, n_{l+1})
    const destinationCount = destinationLayout.count;
    const destinationBlockOf = new Int32Array(destinationCount);
    for (let j = 0; j < destinationCount; j++) destinationBlockOf[j] = blockOf(l + 1, j);
    let layerSquares = 0;
    let layerFinite = 0;
    const rowStride = Math.max(1, Math.ceil(matrix.length / MAX_STATS_WEIGHTS));
    for (let i = 0; i < sourceLayout.count; i++) {
      const block = blockOf(l, i);
      if ((i - sourceLayout.blocks[block].first) % rowStride !== 0) continue;
      const pairRow = block * destinationBlocks;
      const rowStart = i * destinationCount;
      for (let j = 0; j < destinationCount; j++) {
        const value = matrix[rowStart + j];
        const pair = pairRow + destinationBlockOf[j];
        sampled[pair]++;
        if (!Number.isFinite(value)) {
          nonFinite[pair]++;
          continue;
        }
        sum[pair] += value;
        sumAbs[pair] += Math.abs(value);
        sumSquares[pair] += value * value;
        layerSquares += value * value;
        layerFinite++;
      }
    }
    const layerRms = layerFinite > 0 ? Math.sqrt(layerSquares / layerFinite) : 0;
    stats.push({ sum, sumAbs, sumSquares, nonFinite, sampled, rowStride, layerRms });
  }
  return withKey ? { layoutKey: blockLayoutKey(layout), layers: stats } : stats;
}

export class NetworkSummary {
  constructor() {
    this.layout = null; // per unit layer: grid, origin, blocks
    this.stats = null; // per weight layer: per block pair Σw, Σ|w|, Σw², count, non-finite count
    this.statsTime = -Infinity;
    this.statsCostMs = 0;
    this.statsWeights = null;
    this.lines = []; // per weight layer, per block pair: { x0, y0, x1, y1, kept, total }
  }

  /** Places every layer's grid in a width × height area. */
  place(layerSizes, width, height, inputShape) {
    const layerCount = layerSizes.length;
    const columnGap = (width - 2 * MARGIN_X) / Math.max(1, layerCount - 1);
    const maxGridWidth = Math.max(8, Math.min(MAX_GRID_WIDTH_PX, columnGap * 0.45));
    const maxGridHeight = Math.max(8, height - MARGIN_TOP - MARGIN_BOTTOM);
    this.layout = layerSizes.map((count, layer) => {
      const shape = layer === 0 && Array.isArray(inputShape) && inputShape[0] * inputShape[1] === count ? inputShape : null;
      const grid = chooseGrid(count, maxGridWidth, maxGridHeight, shape);
      const centreX = layerCount === 1 ? width / 2 : MARGIN_X + layer * columnGap;
      const left = centreX - (grid.columns * grid.cell) / 2;
      const top = MARGIN_TOP + (maxGridHeight - grid.rows * grid.cell) / 2;
      const rowsPerBlock = Math.ceil(grid.rows / MAX_BLOCKS);
      const blockCount = Math.ceil(grid.rows / rowsPerBlock);
      const unitsPerBlock = rowsPerBlock * grid.columns;
      const blocks = [];
      for (let block = 0; block < blockCount; block++) {
        const first = block * unitsPerBlock;
        const last = Math.min(count, first + unitsPerBlock) - 1;
        const lastRow = Math.floor(last / grid.columns);
        const centreY = top + ((block * rowsPerBlock + lastRow + 1) / 2) * grid.cell;
        blocks.push({ first, last, size: last - first + 1, centreY });
      }
      return { count, ...grid, left, top, centreX, unitsPerBlock, blocks };
    });
    this.stats = null;
    this.statsWeights = null;
  }

  blockOf(layer, unit) {
    return Math.floor(unit / this.layout[layer].unitsPerBlock);
  }

  /**
   * Sums each block pair's weights; runs at most every STATS_INTERVAL_MS
   * unless the weights array changed (see blockStatistics).
   */
  updateStats(weights, now) {
    const intervalMs = Math.max(STATS_INTERVAL_MS, STATS_COST_FACTOR * this.statsCostMs);
    if (this.stats !== null && this.statsWeights === weights && now - this.statsTime < intervalMs) return;
    this.statsWeights = weights;
    this.statsTime = now;
    this.stats = blockStatistics(weights, this.layout);
    this.statsCostMs = performance.now() - now;
  }

  /** Describes the block layout for blockStatistics in another thread; null before `place`. */
  get blockLayout() {
    if (this.layout === null) return null;
    return this.layout.map(({ count, unitsPerBlock, blocks }) => ({
      count,
      unitsPerBlock,
      blocks: blocks.map(({ first }) => ({ first })),
    }));
  }

  /** Takes statistics computed elsewhere by blockStatistics; ignored when they are of another layout. */
  setStats(stats) {
    if (stats === null || this.layout === null || stats.layoutKey !== blockLayoutKey(this.layout)) return;
    this.stats = stats.layers;
    this.statsWeights = null;
  }

  /** RMS of each weight layer's finite weights, from the last statistics. */
  get layerRms() {
    return this.stats === null ? [] : this.stats.map(({ layerRms }) => layerRms);
  }

  /** Draws the faded line of every block pair; needed only when the layout changes. */
  drawBackground(context) {
    context.globalAlpha = 0.09;
    context.strokeStyle = "rgb(150, 150, 150)";
    context.lineWidth = 1;
    context.beginPath();
    for (let l = 0; l + 1 < this.layout.length; l++) {
      const source = this.layout[l];
      const destination = this.layout[l + 1];
      for (const a of source.blocks) {
        for (const b of destination.blocks) {
          context.moveTo(source.left + source.columns * source.cell + 2, a.centreY);
          context.lineTo(destination.left - 2, b.centreY);
        }
      }
    }
    context.stroke();
    context.globalAlpha = 1;
  }

  /**
   * Draws the block lines and unit squares of the latest step. `kept` is per
   * unit layer a Uint8Array (1 = kept); `weightMasks` the DropConnect masks or null.
   */
  draw(context, { weights, kept, weightMasks, now }) {
    if (weights !== null) this.updateStats(weights, now);
    this.updateLines(kept, weightMasks);
    this.lines.forEach((lines, l) => this.drawBlockLines(context, l, lines));
    this.drawUnits(context, kept);
  }

  /** Places the line of every block pair, with how many of its weights the latest step kept. */
  updateLines(kept, weightMasks) {
    this.lines = [];
    for (let l = 0; l + 1 < this.layout.length; l++) {
      const source = this.layout[l];
      const destination = this.layout[l + 1];
      const pairs = this.keptPairs(l, kept, weightMasks);
      const x0 = source.left + source.columns * source.cell + 2;
      const x1 = destination.left - 2;
      const lines = [];
      source.blocks.forEach((a, sourceBlock) => {
        destination.blocks.forEach((b, destinationBlock) => {
          const keptCount = pairs[sourceBlock * destination.blocks.length + destinationBlock];
          lines.push({ x0, y0: a.centreY, x1, y1: b.centreY, sourceBlock, destinationBlock, kept: keptCount, total: a.size * b.size });
        });
      });
      this.lines.push(lines);
    }
  }

  /** Counts, per block pair, the weights of the latest sub-network. */
  keptPairs(l, kept, weightMasks) {
    const source = this.layout[l];
    const destination = this.layout[l + 1];
    const pairs = new Float64Array(source.blocks.length * destination.blocks.length);
    if (weightMasks !== null) {
      for (let i = 0; i < source.count; i++) {
        const pairRow = this.blockOf(l, i) * destination.blocks.length;
        for (let j = 0; j < destination.count; j++) {
          if (isWeightKept(weightMasks[l], destination.count, i, j)) pairs[pairRow + this.blockOf(l + 1, j)]++;
        }
      }
      return pairs;
    }
    const keptPerBlock = (layer) => this.layout[layer].blocks.map(({ first, last }) => {
      let count = 0;
      for (let unit = first; unit <= last; unit++) count += kept[layer][unit];
      return count;
    });
    const sourceKept = keptPerBlock(l);
    const destinationKept = keptPerBlock(l + 1);
    sourceKept.forEach((a, sourceBlock) => destinationKept.forEach((b, destinationBlock) => {
      pairs[sourceBlock * destination.blocks.length + destinationBlock] = a * b;
    }));
    return pairs;
  }

  /** Draws weight layer `l`'s block `lines` (see updateLines) from the block statistics. */
  drawBlockLines(context, l, lines) {
    const stats = this.stats?.[l] ?? null;
    if (stats === null) return;
    context.lineCap = "round";
    lines.forEach(({ x0, y0, x1, y1, sourceBlock, destinationBlock, kept, total }) => {
      const share = kept / total;
      if (share === 0) return;
      const pair = sourceBlock * this.layout[l + 1].blocks.length + destinationBlock;
      const finite = stats.sampled[pair] - stats.nonFinite[pair];
      const rms = finite > 0 ? Math.sqrt(stats.sumSquares[pair] / finite) : 0;
      context.globalAlpha = 0.12 + 0.8 * share;
      context.lineWidth = SUMMARY_WIDTH_PX[widthBucket(stats.layerRms > 0 ? rms / stats.layerRms : 0)];
      context.strokeStyle = stats.nonFinite[pair] > 0
        ? NON_FINITE_CSS
        : cssColour(stats.sumAbs[pair] > 0 ? stats.sum[pair] / stats.sumAbs[pair] : 0);
      context.beginPath();
      context.moveTo(x0, y0);
      context.lineTo(x1, y1);
      context.stroke();
    });
    context.globalAlpha = 1;
  }

  drawUnits(context, kept) {
    const layerCount = this.layout.length;
    context.font = "600 12px system-ui, sans-serif";
    context.textAlign = "center";
    this.layout.forEach((layer, index) => {
      const gap = layer.cell >= 4 ? 1 : 0;
      const size = Math.max(0.5, layer.cell - gap);
      const keptPath = new Path2D();
      const droppedPath = new Path2D();
      let keptCount = 0;
      for (let unit = 0; unit < layer.count; unit++) {
        const x = layer.left + (unit % layer.columns) * layer.cell;
        const y = layer.top + Math.floor(unit / layer.columns) * layer.cell;
        const isKept = kept[index][unit] === 1;
        keptCount += isKept ? 1 : 0;
        (isKept ? keptPath : droppedPath).rect(x, y, size, size);
      }
      context.fillStyle = index === layerCount - 1 ? OUTPUT_FILL : KEPT_FILL;
      context.fill(keptPath);
      context.fillStyle = "#ffffff";
      context.fill(droppedPath);
      if (size >= 3) {
        context.strokeStyle = DROPPED_STROKE;
        context.lineWidth = 0.6;
        context.stroke(droppedPath);
      }

      context.fillStyle = "#1f2329";
      context.font = "600 12px system-ui, sans-serif";
      context.fillText(`${unitLayerName(index, layerCount)} (${layer.count.toLocaleString("en-US")})`, layer.centreX, MARGIN_TOP - 14);
      context.fillStyle = "#5f6670";
      context.font = "11px system-ui, sans-serif";
      const bottom = layer.top + layer.rows * layer.cell;
      context.fillText(`kept ${keptCount.toLocaleString("en-US")}/${layer.count.toLocaleString("en-US")}`, layer.centreX, bottom + 16);
    });
  }

  /** Returns what is under (x, y): { kind: "unit", layer, unit }, { kind: "block", ... } or null. */
  hitTest(x, y) {
    if (this.layout === null) return null;
    for (let layer = 0; layer < this.layout.length; layer++) {
      const grid = this.layout[layer];
      const column = Math.floor((x - grid.left) / grid.cell);
      const row = Math.floor((y - grid.top) / grid.cell);
      if (column < 0 || column >= grid.columns || row < 0 || row >= grid.rows) continue;
      const unit = row * grid.columns + column;
      if (unit < grid.count) return { kind: "unit", layer, unit };
    }
    let best = null;
    this.lines.forEach((lines, layer) => {
      for (const line of lines) {
        if (x < line.x0 || x > line.x1) continue;
        const distance = distanceToSegment(x, y, line.x0, line.y0, line.x1, line.y1);
        if (distance <= HIT_TOLERANCE_PX && (best === null || distance < best.distance)) best = { distance, layer, line };
      }
    });
    return best === null ? null : { kind: "block", layer: best.layer, ...best.line };
  }

  /** Hover content for a block line from hitTest. */
  describeBlock(hit, layerCount) {
    const source = this.layout[hit.layer].blocks[hit.sourceBlock];
    const destination = this.layout[hit.layer + 1].blocks[hit.destinationBlock];
    const stats = this.stats?.[hit.layer] ?? null;
    const pair = hit.sourceBlock * this.layout[hit.layer + 1].blocks.length + hit.destinationBlock;
    const lines = [`${hit.total.toLocaleString("en-US")} weights`];
    if (stats !== null) {
      const finite = stats.sampled[pair] - stats.nonFinite[pair];
      if (stats.rowStride > 1) lines.push(`statistics estimated from the weights of one source unit in every ${stats.rowStride}`);
      const mean = finite > 0 ? stats.sum[pair] / finite : NaN;
      const rms = finite > 0 ? Math.sqrt(stats.sumSquares[pair] / finite) : NaN;
      lines.push(`mean w = ${mean.toPrecision(3)}, RMS = ${rms.toPrecision(3)}, Σw ÷ Σ|w| = ${(stats.sumAbs[pair] > 0 ? stats.sum[pair] / stats.sumAbs[pair] : 0).toFixed(3)}`);
      if (stats.nonFinite[pair] > 0) {
        lines.push(`${stats.nonFinite[pair]} ${stats.rowStride > 1 ? "sampled " : ""}weights are NaN or ±∞`);
      }
    }
    lines.push(`in the latest sub-network: ${hit.kept.toLocaleString("en-US")} (${((100 * hit.kept) / hit.total).toFixed(1)}%)`);
    lines.push("To follow one weight, click its cell in the weight-update heatmap.");
    return {
      title: `W[${hit.layer}] block: ${unitLayerName(hit.layer, layerCount)} units ${source.first}–${source.last} → ` +
        `${unitLayerName(hit.layer + 1, layerCount)} units ${destination.first}–${destination.last}`,
      lines,
      image: null,
    };
  }
}
