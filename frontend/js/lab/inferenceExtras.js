// The result views that need more than the evaluation result: the gallery of
// examples (the run's data for images, the prediction endpoint for single
// sub-networks) and, for 2-D runs, the decision maps (the prediction endpoint).

import { classLegendItems, isTwoDimensional } from "../render/decisionMap.js";
import { loadRunData } from "../runData.js";
import { countExamples, renderGallery } from "./gallery.js";
import {
  drawDecisionMaps, fetchMapPredictions, fetchSubnetworkClasses, GALLERY_SUBNETWORKS, MAP_RESOLUTION,
  mapK, PREDICT_PATH, predictionEndpointOffered,
} from "./predictions.js";

const DEFAULT_MAP_K = 50; // sub-networks of the MC map when the evaluation was not MC

const byId = (id) => document.getElementById(id);

/** Returns the MC size and seed of the maps; the gallery's sub-networks use only the seed. */
function mcSettings(result) {
  return result.mc ? { k: result.mc.ks[result.mc.ks.length - 1], seed: result.mc.seed } : { k: DEFAULT_MAP_K, seed: 0 };
}

export class ExtraViews {
  constructor() {
    this.token = 0; // replies for an older result are dropped
    this.run = null;
    this.result = null;
    this.loaded = null;
    this.shownIndices = [];
    this.subnetworks = null;
    this.maps = null;
    byId("gallery-filter").addEventListener("change", () => this.updateGallery(this.token));
  }

  clear() {
    this.token += 1;
    this.run = null;
    this.result = null;
    this.loaded = null;
    this.shownIndices = [];
    this.subnetworks = null;
    this.maps = null;
    byId("gallery-panel").hidden = true;
    byId("maps-panel").hidden = true;
  }

  /** Shows the gallery and, for a 2-D run, the maps of `result`. */
  async show(run, result) {
    this.clear();
    const token = this.token;
    this.run = run;
    this.result = result;
    byId("gallery-panel").hidden = false;
    byId("gallery").replaceChildren();
    byId("gallery-count").textContent = "loading the run's data…";
    try {
      this.loaded = await loadRunData(run);
    } catch (error) {
      this.loaded = { skipped: `the data could not be loaded (${error.message})` };
    }
    if (token !== this.token) return;
    await Promise.all([this.updateGallery(token), this.updateMaps(token)]);
  }

  async updateGallery(token) {
    if (this.result === null || this.loaded === null) return;
    const { run, result, loaded } = this;
    const data = loaded.skipped
      ? null
      : { ...loaded.splits[result.split], inputShape: run.input_shape };
    const filter = byId("gallery-filter").value;
    const draw = () => {
      this.shownIndices = renderGallery(byId("gallery"), {
        result, data, classNames: loaded.classNames ?? null, filter, subnetworks: this.subnetworks,
      });
    };
    this.subnetworks = null;
    draw();
    const counts = countExamples(result);
    byId("gallery-subtitle").textContent = `${result.n_examples} ${result.split} examples`;
    byId("gallery-count").textContent = `${this.shownIndices.length} shown; the rules disagree on ${counts.disagree}, `
      + `weight scaling gets ${counts.wrong} wrong`;

    const offered = await predictionEndpointOffered();
    if (token !== this.token) return;
    const source = this.subnetworkSource(data, filter);
    byId("gallery-honesty").textContent = this.describeGallery(result, loaded, offered, source !== null);
    if (!offered || source === null || this.shownIndices.length === 0) return;
    try {
      const classes = await fetchSubnetworkClasses(run.id, this.shownIndices, source, mcSettings(result).seed);
      if (token !== this.token || filter !== byId("gallery-filter").value) return;
      this.subnetworks = classes;
      draw();
    } catch (error) {
      byId("gallery-honesty").textContent += ` Single sub-networks could not be loaded: ${error.message}`;
    }
  }

  /**
   * Returns the prediction request's source for the shown examples: their
   * feature rows when the data is loaded. Without the data, only the split's
   * first examples can be named, so the source is { split, count } when those
   * are shown and null otherwise.
   */
  subnetworkSource(data, filter) {
    if (data !== null) {
      const rows = this.shownIndices.map((index) =>
        Array.from(data.features.subarray(index * data.featureCount, (index + 1) * data.featureCount)));
      return { points: rows };
    }
    return filter === "all" ? { split: this.result.split, count: this.shownIndices.length } : null;
  }

  describeGallery(result, loaded, offered, sourceAvailable) {
    let text = "Each card shows the true label and each rule's predicted class with its confidence, the "
      + "probability the rule gives that class. These are the ensemble rules' predictions: the evaluation "
      + "API returns no predictions of single sub-networks.";
    if (result.mc) {
      text += ` The MC rows are one repeat's ensemble of k = ${result.mc.ks[result.mc.ks.length - 1]} sub-networks.`;
    }
    if (loaded.skipped) text += ` Images are not shown: ${loaded.skipped}.`;
    if (!offered) {
      text += ` Single sub-networks' predictions need ${PREDICT_PATH}, which this server does not offer.`;
    } else if (!sourceAvailable) {
      text += " Single sub-networks' predictions of examples other than the first need the run's data.";
    } else {
      text += " The last line of a card gives the class predicted by the sub-network of the last training step, "
        + `when the run trained one per step, and by ${GALLERY_SUBNETWORKS} freshly sampled sub-networks`
        + `${result.mc ? ", which are not the ones MC averaged" : ""} (from ${PREDICT_PATH}).`;
    }
    return text;
  }

  async updateMaps(token) {
    const { run, result, loaded } = this;
    byId("maps-panel").hidden = !isTwoDimensional(run);
    if (!isTwoDimensional(run)) return;
    const status = byId("maps-status");
    byId("maps").hidden = true;
    byId("maps-legend").hidden = true;

    const offered = await predictionEndpointOffered();
    if (token !== this.token) return;
    if (!offered) {
      status.textContent = "Decision maps need predictions on a grid of points, from "
        + `${PREDICT_PATH}, which this server does not offer; they appear here once it does.`;
      return;
    }

    const requested = mcSettings(result);
    const k = mapK(requested.k);
    status.textContent = `Computing predictions on a ${MAP_RESOLUTION} × ${MAP_RESOLUTION} grid…`;
    let reply;
    try {
      reply = await fetchMapPredictions(run.id, k, requested.seed);
    } catch (error) {
      if (token === this.token) status.textContent = `Decision maps could not be computed: ${error.message}`;
      return;
    }
    if (token !== this.token) return;

    const test = loaded.skipped ? null : loaded.splits.test;
    this.maps = { reply, points: test && { features: test.features, labels: test.labels }, k };
    this.describeMaps(k, requested, test !== null);
    byId("maps").hidden = false;
    this.renderMapLegend(reply.weight_scaling[0].length, loaded.classNames ?? null);
    this.redraw();
  }

  describeMaps(k, requested, withDots) {
    byId("maps-subtitle").textContent = `MC with k = ${k}, seed ${requested.seed}`
      + (k < requested.k ? ` (the evaluation's k = ${requested.k} passes the server's work limit for a grid)` : "");
    byId("map-mc-caption").textContent = `MC, arithmetic mean of k = ${k}: predicted class`;
    byId("maps-status").textContent = `A ${MAP_RESOLUTION} × ${MAP_RESOLUTION} grid over the run's data in the `
      + "network's standardized input space. Colour is the predicted class, paler where its probability is "
      + "lower. The uncertainty map is white where MC is certain and dark where its average spreads over the "
      + `classes.${withDots ? " Dots are the test examples, coloured by their true class." : ""}`;
  }

  renderMapLegend(classCount, classNames) {
    const legend = byId("maps-legend");
    const items = classLegendItems(classCount, classNames, "swatch-box");
    const scale = document.createElement("span");
    scale.className = "legend-item";
    const gradient = document.createElement("span");
    gradient.className = "swatch-gradient";
    scale.append("uncertainty 0, certain", gradient, "1, uniform over the classes");
    items.push(scale);
    legend.replaceChildren(...items);
    legend.hidden = false;
  }

  redraw() {
    if (this.maps === null || byId("maps").hidden) return;
    drawDecisionMaps(
      { weightScaling: byId("map-weight-scaling"), mc: byId("map-mc"), uncertainty: byId("map-uncertainty") },
      this.maps.reply,
      this.maps.points,
    );
  }

  snapshot() {
    return {
      gallery: { shownIndices: [...this.shownIndices], subnetworks: this.subnetworks !== null },
      maps: this.maps === null ? null : { k: this.maps.k, columns: this.maps.reply.grid.x.length },
    };
  }
}
