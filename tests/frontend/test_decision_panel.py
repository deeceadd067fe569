"""Browser tests of the input-plane panel for 2-D data sets.

The decision regions the page paints are checked against predictions the test
requests itself from `POST /api/runs/{id}/predict`, and the drawn examples
against the run's splits from `GET /api/runs/{id}/data`. The panel must stay
hidden for data with more than two features. Screenshots go to
tests/frontend/artifacts/ for a person to look at.
"""

from __future__ import annotations

import io
import re

import httpx
import numpy as np
import pytest
from playwright import sync_api

from tests.conftest import LiveServer
from tests.frontend.pages import (
    ARTIFACTS,
    TIMEOUT_MS,
    VIEWPORTS,
    boxes_overlap,
    create_full_speed_run,
    save_screenshots,
)

pytestmark = pytest.mark.browser

HIDDEN_SIZES = [8, 6]
STEPS = 3
CHECKED_POINTS_PER_CLASS = 4
CONFIDENT = 0.75  # a checked grid point's largest class probability at least


def _step(page: sync_api.Page, times: int) -> None:
    for step in range(1, times + 1):
        page.click("#button-step")
        page.wait_for_function(
            "(step) => document.querySelector('#counter-step').dataset.value === step",
            arg=str(step),
            timeout=TIMEOUT_MS,
        )


def _rgb(css: str) -> np.ndarray:
    values = re.findall(r"[\d.]+", css)
    return np.asarray([float(value) for value in values[:3]])


def _confident_inner_points(
    probabilities: np.ndarray, size: int
) -> list[tuple[int, int, int]]:
    """Return (row, column, class) of grid points that are far from any boundary.

    A point qualifies when its largest probability is at least CONFIDENT and
    its eight neighbours predict the same class, so the smoothed image has
    that class's colour at its centre. Up to CHECKED_POINTS_PER_CLASS spread
    points are taken per class.
    """
    predicted = probabilities.argmax(axis=1).reshape(size, size)
    confidence = probabilities.max(axis=1).reshape(size, size)
    chosen = []
    for label in range(probabilities.shape[1]):
        candidates = [
            (row, column)
            for row in range(1, size - 1)
            for column in range(1, size - 1)
            if predicted[row, column] == label
            and confidence[row, column] >= CONFIDENT
            and np.all(predicted[row - 1 : row + 2, column - 1 : column + 2] == label)
        ]
        if not candidates:
            continue
        picks = np.linspace(0, len(candidates) - 1, CHECKED_POINTS_PER_CLASS)
        chosen += [(*candidates[int(pick)], label) for pick in picks]
    return chosen


def _region_pixels(
    page: sync_api.Page, points: list[tuple[int, int, int]], size: int
) -> np.ndarray:
    """Return the regions canvas's RGB at the centre of each grid point's cell.

    The predict reply's rows run from the smallest y up, and the canvas's top
    row is the largest y.
    """
    centres = [
        [(column + 0.5) / size, (size - 1 - row + 0.5) / size]
        for row, column, _ in points
    ]
    pixels = page.evaluate(
        """(centres) => {
            const canvas = document.querySelector("#plane-regions");
            const context = canvas.getContext("2d");
            return centres.map(([x, y]) => Array.from(context.getImageData(
                Math.floor(x * canvas.width), Math.floor(y * canvas.height), 1, 1,
            ).data));
        }""",
        centres,
    )
    return np.asarray(pixels, dtype=float)[:, :3]


def _nearest_class(pixel: np.ndarray, class_colours: list[np.ndarray]) -> int:
    """Return the class whose colour, mixed with white, gives the pixel.

    That class's colour lies in the same direction from white as the pixel.
    """
    direction = pixel - 255.0
    similarities = [
        float(direction @ (colour - 255.0))
        / (np.linalg.norm(direction) * np.linalg.norm(colour - 255.0))
        for colour in class_colours
    ]
    return int(np.argmax(similarities))


def _box(page: sync_api.Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not displayed"
    return {key: box[key] for key in ("x", "y", "width", "height")}


def _save_panel_screenshots(page: sync_api.Page, name: str) -> None:
    """Save the whole page and the panel alone at each of VIEWPORTS.

    At each size the map and the thumbnails must sit side by side without overlap.
    """
    save_screenshots(page, f"{name}-page")
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function(
            """() => {
                const canvas = document.querySelector("#plane-regions");
                return canvas.width
                    === Math.round(canvas.clientWidth * devicePixelRatio);
            }""",
            timeout=TIMEOUT_MS,
        )
        map_box = _box(page, "#plane-map")
        units_box = _box(page, ".plane-units-column")
        assert not boxes_overlap(map_box, units_box)
        page.locator("#plane-panel").screenshot(
            path=ARTIFACTS / f"{name}-panel-{width}x{height}.png"
        )


def test_plane_regions_match_predict(page: sync_api.Page, server: LiveServer) -> None:
    run_id = create_full_speed_run(
        page,
        {"#field-hidden-sizes": ",".join(map(str, HIDDEN_SIZES))},
        {"#field-dataset": "moons"},
    )
    sync_api.expect(page.locator("#plane-panel")).to_be_visible(timeout=TIMEOUT_MS)
    _step(page, STEPS)
    plane_map = page.locator("#plane-map")
    sync_api.expect(plane_map).to_have_attribute("data-step", str(STEPS))
    size = int(plane_map.get_attribute("data-grid") or "0")
    assert size >= 4

    body = {"grid": size, "k": 1, "seed": 0, "subnetworks": 0}
    reply = httpx.post(
        f"{server.base_url}/api/runs/{run_id}/predict", json=body, timeout=30.0
    ).json()
    assert reply["step"] == STEPS  # the run is paused between steps
    probabilities = np.asarray(reply["weight_scaling"])
    points = _confident_inner_points(probabilities, size)
    assert len({label for _, _, label in points}) == 2, "both classes are checked"

    swatches = page.locator("#plane-legend .swatch-class")
    class_colours = [
        _rgb(swatches.nth(index).evaluate("(e) => getComputedStyle(e).backgroundColor"))
        for index in range(swatches.count())
    ]
    assert len(class_colours) == 2
    pixels = _region_pixels(page, points, size)
    for (row, column, label), pixel in zip(points, pixels, strict=True):
        assert _nearest_class(pixel, class_colours) == label, (row, column, pixel)

    thumbnails = page.locator("#plane-units .unit-thumbnail")
    assert thumbnails.count() == sum(HIDDEN_SIZES)
    for layer, units in enumerate(HIDDEN_SIZES, start=1):
        selector = f'#plane-units .unit-thumbnail[data-layer="{layer}"]'
        assert page.locator(selector).count() == units

    data = httpx.get(f"{server.base_url}/api/runs/{run_id}/data", timeout=30.0)
    with np.load(io.BytesIO(data.content)) as arrays:
        train_size = len(arrays["y_train"])
        test_size = len(arrays["y_test"])
    drawn = page.locator("#plane-points")
    sync_api.expect(drawn).to_have_attribute("data-train-points", str(train_size))
    sync_api.expect(drawn).to_have_attribute("data-test-points", str(test_size))
    _save_panel_screenshots(page, "plane")


def test_plane_panel_hidden_for_digits(page: sync_api.Page) -> None:
    create_full_speed_run(
        page,
        {"#field-hidden-sizes": "16"},
        {"#field-dataset": "moons"},
    )
    sync_api.expect(page.locator("#plane-panel")).to_be_visible(timeout=TIMEOUT_MS)
    create_full_speed_run(
        page,
        {"#field-hidden-sizes": "16"},
        {"#field-dataset": "digits"},
    )
    sync_api.expect(page.locator("#plane-panel")).to_be_hidden(timeout=TIMEOUT_MS)
    assert page.locator("#plane-units .unit-thumbnail").count() == 0
