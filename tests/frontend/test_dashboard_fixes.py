"""Browser tests of dashboard fixes: heatmap boxes for non-square layers and
their modes, a run the server forgot, narrow windows, NaN weights and
divergence, and the data set form.

The server here has a small MNIST-shaped IDX folder and no fashion-mnist
folder, so one IDX set is available and one is not. Screenshots go to
tests/frontend/artifacts/ for a person to look at.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright import sync_api

from dropviz.streaming.frames import (
    FRAME_SNAPSHOT,
    FRAME_STEPS,
    decode_snapshot,
    decode_steps,
    frame_type,
)
from tests.conftest import LiveServer, start_server, stop_server
from tests.frontend.pages import (
    ARTIFACTS,
    TIMEOUT_MS,
    VIEWPORTS,
    PageErrors,
    boxes_overlap,
    collect_binary_frames,
    create_run,
    open_dashboard,
    wait_for_frames,
)
from tests.idx_files import write_mnist_folder

pytestmark = pytest.mark.browser

MAX_ASPECT = 4  # frontend/js/render/matrixLayout.js
NARROW_VIEWPORT = {"width": 760, "height": 1000}
NARROW_PANELS = [
    ".sidebar",
    ".counters",
    ".network-panel",
    ".charts-panel",
    ".heatmap-panel",
    ".pinned-panel",
    ".meter-panel",
    ".counts-panel",
]
CSV_TEXT = "sepal,petal,width,species\n" + "".join(
    f"{1 + k % 7},{2 + k % 5},{k % 3},{'a' if k % 2 else 'b'}\n" for k in range(40)
)


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment that gives the server an MNIST-shaped IDX set, no fashion-mnist."""
    data_dir = tmp_path_factory.mktemp("fixes-data")
    write_mnist_folder(data_dir / "mnist", n_train=120, n_test=40, compress=True)
    return {"DROPVIZ_DATA_DIR": str(data_dir)}


def _take_steps(page: sync_api.Page, count: int) -> None:
    """Press Step `count` times, each time waiting for the page to draw the step."""
    for step in range(count):
        page.click("#button-step")
        page.wait_for_function(
            "(step) => document.querySelector('#heatmaps').dataset.step == step",
            arg=step,
            timeout=TIMEOUT_MS,
        )


def _canvas_pixels(page: sync_api.Page, selector: str) -> np.ndarray:
    """Return the canvas's pixels as a (height, width, 4) uint8 array."""
    height, width, data = page.evaluate(
        """(selector) => {
            const canvas = document.querySelector(selector);
            const context = canvas.getContext("2d");
            const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
            return [canvas.height, canvas.width, Array.from(pixels)];
        }""",
        selector,
    )
    return np.asarray(data, dtype=np.uint8).reshape(height, width, 4)


def test_heatmaps_fit_non_square_layers(page: sync_api.Page) -> None:
    """moons with one hidden layer of 128: W[0] is 2×128 and W[1] is 128×2."""
    create_run(page, {"#field-hidden-sizes": "128"}, {"#field-dataset": "moons"})
    _take_steps(page, 3)

    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)
        panel = page.locator(".heatmap-panel").bounding_box()
        assert panel is not None
        for layer, (rows, columns) in enumerate([(2, 128), (128, 2)]):
            box = page.locator(f".heatmap[data-layer='{layer}'] canvas").bounding_box()
            figure = page.locator(f".heatmap[data-layer='{layer}']").bounding_box()
            assert box is not None and figure is not None
            case = f"W[{layer}] at {width}x{height}"
            assert figure["x"] + figure["width"] <= panel["x"] + panel["width"], case
            assert box["height"] <= 300, case
            assert (
                max(box["width"] / box["height"], box["height"] / box["width"])
                <= MAX_ASPECT + 0.1
            ), case
            assert box["width"] / columns >= 1, f"{case}: cells narrower than 1 px"
            assert box["height"] / rows >= 1, f"{case}: cells lower than 1 px"
        assert page.evaluate("document.documentElement.scrollWidth") <= width

    # the other modes and scales name themselves in the caption and legend
    page.set_viewport_size({"width": 1280, "height": 800})
    figure = page.locator(".heatmap[data-layer='0']")
    for mode, caption, note in [
        ("trail", "trail of ΔW[0]", "2^(−1/20)"),
        ("cumulative", "Σ|ΔW|[0]", "Never changed (grey)"),
        ("delta", "ΔW[0]", "Exactly 0 (grey)"),
    ]:
        page.select_option("#heatmap-mode", mode)
        page.select_option("#heatmap-scale", "recent")
        sync_api.expect(figure.locator("figcaption")).to_contain_text(caption)
        sync_api.expect(figure.locator(".heatmap-zero")).to_contain_text(note)
        sync_api.expect(figure.locator(".heatmap-zero")).to_contain_text(
            "last 200 steps"
        )
    page.select_option("#heatmap-mode", "trail")
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(300)
        page.locator(".heatmap-panel").screenshot(
            path=ARTIFACTS / f"fixes-heatmaps-moons-{width}x{height}.png"
        )


def test_forgotten_run_shows_not_found(
    browser: sync_api.Browser,
    page_errors: PageErrors,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A server restarted without its state folder has forgotten the page's run.

    start_server keeps each server's state beside its log, so the second
    server, logging to another folder, starts empty on the same port.
    """
    first = start_server(tmp_path_factory.mktemp("first-server") / "server.log")
    port = int(first.base_url.rsplit(":", 1)[1])
    page = open_dashboard(browser, page_errors, first.base_url)
    try:
        create_run(page, {}, {"#field-dataset": "digits"})
        sync_api.expect(page.locator("#button-start")).to_be_enabled()
        stop_server(first)
        second = start_server(
            tmp_path_factory.mktemp("second-server") / "server.log", port=port
        )
        try:
            sync_api.expect(page.locator("#connection")).to_have_text(
                "run not found on the server", timeout=TIMEOUT_MS
            )
            sync_api.expect(page.locator("#counter-status")).to_have_text("not found")
            sync_api.expect(page.locator("#counter-status-detail")).to_contain_text(
                "another state folder"
            )
            for button in [
                "#button-start",
                "#button-pause",
                "#button-step",
                "#button-stop",
            ]:
                sync_api.expect(page.locator(button)).to_be_disabled()
            ARTIFACTS.mkdir(exist_ok=True)
            page.locator(".counters").screenshot(
                path=ARTIFACTS / "fixes-run-not-found.png"
            )
        finally:
            stop_server(second)
    finally:
        # reconnecting to a stopped server logs console errors, which are no page
        # errors, so the page_errors fixture still expects none
        page.context.close()


def test_narrow_window_stacks_panels(
    browser: sync_api.Browser, server: LiveServer, page_errors: PageErrors
) -> None:
    page = open_dashboard(browser, page_errors, server.base_url, NARROW_VIEWPORT)
    create_run(page, {}, {"#field-dataset": "digits"})
    _take_steps(page, 2)

    boxes = {}
    for selector in NARROW_PANELS:
        box = page.locator(selector).bounding_box()
        assert box is not None, f"{selector} is not displayed"
        assert box["width"] >= 0.9 * NARROW_VIEWPORT["width"] - 40, (
            f"{selector} is not full width"
        )
        assert box["x"] + box["width"] <= NARROW_VIEWPORT["width"] + 0.5, (
            f"{selector} leaves the window"
        )
        boxes[selector] = box
    for index, first in enumerate(NARROW_PANELS):
        for second in NARROW_PANELS[index + 1 :]:
            assert not boxes_overlap(boxes[first], boxes[second]), (
                f"{first} overlaps {second}"
            )
    assert (
        page.evaluate("document.documentElement.scrollWidth")
        <= NARROW_VIEWPORT["width"]
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "fixes-narrow-760.png", full_page=True)
    page.context.close()


def test_diverged_run_marks_nan(
    browser: sync_api.Browser, server: LiveServer, page_errors: PageErrors
) -> None:
    """digits with learning rate 10 diverges within a few steps, its weights NaN."""
    page = open_dashboard(
        browser, page_errors, server.base_url, {"width": 1400, "height": 900}
    )
    frames = collect_binary_frames(page)
    page.select_option("#field-speed", "")
    create_run(page, {"#field-learning-rate": "10"}, {"#field-dataset": "digits"})
    page.click("#button-start")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "diverged", timeout=TIMEOUT_MS
    )

    detail = page.locator("#counter-status-detail")
    sync_api.expect(detail).to_contain_text("at step")
    assert detail.evaluate("(element) => element.scrollWidth <= element.clientWidth"), (
        "detail is cut off"
    )
    sync_api.expect(page.locator(".network-legend")).to_contain_text("NaN")

    # the last frame's NaN deltas are purple in the heatmap, and only they are
    run_id = page.locator("#counter-run").get_attribute("title")
    run = httpx.get(f"{server.base_url}/api/runs/{run_id}", timeout=30.0).json()
    wait_for_frames(page, frames, run["step"] - 1)
    snapshot = decode_snapshot(
        next(f for f in frames if frame_type(f) == FRAME_SNAPSHOT)
    )
    layer_sizes = snapshot.meta["layer_sizes"]
    last = decode_steps(
        [f for f in frames if frame_type(f) == FRAME_STEPS][-1], layer_sizes
    )
    # the views draw at their own pace, so wait until both show the last step
    page.wait_for_function(
        """(step) => document.querySelector("#heatmaps").dataset.step === String(step)
            && document.querySelector("#network svg").dataset.step === String(step)""",
        arg=last.last_step,
        timeout=TIMEOUT_MS,
    )
    purple = page.evaluate(
        "import('./js/render/palette.js').then((palette) => palette.NON_FINITE_RGB)"
    )
    nan_cells = 0
    for layer in range(len(layer_sizes) - 1):
        deltas = last.weight_deltas[layer]
        assert deltas is not None
        pixels = _canvas_pixels(page, f".heatmap[data-layer='{layer}'] canvas")
        drawn_purple = np.all(
            pixels[:, :, :3] == np.asarray(purple, dtype=np.uint8), axis=2
        )
        np.testing.assert_array_equal(
            drawn_purple, ~np.isfinite(deltas), err_msg=f"W[{layer}]"
        )
        nan_cells += int(np.count_nonzero(~np.isfinite(deltas)))
    assert nan_cells > 0

    # the network draws NaN weights in purple too, never in the w < 0 orange
    purplish = page.evaluate(
        """() => {
            const canvas = document.querySelector("#network canvas:nth-of-type(2)");
            const context = canvas.getContext("2d");
            const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let count = 0;
            for (let offset = 0; offset < pixels.length; offset += 4) {
                const [red, green, blue] = pixels.subarray(offset, offset + 3);
                if (red > 110 && green < 90 && blue > 150) count++;
            }
            return count;
        }"""
    )
    assert purplish > 0

    # y tick labels of huge losses fit left of the plot
    fits = page.evaluate(
        """async () => {
            const charts = await import("./js/render/charts.js");
            const canvas = document.createElement("canvas");
            canvas.style.width = "300px";
            canvas.style.height = "200px";
            document.body.append(canvas);
            const frame = charts.prepareCanvas(canvas);
            charts.drawAxes(frame, {
                xDomain: [0, 10], yDomain: [0, 3.5e15], xLabel: "step", yLabel: "loss",
            });
            const widest = Math.max(...charts.niceTicks(0, 3.5e15, 4).map(
                (tick) => frame.context.measureText(charts.formatTick(tick)).width));
            canvas.remove();
            return frame.plot.left - 6 - widest >= 12;
        }"""
    )
    assert fits, "a y tick label overlaps the axis title"
    ARTIFACTS.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=ARTIFACTS / "fixes-diverged-1400x900.png")
    page.context.close()


def test_dataset_form_follows_kind(
    page: sync_api.Page, server: LiveServer, tmp_path: Path
) -> None:
    datasets = httpx.get(f"{server.base_url}/api/datasets", timeout=30.0).json()
    kinds = {dataset["name"]: dataset["kind"] for dataset in datasets}
    assert kinds["mnist"] == "idx"

    assert page.locator("#field-dataset option[value='mnist']").is_enabled()
    assert page.locator("#field-dataset option[value='fashion-mnist']").is_disabled()
    unavailable = page.locator("#dataset-unavailable")
    sync_api.expect(unavailable).to_contain_text("fashion-mnist")
    unavailable.locator("summary").click()
    sync_api.expect(unavailable).to_contain_text("fashion-mnist needs the folder")

    cases = {
        "digits": {
            "#field-test-fraction": True,
            "#field-n-samples": False,
            "#field-n-train": False,
        },
        "moons": {
            "#field-test-fraction": True,
            "#field-n-samples": True,
            "#field-noise": True,
            "#field-n-train": False,
        },
        "mnist": {
            "#field-test-fraction": False,
            "#field-n-samples": False,
            "#field-n-train": True,
        },
    }
    for dataset, expected in cases.items():
        page.select_option("#field-dataset", dataset)
        for field, visible in expected.items():
            assert page.locator(field).is_visible() == visible, f"{field} for {dataset}"

    # an MNIST run trains on the number of images requested in the form
    page.fill("#field-n-train", "50")
    page.click("#button-new")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "created", timeout=TIMEOUT_MS
    )
    run_id = page.locator("#counter-run").get_attribute("title")
    run = httpx.get(f"{server.base_url}/api/runs/{run_id}", timeout=30.0).json()
    assert run["config"]["n_train"] == 50
    assert run["train_size"] == 50

    csv_path = tmp_path / "tiny.csv"
    csv_path.write_text(CSV_TEXT)
    page.locator("#csv-upload summary").click()
    page.set_input_files("#csv-file", str(csv_path))
    page.fill("#csv-label-column", "species")
    page.fill("#csv-name", "tiny flowers")
    page.click("#csv-upload-button")
    sync_api.expect(page.locator("#csv-status")).to_contain_text(
        "Uploaded as csv:", timeout=TIMEOUT_MS
    )
    selected = page.locator("#field-dataset").input_value()
    assert selected.startswith("csv:")
    sync_api.expect(page.locator("#dataset-description")).to_contain_text(
        "tiny flowers"
    )
    assert page.locator("#field-test-fraction").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(".sidebar fieldset").first.screenshot(
        path=ARTIFACTS / "fixes-dataset-form.png"
    )
