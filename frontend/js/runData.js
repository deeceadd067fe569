// A run's train and test splits, read from `GET /api/runs/{id}/data` once per
// run and kept for the page's lifetime. Large data sets are not downloaded:
// MNIST's splits are about 220 MB, far more than the lab's gallery of 24
// images or the dashboard's map of a 2-D data set needs.

import { getRunData } from "./api.js";
import { readNpz } from "./npz.js";

export const MAX_DATA_BYTES = 16 * 1024 * 1024;
const BYTES_PER_FEATURE = 4; // float32
const BYTES_PER_EXAMPLE_OVERHEAD = 16; // int64 label and int64 source index

const cache = new Map(); // run id -> Promise of the loaded splits

/** Returns the estimated `.npz` size of a run's data in bytes. */
export function estimateDataBytes(run) {
  const examples = run.train_size + run.test_size;
  return examples * (run.layer_sizes[0] * BYTES_PER_FEATURE + BYTES_PER_EXAMPLE_OVERHEAD);
}

/**
 * Returns { splits, classNames } where splits.test and splits.train are
 * { features: Float32Array (n, n_features) row-major, featureCount, labels },
 * or { skipped: reason } when the data is larger than MAX_DATA_BYTES.
 */
export function loadRunData(run) {
  const bytes = estimateDataBytes(run);
  if (bytes > MAX_DATA_BYTES) {
    const megabytes = (bytes / 1024 / 1024).toFixed(0);
    return Promise.resolve({
      skipped: `the run's data is about ${megabytes} MB and this page downloads at most `
        + `${MAX_DATA_BYTES / 1024 / 1024} MB`,
    });
  }
  if (!cache.has(run.id)) {
    const loading = getRunData(run.id).then(readNpz).then((arrays) => {
      const split = (name) => ({
        features: arrays[`x_${name}`].data,
        featureCount: arrays[`x_${name}`].shape[1],
        labels: arrays[`y_${name}`].data,
      });
      return { splits: { train: split("train"), test: split("test") }, classNames: arrays.class_names?.data ?? null };
    });
    // a failed download may succeed later, so it is not cached
    loading.catch(() => cache.delete(run.id));
    cache.set(run.id, loading);
  }
  return cache.get(run.id);
}
