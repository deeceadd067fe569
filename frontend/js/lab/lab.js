// Entry point of lab.html: loads the runs, defaults and data sets, wires the
// two sections, keeps the URL hash in step with what is shown, and exposes
// window.dropvizLab, from which tests read the plotted numbers.
//
// URL hash: #run=<run id>[&evaluation=<job id>][&compare=<id>,<id>,...&vary=<setting>]

import { getDatasets, getDefaults, listRuns } from "../api.js";
import { CompareSection } from "./compare.js";
import { InferenceSection } from "./inference.js";

const HASH_KEYS = ["run", "evaluation", "compare", "vary"];
const byId = (id) => document.getElementById(id);

function readHash() {
  const params = new URLSearchParams(window.location.hash.slice(1));
  return Object.fromEntries(HASH_KEYS.map((key) => [key, params.get(key) || null]));
}

/** Merges `updates` into the hash without adding a history entry; null removes a key. */
function writeHash(updates) {
  const state = { ...readHash(), ...updates };
  const parts = HASH_KEYS.filter((key) => state[key] !== null)
    .map((key) => `${key}=${encodeURIComponent(state[key]).replaceAll("%2C", ",")}`);
  const hash = parts.length > 0 ? `#${parts.join("&")}` : "";
  if (hash !== window.location.hash) history.replaceState(null, "", `${window.location.pathname}${hash}`);
}

function showPageError(message) {
  const box = byId("evaluate-errors");
  box.hidden = false;
  box.textContent = message;
}

async function main() {
  let runs;
  let defaults;
  let datasets;
  try {
    [runs, defaults, datasets] = await Promise.all([listRuns(), getDefaults(), getDatasets()]);
  } catch (error) {
    showPageError(`The lab could not load its data from the server: ${error.message}`);
    return;
  }

  const inference = new InferenceSection({
    onSelection: (runId, jobId) => writeHash({ run: runId, evaluation: jobId }),
  });
  const refreshRuns = async () => {
    try {
      const latest = await listRuns();
      inference.setRuns(latest);
      compare.setRuns(latest);
    } catch (error) {
      console.warn(`dropviz lab: could not reload the runs: ${error.message}`);
    }
  };
  const compare = new CompareSection({
    defaults,
    datasets,
    onRunsChanged: (comparison) => {
      const ids = comparison.runs.map((run) => run.id);
      writeHash({ compare: ids.length > 0 ? ids.join(",") : null, vary: ids.length > 0 ? comparison.setting : null });
      refreshRuns();
    },
    onEvaluateRun: (runId) => {
      inference.selectRun(runId);
      byId("inference-title").scrollIntoView({ behavior: "smooth" });
    },
  });
  inference.setRuns(runs);
  compare.setRuns(runs);

  const applyHash = () => {
    const state = readHash();
    const runId = state.run ?? runs.at(-1)?.id ?? null;
    if (state.run !== null && !inference.runs.has(state.run)) {
      showPageError(`Run ${state.run} was not found on the server; the list shows the runs it has.`);
    } else if (runId !== null && state.evaluation !== null) {
      inference.openEvaluation(runId, state.evaluation);
    } else if (runId !== inference.runId) {
      inference.selectRun(runId);
    }
    if (state.compare !== null && state.vary !== null && compare.comparison.runs.length === 0) {
      compare.restore(state.vary, state.compare.split(","));
    }
  };
  applyHash();
  window.addEventListener("hashchange", async () => {
    await refreshRuns();
    applyHash();
  });
  byId("button-refresh-runs").addEventListener("click", refreshRuns);

  // one redraw per animation frame, whatever number of canvases changed size
  let redrawRequested = false;
  const observer = new ResizeObserver(() => {
    if (redrawRequested) return;
    redrawRequested = true;
    requestAnimationFrame(() => {
      redrawRequested = false;
      inference.redraw();
      compare.redraw();
    });
  });
  for (const canvas of document.querySelectorAll("canvas")) observer.observe(canvas);

  window.dropvizLab = {
    get inference() {
      return inference.snapshot();
    },
    get compare() {
      return compare.snapshot();
    },
    /** Sets how long an evaluation POST waits before the server replies 202; 0 always polls. */
    setWaitSeconds(seconds) {
      inference.waitSeconds = seconds;
    },
    ready: true,
  };
}

main();
