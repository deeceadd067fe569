"""Browser test of the page's training counts, `frontend/js/lessons/trainingCounts.js`.

The counts are kept 32 samples at a time with bit operations. Here random
masks, packed as the stream packs them, go through `TrainingCounts.addFrame`
in Chromium in frames of uneven sizes, and every count is compared with
numpy's count of the same masks, sample by sample.
"""

from __future__ import annotations

import numpy as np
import pytest
from playwright import sync_api

pytestmark = pytest.mark.browser

LAYER_SIZES = [37, 45, 29, 10]
KEEP = [0.8, 0.5, 0.3]  # per masked unit layer
FRAME_STEPS = [1, 31, 32, 33, 70, 5]  # crosses the 32-sample batches unevenly

COUNT_FRAMES = """async ([frames, layerSizes, maskScope]) => {
    const { TrainingCounts } = await import("./js/lessons/trainingCounts.js");
    const counts = new TrainingCounts(layerSizes);
    let firstStep = 0;
    for (const { rows, masks } of frames) {
        counts.addFrame({
            maskScope,
            firstStep,
            stepCount: rows.length,
            maskRows: Uint32Array.from(rows),
            masks: masks.map((step) => step.map((block) => Uint8Array.from(block))),
        });
        firstStep += rows.length;
    }
    return {
        kept: counts.keptCounts.map((values) => Array.from(values)),
        trained: counts.trainedCounts.map((values) => Array.from(values)),
        totals: Array.from(counts.trainedTotals),
        samples: counts.sampleCount,
    };
}"""


def _random_frames(
    rng: np.random.Generator, rows_per_step: int
) -> tuple[list[dict[str, object]], list[list[np.ndarray]]]:
    """Return frames for the page and every sample's (n_l,) bool masks."""
    frames = []
    samples = []
    for step_count in FRAME_STEPS:
        rows = []
        masks = []
        for _ in range(step_count):
            row_count = int(rng.integers(1, rows_per_step + 1))
            step_masks = [
                rng.random((row_count, size)) < keep
                for size, keep in zip(LAYER_SIZES[:-1], KEEP, strict=True)
            ]
            rows.append(row_count)
            masks.append(
                [
                    np.packbits(mask, axis=1, bitorder="little").ravel().tolist()
                    for mask in step_masks
                ]
            )
            samples.extend(
                [mask[row] for mask in step_masks] for row in range(row_count)
            )
        frames.append({"rows": rows, "masks": masks})
    return frames, samples


@pytest.mark.parametrize(("mask_scope", "rows_per_step"), [(0, 1), (1, 3)])
def test_batched_counts_match_numpy(
    page: sync_api.Page,
    mask_scope: int,
    rows_per_step: int,
) -> None:
    frames, samples = _random_frames(
        np.random.default_rng(rows_per_step), rows_per_step
    )
    result = page.evaluate(COUNT_FRAMES, [frames, LAYER_SIZES, mask_scope])

    assert result["samples"] == len(samples)
    output_layer = len(LAYER_SIZES) - 1
    for layer in range(output_layer):
        kept = np.sum([sample[layer] for sample in samples], axis=0)
        np.testing.assert_array_equal(result["kept"][layer], kept, f"units {layer}")

        # a weight trains when its source is kept and its destination is kept
        # or an output unit
        destinations = [
            sample[layer + 1]
            if layer + 1 < output_layer
            else np.ones(LAYER_SIZES[-1], bool)
            for sample in samples
        ]
        trained = np.sum(
            [
                np.outer(sample[layer], destination)
                for sample, destination in zip(samples, destinations, strict=True)
            ],
            axis=0,
        )
        np.testing.assert_array_equal(
            result["trained"][layer], trained.ravel(), f"weights {layer}"
        )
        assert result["totals"][layer] == trained.sum(), f"total of W[{layer}]"
