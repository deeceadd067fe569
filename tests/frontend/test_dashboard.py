"""Browser tests of the dashboard: a real server, Debian's Chromium, real runs.

The units drawn as dropped, the links drawn as faded and the heatmap cells
drawn as exactly zero are checked against masks and deltas decoded in Python,
with `dropviz.streaming.frames`, from the WebSocket frames the page received.
Screenshots go to tests/frontend/artifacts/ for a person to look at.
"""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from playwright import sync_api

from dropviz.streaming.frames import (
    FRAME_SNAPSHOT,
    FRAME_STEPS,
    StepsFrame,
    decode_snapshot,
    decode_steps,
    frame_type,
)
from tests.conftest import LiveServer
from tests.frontend.pages import (
    ARTIFACTS,
    TIMEOUT_MS,
    VIEWPORTS,
    PageErrors,
    boxes_overlap,
    collect_binary_frames,
    drawn_units,
    open_dashboard,
    pause_run,
    read_page_weights,
    read_server_weights,
    save_screenshots,
    start_digits_run,
    wait_for_step,
)

pytestmark = pytest.mark.browser

# The page sums float32 deltas one frame at a time and the server one step at a
# time, so their weights differ by rounding that grows with the step count.
WEIGHT_TOLERANCE = 1e-4
STEPS_BEFORE_PAUSE = 50
PANELS = [".sidebar", ".counters", ".network-panel", ".charts-panel", ".heatmap-panel"]
MOVE_TOO_TEXT = "Weights outside the sub-network move too"
# run settings of the training variants, each with a form field of that name
VARIANT_FIELDS = [
    "variant",
    "scaling",
    "hidden_drop_rates",
    "optimizer",
    "momentum",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "weight_decay",
    "max_norm",
    "lr_schedule",
    "lr_step_epochs",
    "lr_step_factor",
    "init",
    "compact",
]

# (select, option, {field: shown}): the optional fields each choice shows or hides
OPTIONAL_FIELD_CASES = [
    (
        "#field-optimizer",
        "sgd",
        {"#field-momentum": False, "#field-adam-beta1": False},
    ),
    (
        "#field-optimizer",
        "momentum",
        {"#field-momentum": True, "#field-adam-beta1": False},
    ),
    (
        "#field-optimizer",
        "nesterov",
        {"#field-momentum": True, "#field-adam-beta2": False},
    ),
    (
        "#field-optimizer",
        "adam",
        {
            "#field-momentum": False,
            "#field-adam-beta1": True,
            "#field-adam-beta2": True,
            "#field-adam-epsilon": True,
        },
    ),
    (
        "#field-lr-schedule",
        "step",
        {"#field-lr-step-epochs": True, "#field-lr-step-factor": True},
    ),
    (
        "#field-lr-schedule",
        "cosine",
        {"#field-lr-step-epochs": False, "#field-lr-step-factor": False},
    ),
    (
        "#field-variant",
        "dropconnect",
        {"#field-mask-scope": False, "#field-compact": False},
    ),
    (
        "#field-variant",
        "dropout",
        {"#field-mask-scope": True, "#field-compact": True},
    ),
    (
        "#field-mask-scope",
        "per-example",
        {"#field-compact": False},
    ),
]


def _decode_last_frame(frames: list[bytes]) -> tuple[list[int], StepsFrame]:
    """Decode what the page received: the latest snapshot's layer sizes and
    the last steps frame."""
    snapshots = [f for f in frames if frame_type(f) == FRAME_SNAPSHOT]
    steps_frames = [f for f in frames if frame_type(f) == FRAME_STEPS]
    assert snapshots, "the page received no snapshot frame"
    assert steps_frames, "the page received no steps frame"
    layer_sizes = decode_snapshot(snapshots[-1]).meta["layer_sizes"]
    return layer_sizes, decode_steps(steps_frames[-1], layer_sizes)


def _last_frame_after_pause(
    page: sync_api.Page, server: LiveServer, frames: list[bytes]
) -> tuple[list[int], StepsFrame]:
    """Wait until the page has received and drawn the frame of the paused run's
    last step, and return that frame decoded with the snapshot's layer sizes.

    The run's step count is final once the pause request has returned, so this
    waits for that step. A quiet stream proves nothing, because a loaded
    machine can delay the last frame.
    """
    run_id = page.locator("#counter-run").get_attribute("title")
    run = httpx.get(f"{server.base_url}/api/runs/{run_id}", timeout=30.0).json()
    assert run["status"] == "paused"
    last_step = run["step"] - 1

    deadline = time.monotonic() + TIMEOUT_MS / 1000
    layer_sizes, last_frame = _decode_last_frame(frames)
    while last_frame.last_step < last_step:
        assert time.monotonic() < deadline, (
            f"the page received steps up to {last_frame.last_step}, not {last_step}"
        )
        # a Playwright call, unlike time.sleep, lets the sync API deliver the
        # frame events that fill `frames`
        page.wait_for_timeout(100)
        layer_sizes, last_frame = _decode_last_frame(frames)
    assert last_frame.last_step == last_step

    # the network view and the heatmaps must show that frame before any check
    page.wait_for_function(
        """(step) => document.querySelector("#network svg").dataset.step === step
            && document.querySelector("#heatmaps").dataset.step === step""",
        arg=str(last_step),
        timeout=TIMEOUT_MS,
    )
    return layer_sizes, last_frame


def _grey_cells(page: sync_api.Page, layer: int) -> np.ndarray:
    """Return a (n_l, n_{l+1}) bool array, True where weight layer `layer`'s
    heatmap has the shade that the page keeps for an exactly zero delta."""
    rows, grey = page.evaluate(
        """async (layer) => {
            const palette = await import("./js/render/palette.js");
            const zero = 4 * ((palette.SHADE_COUNT - 1) / 2);
            const figure = document.querySelector(`.heatmap[data-layer="${layer}"]`);
            const canvas = figure.querySelector("canvas");
            const { width, height } = canvas;
            const context = canvas.getContext("2d");
            const pixels = context.getImageData(0, 0, width, height).data;
            const grey = [];
            for (let offset = 0; offset < pixels.length; offset += 4) {
                grey.push(
                    pixels[offset] === palette.SHADE_RGBA[zero]
                    && pixels[offset + 1] === palette.SHADE_RGBA[zero + 1]
                    && pixels[offset + 2] === palette.SHADE_RGBA[zero + 2],
                );
            }
            return [canvas.height, grey];
        }""",
        layer,
    )
    return np.asarray(grey, dtype=bool).reshape(rows, -1)


@pytest.mark.parametrize("mask_scope", ["per-step", "per-example"])
def test_dashboard_draws_last_frame_mask(
    page: sync_api.Page, server: LiveServer, mask_scope: str
) -> None:
    frames = collect_binary_frames(page)
    start_digits_run(page, speed="60", mask_scope=mask_scope)
    wait_for_step(page, STEPS_BEFORE_PAUSE)
    pause_run(page)

    layer_sizes, last_frame = _last_frame_after_pause(page, server, frames)
    assert last_frame.mask_scope == mask_scope
    # per unit layer except the output: (n_l,) bool, or (batch_size, n_l) per example,
    # of which the page draws example 0
    last_masks = [mask if mask.ndim == 1 else mask[0] for mask in last_frame.masks[-1]]

    step_counter = page.locator("#counter-step").get_attribute("data-value")
    assert step_counter == str(last_frame.last_step + 1)

    units = drawn_units(page)
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
    start_digits_run(page, speed="200")
    wait_for_step(page, 3 * STEPS_BEFORE_PAUSE)
    pause_run(page)
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
            assert not boxes_overlap(boxes[first], boxes[second]), (
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


def test_dashboard_lists_all_form_errors_at_once(page: sync_api.Page) -> None:
    """Bad text and values below a field's minimum are reported in one round."""
    page.fill("#field-hidden-sizes", "x")
    page.fill("#field-epochs", "")
    page.fill("#field-input-drop-rate", "-1")
    page.fill("#field-batch-size", "0")
    page.fill("#field-hidden-drop-rate", "1")
    page.click("#button-new")

    errors = page.locator("#form-errors")
    sync_api.expect(errors).to_contain_text("Hidden layers: expected positive whole")
    sync_api.expect(errors).to_contain_text('Epochs: expected a whole number; got ""')
    sync_api.expect(errors).to_contain_text(
        "Input drop rate: expected 0 or more; got -1"
    )
    sync_api.expect(errors).to_contain_text("Batch size: expected 1 or more; got 0")
    sync_api.expect(errors).to_contain_text(
        "Hidden drop rate: expected less than 1; got 1"
    )
    sync_api.expect(page.locator("#counter-status")).to_have_text("no run")


def test_dashboard_rejects_bad_hidden_layers(page: sync_api.Page) -> None:
    page.fill("#field-hidden-sizes", "128,abc")
    page.click("#button-new")

    errors = page.locator("#form-errors")
    sync_api.expect(errors).to_be_visible(timeout=TIMEOUT_MS)
    sync_api.expect(errors).to_contain_text("Hidden layers")
    sync_api.expect(errors).to_contain_text('"abc"')

    page.fill("#field-hidden-sizes", "")
    page.click("#button-new")
    sync_api.expect(errors).to_contain_text("Hidden layers")
    sync_api.expect(errors).to_contain_text("at least one layer size")


def test_dashboard_weights_match_server(
    page: sync_api.Page, server: LiveServer
) -> None:
    start_digits_run(page, speed="200")
    wait_for_step(page, 3 * STEPS_BEFORE_PAUSE)
    pause_run(page)
    run_id = page.locator("#counter-run").get_attribute("title")
    assert run_id

    # the page's copy is the snapshot plus every delta, so it ends at the server's
    server_step = httpx.get(
        f"{server.base_url}/api/runs/{run_id}", timeout=30.0
    ).json()["step"]
    wait_for_step(page, server_step)
    server_weights = read_server_weights(server, run_id)
    page_weights = read_page_weights(page)
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
    start_digits_run(page, speed="5")
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
    pause_run(page)


def test_dashboard_dropconnect_fades_dropped_weights(
    page: sync_api.Page, server: LiveServer
) -> None:
    frames = collect_binary_frames(page)
    start_digits_run(page, speed="60", selects={"#field-variant": "dropconnect"})
    wait_for_step(page, STEPS_BEFORE_PAUSE)
    pause_run(page)
    layer_sizes, last_frame = _last_frame_after_pause(page, server, frames)
    assert last_frame.mask_scope == "weights"

    units = drawn_units(page)
    assert len(units) == sum(layer_sizes)
    dropped_units = [(layer, unit) for layer, unit, kept in units if kept != "1"]
    assert dropped_units == [], "DropConnect drops weights, never units"

    # per weight layer, (n_l, n_{l+1}) bool, True where the weight is kept
    weight_masks = last_frame.masks[-1]
    for layer, mask in enumerate(weight_masks):
        assert mask.shape == (layer_sizes[layer], layer_sizes[layer + 1])
    dropped_weights = sum(int(np.count_nonzero(~mask)) for mask in weight_masks)
    assert dropped_weights > 0
    faded_links = page.locator("#network svg").get_attribute("data-faded-links")
    assert faded_links == str(dropped_weights)

    # plain SGD: a weight dropped in every step of the frame does not change
    sync_api.expect(page.locator("#heatmap-update-note")).to_contain_text(
        "a weight dropped in a step does not change"
    )
    for layer in range(len(weight_masks)):
        dropped = np.logical_and.reduce([~masks[layer] for masks in last_frame.masks])
        deltas = last_frame.weight_deltas[layer]
        assert deltas is not None
        assert np.all(deltas[dropped] == 0), f"W[{layer}] dropped weights moved"
        grey = _grey_cells(page, layer)
        assert np.all(grey[dropped]), f"W[{layer}] dropped weights not drawn as 0"
        np.testing.assert_array_equal(grey, deltas == 0, err_msg=f"W[{layer}]")

    save_screenshots(page, "dashboard-dropconnect")


def test_dashboard_momentum_moves_weights_outside(
    page: sync_api.Page, server: LiveServer
) -> None:
    defaults = httpx.get(f"{server.base_url}/api/defaults", timeout=30.0).json()
    frames = collect_binary_frames(page)
    page.click("#advanced summary")
    start_digits_run(page, speed="60", selects={"#field-optimizer": "momentum"})
    wait_for_step(page, STEPS_BEFORE_PAUSE)
    pause_run(page)
    layer_sizes, last_frame = _last_frame_after_pause(page, server, frames)

    sync_api.expect(page.locator("#heatmap-update-note")).to_contain_text(MOVE_TOO_TEXT)
    summary = page.locator("#training-summary")
    sync_api.expect(summary).to_contain_text(f"momentum {defaults['momentum']:g}")
    sync_api.expect(summary).to_contain_text(
        f"learning rate {defaults['learning_rate']:g}"
    )

    # weights leaving a unit dropped in every step of the frame: the rows of W[l]
    moved_outside = 0
    drawn_moved_outside = 0
    for layer in range(len(layer_sizes) - 1):
        dropped = np.logical_and.reduce([~masks[layer] for masks in last_frame.masks])
        deltas = last_frame.weight_deltas[layer]
        assert deltas is not None
        grey = _grey_cells(page, layer)
        np.testing.assert_array_equal(grey, deltas == 0, err_msg=f"W[{layer}]")
        moved_outside += int(np.count_nonzero(deltas[dropped]))
        drawn_moved_outside += int(np.count_nonzero(~grey[dropped]))
    assert moved_outside > 0, "no weight of a dropped unit moved under momentum"
    assert drawn_moved_outside == moved_outside

    page.evaluate("document.querySelector('.sidebar').scrollTop = 1e6")
    save_screenshots(page, "dashboard-momentum-advanced")


def test_dashboard_optional_fields_follow_selects(page: sync_api.Page) -> None:
    page.click("#advanced summary")
    for select, option, expected in OPTIONAL_FIELD_CASES:
        page.select_option(select, option)
        for field, expected_visible in expected.items():
            case = f"{field} with {select} = {option}"
            assert page.locator(field).is_visible() == expected_visible, case
            label = page.locator(f"label[for='{field.removeprefix('#')}']")
            assert label.is_visible() == expected_visible, f"label of {case}"


def test_dashboard_form_prefilled_from_defaults(
    page: sync_api.Page, server: LiveServer
) -> None:
    defaults = httpx.get(f"{server.base_url}/api/defaults", timeout=30.0).json()
    for name in VARIANT_FIELDS:
        value = defaults[name]
        field = page.locator(f"#run-form [name='{name}']")
        assert field.count() == 1, f"no form field for {name}"
        if isinstance(value, bool):
            assert field.is_checked() == value, name
        elif value is None:
            assert field.input_value() == "", name
        elif isinstance(value, list):
            assert field.input_value() == ",".join(str(v) for v in value), name
        elif isinstance(value, int | float):
            assert float(field.input_value()) == value, name
        else:
            assert field.input_value() == value, name


def test_dashboard_hidden_field_not_sent(page: sync_api.Page) -> None:
    page.select_option("#field-optimizer", "momentum")
    page.fill("#field-momentum", "1.5")
    page.select_option("#field-optimizer", "sgd")
    page.click("#button-new")

    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "created", timeout=TIMEOUT_MS
    )
    assert page.locator("#form-errors").is_hidden()


def test_dashboard_variant_errors_next_to_field(page: sync_api.Page) -> None:
    page.fill("#field-hidden-drop-rates", "0.5")
    page.select_option("#field-optimizer", "adam")
    page.click("#advanced summary")
    page.fill("#field-adam-beta2", "1.5")
    page.click("#advanced summary")  # closed again, so the error must open it
    assert not page.locator("#advanced").evaluate("(details) => details.open")
    page.click("#button-new")

    rates_error = page.locator("#field-hidden-drop-rates + .field-error")
    sync_api.expect(rates_error).to_be_visible(timeout=TIMEOUT_MS)
    sync_api.expect(rates_error).to_contain_text("one rate per hidden layer")
    beta2_error = page.locator("#field-adam-beta2 + .field-error")
    sync_api.expect(beta2_error).to_be_visible()
    sync_api.expect(beta2_error).to_contain_text("1.5")
    for field in ["#field-hidden-drop-rates", "#field-adam-beta2"]:
        assert page.locator(field).get_attribute("aria-invalid") == "true", field
    sync_api.expect(page.locator("#form-errors")).to_contain_text("Adam β2")
    sync_api.expect(page.locator("#counter-status")).to_have_text("no run")


def test_dashboard_double_click_creates_one_run(
    page: sync_api.Page, server: LiveServer
) -> None:
    """A double click on New run sends one create request, not two."""
    before = len(httpx.get(f"{server.base_url}/api/runs").json())
    page.select_option("#field-dataset", "moons")
    page.dblclick("#button-new")
    sync_api.expect(page.locator("#counter-status")).to_have_text("created")
    page.wait_for_timeout(1000)  # a second request would have completed by now
    assert len(httpx.get(f"{server.base_url}/api/runs").json()) == before + 1


def test_run_picker_opens_listed_run(page: sync_api.Page, server: LiveServer) -> None:
    """The top bar lists the server's runs, newest first, and opens the one chosen."""
    body = {"dataset": "moons", "hidden_sizes": [8], "epochs": 1}
    older = httpx.post(f"{server.base_url}/api/runs", json={**body, "seed": 5}).json()[
        "id"
    ]
    newer = httpx.post(f"{server.base_url}/api/runs", json=body).json()["id"]
    httpx.post(f"{server.base_url}/api/runs/{older}/step")

    picker = page.locator("#run-picker")
    picker.focus()
    sync_api.expect(picker.locator(f"option[value='{older}']")).to_have_count(1)
    values = picker.locator("option").evaluate_all(
        "(options) => options.map((o) => o.value)"
    )
    assert values.index(newer) < values.index(older)
    label = picker.locator(f"option[value='{older}']").inner_text()
    assert "moons 2-8-2" in label
    assert "1/" in label  # one step taken

    picker.select_option(older)
    sync_api.expect(page.locator("#counter-run")).to_have_attribute("title", older)
    sync_api.expect(page.locator("#counter-status")).to_have_text("paused")
    # the form takes the run's settings, so New run and Copy link repeat it
    sync_api.expect(page.locator("#field-hidden-sizes")).to_have_value("8")
    sync_api.expect(page.locator("#field-seed")).to_have_value("5")
    sync_api.expect(page.locator("#field-epochs")).to_have_value("1")
    assert page.evaluate("location.hash").find(f"run={older}") >= 0
    assert "seed=5" in page.evaluate("location.hash")


def test_speed_field_follows_other_clients(
    browser: sync_api.Browser, page_errors: PageErrors, server: LiveServer
) -> None:
    """A speed that another tab or API client sets shows in the form."""
    body = {"dataset": "moons", "hidden_sizes": [8], "epochs": 200}
    run_id = httpx.post(
        f"{server.base_url}/api/runs", json={**body, "max_steps_per_second": 20}
    ).json()["id"]
    page = open_dashboard(browser, page_errors, f"{server.base_url}/#run={run_id}")
    try:
        sync_api.expect(page.locator("#field-speed")).to_have_value("20")
        response = httpx.patch(
            f"{server.base_url}/api/runs/{run_id}", json={"max_steps_per_second": 60}
        )
        assert response.status_code == 200
        httpx.post(f"{server.base_url}/api/runs/{run_id}/start")
        sync_api.expect(page.locator("#counter-status")).to_have_text("running")
        sync_api.expect(page.locator("#field-speed")).to_have_value("60")
        # a change while the run keeps its state arrives as a speed message
        httpx.patch(
            f"{server.base_url}/api/runs/{run_id}", json={"max_steps_per_second": 200}
        )
        sync_api.expect(page.locator("#field-speed")).to_have_value("200")
    finally:
        httpx.post(f"{server.base_url}/api/runs/{run_id}/stop")
        page.context.close()


def test_deleted_run_disables_controls(
    browser: sync_api.Browser, page_errors: PageErrors, server: LiveServer
) -> None:
    """A run deleted while the page shows it reads as not found, with Start disabled."""
    body = {"dataset": "moons", "hidden_sizes": [8], "epochs": 1}
    run_id = httpx.post(f"{server.base_url}/api/runs", json=body).json()["id"]
    page = open_dashboard(browser, page_errors, f"{server.base_url}/#run={run_id}")
    try:
        sync_api.expect(page.locator("#button-start")).to_be_enabled()
        assert httpx.delete(f"{server.base_url}/api/runs/{run_id}").status_code == 204
        sync_api.expect(page.locator("#counter-status")).to_have_text("not found")
        sync_api.expect(page.locator("#button-start")).to_be_disabled()
    finally:
        page.context.close()
