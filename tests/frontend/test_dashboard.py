"""Browser tests of the dashboard: a real server, Debian's Chromium, real runs.

The units drawn as dropped are checked against masks decoded in Python, with
`dropviz.streaming.frames`, from the WebSocket frames the page received.
Screenshots go to tests/frontend/artifacts/ for a person to look at.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
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

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
TIMEOUT_MS = 60_000  # generous: a 2-core machine trains and rasterizes at once
QUIET_SECONDS = 1.0  # no frame for this long after a pause means the stream is drained
# The page sums float32 deltas one frame at a time and the server one step at a
# time, so their weights differ by rounding that grows with the step count.
WEIGHT_TOLERANCE = 1e-4
STEPS_BEFORE_PAUSE = 50
VIEWPORTS = [(1280, 800), (1920, 1080)]
PANELS = [".sidebar", ".counters", ".network-panel", ".charts-panel", ".heatmap-panel"]


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = (
        f"{CHROMIUM} not found; install Debian's chromium package to run browser tests"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    _require_chromium()
    log_path = tmp_path_factory.mktemp("dashboard-server") / "server.log"
    live = start_server(log_path)
    yield live
    stop_server(live)
    assert "Traceback" not in live.log(), live.log()


@pytest.fixture(scope="module")
def browser(server: LiveServer) -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: sync_api.Browser, server: LiveServer) -> Iterator[sync_api.Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto(server.base_url)
    page.wait_for_selector("#field-dataset option[value='digits']", state="attached")
    yield page
    context.close()
    assert page_errors == [], f"uncaught errors in the page: {page_errors}"


def _collect_binary_frames(page: sync_api.Page) -> list[bytes]:
    frames: list[bytes] = []

    def on_websocket(websocket: sync_api.WebSocket) -> None:
        def on_frame(payload: str | bytes) -> None:
            if isinstance(payload, bytes):
                frames.append(payload)

        websocket.on("framereceived", on_frame)

    page.on("websocket", on_websocket)
    return frames


def _start_digits_run(
    page: sync_api.Page, speed: str, mask_scope: str = "per-step"
) -> None:
    page.select_option("#field-dataset", "digits")
    page.select_option("#field-mask-scope", mask_scope)
    page.select_option("#field-speed", speed)
    page.click("#button-new")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "created", timeout=TIMEOUT_MS
    )
    page.click("#button-start")


def _wait_for_step(page: sync_api.Page, step: int) -> None:
    page.wait_for_function(
        f"Number(document.querySelector('#counter-step').dataset.value) >= {step}",
        timeout=TIMEOUT_MS,
    )


def _pause(page: sync_api.Page) -> None:
    page.click("#button-pause")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "paused", timeout=TIMEOUT_MS
    )


def _wait_until_quiet(frames: list[bytes]) -> None:
    """Wait until no frame has arrived for QUIET_SECONDS; fail after TIMEOUT_MS."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    count = -1
    while count != len(frames):
        assert time.monotonic() < deadline, "the stream kept sending after the pause"
        count = len(frames)
        time.sleep(QUIET_SECONDS)


def _drawn_units(page: sync_api.Page) -> list[tuple[int, int, str]]:
    return page.evaluate(
        """() => Array.from(
            document.querySelectorAll("#network circle[data-layer]"),
            (circle) => [
                Number(circle.dataset.layer),
                Number(circle.dataset.unit),
                circle.dataset.kept,
            ],
        )"""
    )


def _boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def _page_weights(page: sync_api.Page) -> list[np.ndarray]:
    values = page.evaluate("window.dropviz.store.weights.map((w) => Array.from(w))")
    return [np.asarray(layer, dtype=np.float32) for layer in values]


def _server_weights(server: LiveServer, run_id: str) -> list[np.ndarray]:
    response = httpx.get(f"{server.base_url}/api/runs/{run_id}/weights", timeout=30.0)
    response.raise_for_status()
    with np.load(io.BytesIO(response.content)) as archive:
        return [
            archive[f"W{layer}"].ravel() for layer in range(len(archive.files) // 2)
        ]


@pytest.mark.parametrize("mask_scope", ["per-step", "per-example"])
def test_dashboard_draws_last_frame_mask(page: sync_api.Page, mask_scope: str) -> None:
    frames = _collect_binary_frames(page)
    _start_digits_run(page, speed="60", mask_scope=mask_scope)
    _wait_for_step(page, STEPS_BEFORE_PAUSE)
    _pause(page)
    _wait_until_quiet(frames)

    # decode what the page received: the latest snapshot, then the last steps frame
    snapshots = [f for f in frames if frame_type(f) == FRAME_SNAPSHOT]
    steps_frames = [f for f in frames if frame_type(f) == FRAME_STEPS]
    assert snapshots, "the page received no snapshot frame"
    assert steps_frames, "the page received no steps frame"
    layer_sizes = decode_snapshot(snapshots[-1]).meta["layer_sizes"]
    last_frame = decode_steps(steps_frames[-1], layer_sizes)
    assert last_frame.mask_scope == mask_scope
    # per unit layer except the output: (n_l,) bool, or (batch_size, n_l) per example,
    # of which the page draws example 0
    last_masks = [mask if mask.ndim == 1 else mask[0] for mask in last_frame.masks[-1]]

    # the page must have drawn that frame before the DOM is compared
    page.wait_for_function(
        "(step) => document.querySelector('#network svg').dataset.step === step",
        arg=str(last_frame.last_step),
        timeout=TIMEOUT_MS,
    )
    step_counter = page.locator("#counter-step").get_attribute("data-value")
    assert step_counter == str(last_frame.last_step + 1)

    units = _drawn_units(page)
    assert len(units) == sum(layer_sizes)
    for layer, unit_count in enumerate(layer_sizes):
        kept_drawn = {
            unit: kept for drawn_layer, unit, kept in units if drawn_layer == layer
        }
        assert sorted(kept_drawn) == list(range(unit_count)), f"layer {layer} units"
        dropped_drawn = {unit for unit, kept in kept_drawn.items() if kept == "0"}
        if layer == len(layer_sizes) - 1:
            assert dropped_drawn == set(), "output units are never dropped"
            continue
        dropped_in_mask = set(np.flatnonzero(~last_masks[layer]).tolist())
        assert dropped_drawn == dropped_in_mask, f"layer {layer} dropped units"

    # with drop rates 0.2 and 0.5 a step without any dropped unit is vanishingly rare
    assert any(kept == "0" for _, _, kept in units)
    ARTIFACTS.mkdir(exist_ok=True)
    name = (
        "dashboard.png" if mask_scope == "per-step" else f"dashboard-{mask_scope}.png"
    )
    page.screenshot(path=ARTIFACTS / name, full_page=True)


@pytest.mark.parametrize(("width", "height"), VIEWPORTS)
def test_dashboard_layout_no_overlap(
    page: sync_api.Page, width: int, height: int
) -> None:
    page.set_viewport_size({"width": width, "height": height})
    _start_digits_run(page, speed="200")
    _wait_for_step(page, 3 * STEPS_BEFORE_PAUSE)
    _pause(page)
    page.wait_for_function(
        "document.querySelector('.heatmap-legend .gradient-ticks span').textContent",
        timeout=TIMEOUT_MS,
    )

    boxes = {}
    for selector in PANELS:
        box = page.locator(selector).bounding_box()
        assert box is not None, f"{selector} is not displayed"
        assert box["width"] > 0, f"{selector} has no width"
        assert box["height"] > 0, f"{selector} has no height"
        boxes[selector] = box
    for index, first in enumerate(PANELS):
        for second in PANELS[index + 1 :]:
            assert not _boxes_overlap(boxes[first], boxes[second]), (
                f"{first} overlaps {second}"
            )

    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= width, "the page scrolls sideways"
    assert page.locator(".network-legend").is_visible()
    assert page.locator(".heatmap-legend").count() == 3
    for chart in ["#chart-step-loss", "#chart-epoch-loss", "#chart-epoch-accuracy"]:
        box = page.locator(chart).bounding_box()
        assert box is not None, f"{chart} is not displayed"
        assert box["height"] >= 100, f"{chart} is too small: {box}"

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"dashboard-{width}x{height}.png", full_page=True)


def test_dashboard_shows_validation_errors(page: sync_api.Page) -> None:
    page.fill("#field-hidden-drop-rate", "1.5")
    page.click("#button-new")

    errors = page.locator("#form-errors")
    sync_api.expect(errors).to_be_visible(timeout=TIMEOUT_MS)
    sync_api.expect(errors).to_contain_text("Hidden drop rate")
    sync_api.expect(errors).to_contain_text("1.5")
    assert (
        page.locator("#field-hidden-drop-rate").get_attribute("aria-invalid") == "true"
    )
    sync_api.expect(page.locator("#counter-status")).to_have_text("no run")


def test_dashboard_rejects_bad_hidden_layers(page: sync_api.Page) -> None:
    page.fill("#field-hidden-sizes", "128,abc")
    page.click("#button-new")

    errors = page.locator("#form-errors")
    sync_api.expect(errors).to_be_visible(timeout=TIMEOUT_MS)
    sync_api.expect(errors).to_contain_text("Hidden layers")
    sync_api.expect(errors).to_contain_text('"abc"')


def test_dashboard_weights_match_server(
    page: sync_api.Page, server: LiveServer
) -> None:
    _start_digits_run(page, speed="200")
    _wait_for_step(page, 3 * STEPS_BEFORE_PAUSE)
    _pause(page)
    run_id = page.locator("#counter-run").get_attribute("title")
    assert run_id

    # the page's copy is the snapshot plus every delta, so it ends at the server's
    server_step = httpx.get(
        f"{server.base_url}/api/runs/{run_id}", timeout=30.0
    ).json()["step"]
    _wait_for_step(page, server_step)
    server_weights = _server_weights(server, run_id)
    page_weights = _page_weights(page)
    assert len(page_weights) == len(server_weights)
    for layer, (ours, theirs) in enumerate(
        zip(page_weights, server_weights, strict=True)
    ):
        assert ours.shape == theirs.shape, f"W{layer} shape"
        np.testing.assert_allclose(
            ours, theirs, rtol=0, atol=WEIGHT_TOLERANCE, err_msg=f"W{layer}"
        )


def test_dashboard_speed_change_updates_run(
    page: sync_api.Page, server: LiveServer
) -> None:
    _start_digits_run(page, speed="5")
    run_id = page.locator("#counter-run").get_attribute("title")
    assert run_id

    page.select_option("#field-speed", "200")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    speed = None
    while speed != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        run = httpx.get(f"{server.base_url}/api/runs/{run_id}", timeout=30.0).json()
        speed = run["max_steps_per_second"]
    assert speed == 200
    _pause(page)
