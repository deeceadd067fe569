// The views' parts of the stream worker's updates: copies and summaries of
// its state, and the network view's live layer drawn as a bitmap. Each method
// adds the ArrayBuffers and ImageBitmaps it creates to `transfer`, so posting
// the update moves them instead of copying.

import { weightKeepProbabilities } from "../lessons/keepProbabilities.js";
import { MASK_SCOPE_WEIGHTS } from "../protocol.js";
import { heatmapPicture } from "../render/heatmap.js";
import { drawSubnetworkLinks, keptUnitsOf } from "../render/linkDrawing.js";
import { MAX_DRAWN_LINKS } from "../render/network.js";
import { blockStatistics, NetworkSummary } from "../render/networkSummary.js";
import { summarizeWeightCounts } from "../render/trainingCountsView.js";

/** Returns whether two lists of layer sizes are equal; false when either is null. */
function sameSizes(a, b) {
  return a !== null && b !== null && a.length === b.length && a.every((size, index) => size === b[index]);
}

/** Copies each typed array and adds the copies' buffers to `transfer`. */
function copyArrays(arrays, transfer) {
  return arrays.map((values) => {
    const copy = values.slice();
    transfer.push(copy.buffer);
    return copy;
  });
}

/** Copies the fields of a pinned weight that the pinned view reads, its arrays cut to their used length. */
function pinnedSummary(weight) {
  const { updateSteps } = weight;
  return {
    key: weight.key,
    layer: weight.layer,
    source: weight.source,
    destination: weight.destination,
    index: weight.index,
    pinnedAtStep: weight.pinnedAtStep,
    value: weight.value,
    pointCount: weight.pointCount,
    pointFirstSteps: weight.pointFirstSteps.slice(0, weight.pointCount),
    pointStepCounts: weight.pointStepCounts.slice(0, weight.pointCount),
    pointValues: weight.pointValues.slice(0, weight.pointCount),
    updateSteps: {
      values: updateSteps.values.slice(0, updateSteps.length),
      length: updateSteps.length,
      overflowCount: updateSteps.overflowCount,
    },
    recentUpdates: weight.recentUpdates,
    stepsFollowed: weight.stepsFollowed,
    missedSteps: weight.missedSteps,
  };
}

/** Builds the views' parts of the worker's updates from its Store and LessonState. */
export class ViewPictures {
  constructor(store, lessons) {
    this.store = store;
    this.lessons = lessons;
    this.canvas = null; // OffscreenCanvas of the network view's size
    this.summary = new NetworkSummary(); // lays out and draws the summary view's live layer
    this.summaryPlaceKey = null;
  }

  /** Returns the latest step as the page's views read it: its masks copied, its deltas left out. */
  lastFrame(transfer) {
    const lastFrame = this.store.lastFrame;
    if (lastFrame === null) return null;
    const { frame } = lastFrame;
    const masks = lastFrame.masks.map((mask) => mask.slice());
    for (const mask of masks) transfer.push(mask.buffer);
    return {
      ...lastFrame,
      masks,
      frame: {
        firstStep: frame.firstStep,
        stepCount: frame.stepCount,
        maskScope: frame.maskScope,
        deltaDtype: frame.deltaDtype,
        weightDeltas: frame.weightDeltas.map(() => null),
        biasDeltas: frame.biasDeltas.map(() => null),
      },
    };
  }

  /**
   * Adds what the network view draws. A network small enough to draw link by
   * link also gets a copy of its weights. The bitmap shows the latest step's
   * links or, in the summary view, its block lines and units, which also get
   * their block statistics. `scene` is the view's workerScene, or null before
   * its first layout.
   */
  addNetwork(update, scene, transfer) {
    const weights = this.store.weights;
    if (weights === null) {
      update.networkImage = null;
      return;
    }
    const weightCount = weights.reduce((sum, layer) => sum + layer.length, 0);
    if (weightCount <= MAX_DRAWN_LINKS) {
      update.weights = copyArrays(weights, transfer);
      update.biases = copyArrays(this.store.biases, transfer);
    }

    update.networkImage = null; // unless drawn below: the page must not show older links with this step's units
    if (scene === null || !sameSizes(scene.layerSizes, this.store.layerSizes)) return;
    const canvas = this.networkCanvas(scene);
    if (canvas === null) return;
    const lastFrame = this.store.lastFrame;
    const weightMasks = lastFrame?.frame.maskScope === MASK_SCOPE_WEIGHTS ? lastFrame.masks : null;
    const kept = keptUnitsOf(this.store.layerSizes, lastFrame);
    const context = canvas.getContext("2d");
    let drawn;
    if (scene.kind === "summary") {
      update.summaryStats = blockStatistics(weights, scene.blockLayout, true);
      drawn = this.drawSummary(context, scene, update.summaryStats, kept, weightMasks);
    } else {
      drawn = drawSubnetworkLinks(context, scene, { weights, kept, weightMasks, pinnedKeys: this.lessons.pinned.weights });
    }
    const bitmap = canvas.transferToImageBitmap();
    transfer.push(bitmap);
    update.networkImage = { bitmap, step: lastFrame === null ? null : lastFrame.step, ...drawn };
  }

  /** Returns the worker's canvas at the scene's size in device pixels, or null while the view has no size. */
  networkCanvas(scene) {
    const width = Math.round(scene.cssWidth * scene.pixelRatio);
    const height = Math.round(scene.cssHeight * scene.pixelRatio);
    if (width === 0 || height === 0) return null;
    if (this.canvas === null || this.canvas.width !== width || this.canvas.height !== height) {
      this.canvas = new OffscreenCanvas(width, height);
    }
    return this.canvas;
  }

  /**
   * Draws the summary view's live layer, block lines and unit squares, as the
   * page would (NetworkSummary), so rasterizing it costs this thread.
   */
  drawSummary(context, scene, stats, kept, weightMasks) {
    const placeKey = `${scene.layerSizes}|${scene.cssWidth}x${scene.cssHeight}|${scene.inputShape}`;
    if (this.summaryPlaceKey !== placeKey) {
      this.summary.place(scene.layerSizes, scene.cssWidth, scene.cssHeight, scene.inputShape);
      this.summaryPlaceKey = placeKey;
    }
    this.summary.setStats(stats);
    context.setTransform(scene.pixelRatio, 0, 0, scene.pixelRatio, 0, 0);
    context.clearRect(0, 0, scene.cssWidth, scene.cssHeight);
    this.summary.draw(context, { weights: null, kept, weightMasks, now: performance.now() });
    return { fadedLinkCount: 0, rmsWeights: this.summary.layerRms };
  }

  /** Computes the heatmaps' pixels for the mode, scale and map sizes of `request` (the view's pictureRequest). */
  heatmaps(request, transfer) {
    const history = this.lessons.history;
    const layerSizes = this.store.layerSizes;
    if (request === null || layerSizes === null || request.figures.length !== layerSizes.length - 1) return null;
    if (request.figures.some(({ rows, columns }, l) => rows !== layerSizes[l] || columns !== layerSizes[l + 1])) return null;

    const lastFrame = this.store.lastFrame;
    const frame = lastFrame?.frame ?? null;
    const layers = request.figures.map((figure, l) => {
      const values = history === null ? null : history.values(request.mode, l, lastFrame);
      const picture = heatmapPicture(values, figure, (shownMax) => history.scaleBound(request.mode, l, request.scale, shownMax));
      transfer.push(picture.rgba.buffer);
      return picture;
    });
    return {
      key: request.key,
      step: lastFrame === null ? null : lastFrame.step,
      historyFirstStep: history?.firstStep ?? null,
      frameFirstStep: frame === null ? null : frame.firstStep,
      frameLastStep: frame === null ? null : frame.firstStep + frame.stepCount - 1,
      layers,
    };
  }

  /** Summarizes the training counts as the counts view draws them. */
  counts(transfer) {
    const counts = this.lessons.counts;
    if (counts === null) return null;
    const config = this.store.run?.config ?? {};
    const sizes = counts.layerSizes;
    const keeps = weightKeepProbabilities(config, sizes);
    const weightLayers = counts.trainedCounts.map((trained, l) => {
      const summary = summarizeWeightCounts(trained, sizes[l], sizes[l + 1], counts.sampleCount, keeps[l].probability);
      transfer.push(summary.summary.blockMeans.buffer);
      return summary;
    });
    return {
      sampleCount: counts.sampleCount,
      sampleNoun: counts.sampleNoun,
      stepCount: counts.stepCount,
      firstStep: counts.firstStep,
      nextStep: counts.nextStep,
      missedSteps: counts.missedSteps,
      maskScope: counts.maskScope,
      keptCounts: copyArrays(counts.keptCounts, transfer),
      trainedTotals: Array.from(counts.trainedTotals),
      weightLayers,
    };
  }

  tally() {
    const tally = this.lessons.tally;
    if (tally === null) return null;
    const { sampleCount, distinctCount, repeatCount, saturated } = tally;
    return { sampleCount, distinctCount, repeatCount, saturated };
  }

  /** Summarizes each pinned weight as the pinned view reads it. */
  pinned() {
    return this.lessons.pinned.weights.map(pinnedSummary);
  }
}
