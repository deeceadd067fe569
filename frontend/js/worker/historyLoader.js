// Recorded steps from before the page connected to a run, read from the
// server's step history and passed to the stream worker. With them, the
// training counts, the sub-network meter and the batch-loss chart cover every
// step of a run opened mid-way or after it finished.

import * as api from "../api.js";
import { decodeWindow } from "../replay/stepWindows.js";

const HISTORY_WINDOW_STEPS = 4096; // the server's maximum per request
// The server records steps a moment after it streams them, so the last steps
// before a snapshot may not be readable yet: a 404 is retried a few times.
const NOT_RECORDED_RETRIES = 10;
const NOT_RECORDED_WAIT_MS = 300;

/**
 * Reads steps 0 to `endStep` − 1 of run `runId` in windows and posts each to
 * `worker` as a "history" message of `generation`. Stops when `isCurrent()`
 * turns false (the page moved to another run) or a request fails.
 */
export async function loadHistory(worker, runId, generation, endStep, isCurrent) {
  let first = 0;
  let retries = 0;
  while (first < endStep && isCurrent()) {
    let range;
    try {
      range = await api.getStepRange(runId, first, Math.min(HISTORY_WINDOW_STEPS, endStep - first));
    } catch (error) {
      if (error.status === 404 && retries < NOT_RECORDED_RETRIES) {
        retries++;
        await new Promise((resolve) => setTimeout(resolve, NOT_RECORDED_WAIT_MS));
        continue;
      }
      console.error(`dropviz: reading the recorded steps of run ${runId} from step ${first} failed: ${error.message}`);
      return;
    }
    const window = decodeWindow(range);
    if (window.stepCount === 0 || !isCurrent()) return;
    worker.postMessage({ type: "history", generation, window });
    first += window.stepCount;
  }
}
