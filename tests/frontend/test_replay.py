"""Browser tests of replay, shared links, classroom mode, export and import.

Masks the page shows for a replayed step are checked against the masks it
received live over the WebSocket, decoded in Python with
`dropviz.streaming.frames`, and replayed weights against the REST API.
Screenshots go to tests/frontend/artifacts/ for a person to look at.
"""

from __future__ import annotations

import time
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
    TIMEOUT_MS,
    VIEWPORTS,
    PageErrors,
    collect_binary_frames,
    drawn_units,
    open_dashboard,
    pause_run,
    save_screenshots,
    wait_for_step,
)

pytestmark = pytest.mark.browser

REPLAYED_STEP = 137
SHARED_STEPS = 10  # first steps whose masks a shared link must reproduce
# a shared link's run settings, all different from the defaults
SHARED_FIELDS = {
    "#field-hidden-sizes": "32,16",
    "#field-hidden-drop-rate": "0.4",
    "#field-batch-size": "16",
    "#field-epochs": "2",
    "#field-seed": "11",
    "#field-learning-rate": "0.05",
}


def _create_run(server: LiveServer, config: dict[str, object]) -> str:
    response = httpx.post(f"{server.base_url}/api/runs", json=config, timeout=30.0)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _wait_for_status(server: LiveServer, run_id: str, status: str) -> dict:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        run = httpx.get(f"{server.base_url}/api/runs/{run_id}", timeout=30.0).json()
        if run["status"] == status:
            return run
        assert time.monotonic() < deadline, f"run {run_id} is {run['status']}"
        time.sleep(0.1)


def _streamed_masks(
    page: sync_api.Page, frames: list[bytes], last_step: int
) -> dict[int, list[np.ndarray]]:
    """Decode every step's masks the page received, waiting until `last_step` came."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        snapshots = [f for f in frames if frame_type(f) == FRAME_SNAPSHOT]
        masks: dict[int, list[np.ndarray]] = {}
        if snapshots:
            layer_sizes = decode_snapshot(snapshots[0]).meta["layer_sizes"]
            for payload in frames:
                if frame_type(payload) != FRAME_STEPS:
                    continue
                frame = decode_steps(payload, layer_sizes)
                for offset, step_masks in enumerate(frame.masks):
                    masks[frame.first_step + offset] = step_masks
        if last_step in masks:
            return masks
        assert time.monotonic() < deadline, f"no frame for step {last_step} arrived"
        # a Playwright call, unlike time.sleep, lets the frame events arrive
        page.wait_for_timeout(100)


def _dropped_units(page: sync_api.Page, layer_count: int) -> list[set[int]]:
    dropped: list[set[int]] = [set() for _ in range(layer_count)]
    for layer, unit, kept in drawn_units(page):
        if layer < layer_count and kept == "0":
            dropped[layer].add(unit)
    return dropped


def _scrub_to(page: sync_api.Page, step: int) -> None:
    page.locator("#replay-slider").fill(str(step))
    page.wait_for_function(
        """(step) => document.querySelector("#replay").dataset.step === step
            && document.querySelector("#network svg").dataset.step === step""",
        arg=str(step),
        timeout=TIMEOUT_MS,
    )


def _form_values(page: sync_api.Page) -> dict[str, str]:
    return page.evaluate(
        """() => Object.fromEntries(
            Array.from(document.querySelector("#run-form").elements)
                .filter((field) => field.name && field.type !== "file")
                .map((field) => [
                    field.name,
                    field.type === "checkbox" ? String(field.checked) : field.value,
                ]),
        )"""
    )


def test_replay_step_shows_streamed_masks_and_weights(
    browser: sync_api.Browser, server: LiveServer, page_errors: PageErrors
) -> None:
    page = open_dashboard(browser, page_errors, server.base_url)
    frames = collect_binary_frames(page)
    page.fill("#field-epochs", "1")
    page.fill("#field-seed", "3")
    page.select_option("#field-speed", "")
    page.click("#button-new")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "created", timeout=TIMEOUT_MS
    )
    page.click("#button-start")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "finished", timeout=TIMEOUT_MS
    )
    run_id = page.locator("#counter-run").get_attribute("title")
    run = _wait_for_status(server, str(run_id), "finished")
    assert run["step"] > REPLAYED_STEP
    streamed = _streamed_masks(page, frames, run["step"] - 1)
    wait_for_step(page, run["step"])

    _scrub_to(page, REPLAYED_STEP)
    sync_api.expect(page.locator("#replay-state")).to_contain_text(
        f"Replaying step {REPLAYED_STEP}"
    )
    sync_api.expect(page.locator("#replay-back")).to_be_visible()
    layer_sizes = run["layer_sizes"]
    dropped = _dropped_units(page, len(layer_sizes) - 1)
    for layer, mask in enumerate(streamed[REPLAYED_STEP]):
        expected = set(np.flatnonzero(~mask).tolist())
        assert dropped[layer] == expected, f"layer {layer} dropped units"
    assert any(dropped), "a step with drop rates 0.2 and 0.5 drops some unit"

    page.check("#replay-weights")
    page.wait_for_function(
        """(step) => document.querySelector("#replay").dataset.weightsStep === step
            && document.querySelector("#heatmaps").dataset.step === step""",
        arg=str(REPLAYED_STEP),
        timeout=TIMEOUT_MS,
    )
    page_weights = page.evaluate(
        "window.dropviz.replay.weights.map((w) => Array.from(w))"
    )
    response = httpx.get(
        f"{server.base_url}/api/runs/{run_id}/steps/{REPLAYED_STEP}",
        params={"weights": "true"},
        timeout=30.0,
    )
    response.raise_for_status()
    api_weights = response.json()["weights"]
    assert len(page_weights) == len(api_weights)
    for layer, (ours, theirs) in enumerate(zip(page_weights, api_weights, strict=True)):
        expected = np.asarray(theirs, dtype=np.float32).ravel()
        np.testing.assert_array_equal(
            np.asarray(ours, dtype=np.float32), expected, err_msg=f"W{layer}"
        )
    # plain SGD with one mask per step: ΔW is exactly 0 outside the sub-network
    deltas = page.evaluate("window.dropviz.replay.deltas.map((d) => Array.from(d))")
    masks = streamed[REPLAYED_STEP]
    for layer, values in enumerate(deltas):
        delta = np.asarray(values).reshape(layer_sizes[layer], layer_sizes[layer + 1])
        assert np.all(delta[~masks[layer]] == 0), f"ΔW[{layer}] rows of dropped units"
        if layer + 1 < len(masks):
            assert np.all(delta[:, ~masks[layer + 1]] == 0), (
                f"ΔW[{layer}] columns of dropped units"
            )
        assert np.any(delta != 0), f"ΔW[{layer}] changes some weight"
    sync_api.expect(page.locator("#replay-heatmap-note")).to_contain_text(
        f"weights after step {REPLAYED_STEP} − weights after step {REPLAYED_STEP - 1}"
    )
    save_screenshots(page, "replay", full_page=True)

    page.set_viewport_size({"width": 1280, "height": 800})
    page.click("#replay-back")
    sync_api.expect(page.locator("#replay")).to_have_attribute("data-state", "live")
    sync_api.expect(page.locator("#network svg")).to_have_attribute(
        "data-step", str(run["step"] - 1), timeout=TIMEOUT_MS
    )
    page.context.close()


def test_shared_link_recreates_config_and_masks(
    browser: sync_api.Browser, server: LiveServer, page_errors: PageErrors
) -> None:
    page = open_dashboard(browser, page_errors, server.base_url)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    frames = collect_binary_frames(page)
    for selector, value in SHARED_FIELDS.items():
        page.fill(selector, value)
    page.select_option("#field-optimizer", "momentum")
    page.fill("#field-momentum", "0.8")
    page.select_option("#field-speed", "20")
    page.click("#button-new")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "created", timeout=TIMEOUT_MS
    )
    page.click("#button-start")
    wait_for_step(page, SHARED_STEPS + 2)

    # replaying an early step while training goes on: the counters follow the
    # stream, the network view stays on the replayed step
    _scrub_to(page, 3)
    replay_started_at = int(
        page.locator("#counter-step").get_attribute("data-value") or 0
    )
    wait_for_step(page, replay_started_at + 5)
    assert page.locator("#network svg").get_attribute("data-step") == "3"
    assert page.locator("#replay").get_attribute("data-step") == "3"
    pause_run(page)
    original_masks = _streamed_masks(page, frames, SHARED_STEPS - 1)

    page.click("#copy-link")
    sync_api.expect(page.locator("#tools-status")).to_have_text("Link copied.")
    link = page.evaluate("navigator.clipboard.readText()")
    assert link == page.evaluate("window.dropviz.share.link()")
    original_run_id = page.locator("#counter-run").get_attribute("title")
    assert f"run={original_run_id}" in link
    assert "seed=11" in link
    original_form = _form_values(page)

    shared = open_dashboard(browser, page_errors, link)
    sync_api.expect(shared.locator("#counter-run")).to_have_attribute(
        "title", str(original_run_id), timeout=TIMEOUT_MS
    )
    assert _form_values(shared) == original_form
    shared_frames = collect_binary_frames(shared)
    shared.click("#button-new")
    sync_api.expect(shared.locator("#counter-status")).to_have_text(
        "created", timeout=TIMEOUT_MS
    )
    shared_run_id = shared.locator("#counter-run").get_attribute("title")
    assert shared_run_id != original_run_id
    shared.click("#button-start")
    shared_masks = _streamed_masks(shared, shared_frames, SHARED_STEPS - 1)

    configs = [
        httpx.get(f"{server.base_url}/api/runs/{run_id}", timeout=30.0).json()["config"]
        for run_id in (original_run_id, shared_run_id)
    ]
    assert configs[0] == configs[1]
    for step in range(SHARED_STEPS):
        for layer, (ours, theirs) in enumerate(
            zip(shared_masks[step], original_masks[step], strict=True)
        ):
            np.testing.assert_array_equal(
                ours, theirs, err_msg=f"step {step} layer {layer}"
            )
    shared.click("#button-stop")
    shared.context.close()
    page.context.close()


def test_classroom_mode_hides_sidebar(
    browser: sync_api.Browser, server: LiveServer, page_errors: PageErrors
) -> None:
    run_id = _create_run(server, {"epochs": 1, "seed": 5})
    httpx.post(f"{server.base_url}/api/runs/{run_id}/start", timeout=30.0)
    _wait_for_status(server, run_id, "finished")

    page = open_dashboard(
        browser, page_errors, f"{server.base_url}/#run={run_id}&classroom=1"
    )
    sync_api.expect(page.locator(".sidebar")).to_be_hidden()
    for action in ("start", "pause", "step"):
        sync_api.expect(
            page.locator(f"#classroom-bar [data-classroom-action='{action}']")
        ).to_be_visible()
    sync_api.expect(page.locator("#copy-link")).to_be_hidden()
    wait_for_step(page, 100)
    _scrub_to(page, 42)
    # a projector shows one screen, so the classroom view must fit the viewport
    save_screenshots(page, "classroom", full_page=False)
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        box = page.locator(".network-panel").bounding_box()
        assert box is not None
        assert box["y"] + box["height"] <= height, f"network panel at {width}x{height}"

    page.set_viewport_size({"width": 1280, "height": 800})
    page.click("#classroom-toggle")
    sync_api.expect(page.locator(".sidebar")).to_be_visible()
    assert "classroom" not in page.evaluate("location.hash")
    page.context.close()


def test_import_opens_exported_run(
    browser: sync_api.Browser,
    server: LiveServer,
    page_errors: PageErrors,
    tmp_path: Path,
) -> None:
    run_id = _create_run(server, {"epochs": 1, "seed": 8})
    httpx.post(f"{server.base_url}/api/runs/{run_id}/start", timeout=30.0)
    _wait_for_status(server, run_id, "finished")

    page = open_dashboard(browser, page_errors, f"{server.base_url}/#run={run_id}")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "finished", timeout=TIMEOUT_MS
    )
    with page.expect_download() as download_info:
        page.click("#download-archive")
    archive = tmp_path / "run.zip"
    download_info.value.save_as(archive)
    with page.expect_download() as weights_info:
        page.click("#download-weights")
    assert weights_info.value.suggested_filename.endswith(".npz")

    page.set_input_files("#import-file", str(archive))
    sync_api.expect(page.locator("#tools-status")).to_contain_text(
        "Imported", timeout=TIMEOUT_MS
    )
    imported_id = page.locator("#counter-run").get_attribute("title")
    assert imported_id not in (None, run_id)
    assert f"run={imported_id}" in page.evaluate("location.hash")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "finished", timeout=TIMEOUT_MS
    )
    page.context.close()


def test_interrupted_run_enables_start_and_resumes(
    browser: sync_api.Browser, page_errors: PageErrors, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    environment = {"DROPVIZ_STATE_DIR": str(state_dir)}
    first = start_server(tmp_path / "first.log", environment)
    try:
        run_id = _create_run(first, {"epochs": 5, "max_steps_per_second": 50})
        httpx.post(f"{first.base_url}/api/runs/{run_id}/start", timeout=30.0)
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while httpx.get(f"{first.base_url}/api/runs/{run_id}").json()["step"] < 5:
            assert time.monotonic() < deadline, "the run did not reach step 5"
            time.sleep(0.1)
    finally:
        stop_server(first)  # SIGTERM: training runs halt as interrupted

    second = start_server(tmp_path / "second.log", environment)
    try:
        run = _wait_for_status(second, run_id, "interrupted")
        page = open_dashboard(browser, page_errors, f"{second.base_url}/#run={run_id}")
        sync_api.expect(page.locator("#counter-status")).to_have_text(
            "interrupted", timeout=TIMEOUT_MS
        )
        sync_api.expect(page.locator("#counter-status-detail")).to_contain_text(
            "Resume"
        )
        for button in ("#button-start", "#button-step", "#button-stop"):
            sync_api.expect(page.locator(button)).to_be_enabled()
        sync_api.expect(page.locator("#button-pause")).to_be_disabled()

        page.click("#button-start")
        sync_api.expect(page.locator("#counter-status")).to_have_text(
            "running", timeout=TIMEOUT_MS
        )
        wait_for_step(page, run["step"] + 5)
        page.click("#button-stop")
        page.context.close()
    finally:
        stop_server(second)
    assert "Traceback" not in second.log(), second.log()


def test_link_with_bad_values_keeps_defaults(
    browser: sync_api.Browser, server: LiveServer, page_errors: PageErrors
) -> None:
    """A hand-edited link's values that fit no field are named; defaults stay."""
    url = f"{server.base_url}/#epochs=zz&max_steps_per_second=abc&seed=7"
    page = open_dashboard(browser, page_errors, url)
    try:
        errors = page.locator("#form-errors")
        sync_api.expect(errors).to_contain_text("The link has values")
        sync_api.expect(errors).to_contain_text('Epochs: expected a number; got "zz"')
        sync_api.expect(errors).to_contain_text("Speed: expected steps per second")
        sync_api.expect(errors).to_contain_text('got "abc"')
        sync_api.expect(page.locator("#field-epochs")).to_have_value("30")
        sync_api.expect(page.locator("#field-seed")).to_have_value("7")
        speeds = page.locator("#field-speed option").all_inner_texts()
        assert not any("NaN" in text for text in speeds)
    finally:
        page.context.close()
