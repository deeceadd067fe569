"""Browser tests of the dropout lessons: training counts, sub-networks seen and
followed weights.

Every number the page shows is checked against a value computed here from the
WebSocket frames the page received, decoded with `dropviz.streaming.frames`.
The runs train at full speed, so the server merges steps into frames and the
page must count every step of a merged frame. Screenshots of the views go to
tests/frontend/artifacts/ for a person to look at.
"""

from __future__ import annotations

import base64
import math
import re
import time

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
from tests.conftest import LiveServer
from tests.frontend.pages import (
    ARTIFACTS,
    TIMEOUT_MS,
    VIEWPORTS,
    PageErrors,
    collect_binary_frames,
    create_full_speed_run,
    open_dashboard,
    pause_run,
    wait_for_frames,
    wait_for_step,
)

pytestmark = pytest.mark.browser

KEPT_PATTERN = re.compile(r"kept in ([\d,]+) of ([\d,]+) steps")
TRAINED_PATTERN = re.compile(r"in the sub-network in ([\d,]+) of ([\d,]+) steps")
CHOSEN_UNITS = [(0, 5), (1, 17), (2, 100)]  # (unit layer, unit) of 64-128-128-10
CHOSEN_WEIGHTS = [
    (0, 3, 40),
    (1, 17, 99),
    (2, 100, 7),
]  # (weight layer, source, destination)
PINNED_WEIGHTS = [(1, 17, 99), (2, 100, 7)]


def _train_to_end(page: sync_api.Page, server: LiveServer, run_id: str) -> int:
    """Start the run and wait until it finished and the lessons counted every step.

    Returns the run's step count.
    """
    page.click("#button-start")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "finished", timeout=TIMEOUT_MS
    )
    run = httpx.get(f"{server.base_url}/api/runs/{run_id}", timeout=30.0).json()
    steps = int(run["step"])
    page.wait_for_function(
        "(steps) => document.querySelector('#meter-steps').dataset.value === steps",
        arg=str(steps),
        timeout=TIMEOUT_MS,
    )
    # the counts view redraws at most every 400 ms; wait until it shows every step
    page.wait_for_function(
        """(steps) => document.querySelector('#counts-summary')
            .textContent.includes(`steps 0–${steps - 1}`)""",
        arg=steps,
        timeout=TIMEOUT_MS,
    )
    return steps


def _step_masks(frames: list[bytes]) -> list[list[np.ndarray]]:
    """Return every streamed step's masks in step order.

    A step's masks are one (n_l,) bool array per unit layer but the output.
    """
    snapshots = [f for f in frames if frame_type(f) == FRAME_SNAPSHOT]
    assert len(snapshots) == 1, "the page reconnected, so steps may be missing"
    layer_sizes = decode_snapshot(snapshots[0]).meta["layer_sizes"]
    masks: list[list[np.ndarray]] = []
    next_step = 0
    for message in frames:
        if frame_type(message) != FRAME_STEPS:
            continue
        frame = decode_steps(message, layer_sizes)
        assert frame.first_step == next_step
        masks.extend(frame.masks)
        next_step = frame.last_step + 1
    return masks


def _merged_frame_count(frames: list[bytes], layer_sizes: list[int]) -> int:
    steps_frames = [f for f in frames if frame_type(f) == FRAME_STEPS]
    return sum(1 for f in steps_frames if decode_steps(f, layer_sizes).step_count > 1)


def _tooltip_numbers(
    page: sync_api.Page, key: str, pattern: re.Pattern[str]
) -> tuple[int, int]:
    tooltip = page.locator(f".tooltip[data-key='{key}']")
    sync_api.expect(tooltip).to_be_visible(timeout=TIMEOUT_MS)
    match = pattern.search(tooltip.inner_text())
    assert match is not None, tooltip.inner_text()
    return int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))


def _hover_cell(page: sync_api.Page, layer: int, source: int, destination: int) -> None:
    """Move the pointer over the heatmap cell of W[layer][source][destination]."""
    canvas = page.locator(f".heatmap[data-layer='{layer}'] canvas")
    canvas.scroll_into_view_if_needed()
    rows, columns = page.evaluate(
        """(layer) => {
            const sizes = window.dropviz.store.layerSizes;
            return [sizes[layer], sizes[layer + 1]];
        }""",
        layer,
    )
    # Playwright positions are relative to the padding box, which the map fills
    width, height = canvas.evaluate(
        "(canvas) => [canvas.clientWidth, canvas.clientHeight]"
    )
    canvas.hover(
        position={
            "x": (destination + 0.5) * width / columns,
            "y": (source + 0.5) * height / rows,
        }
    )


def _click_cell(page: sync_api.Page, layer: int, source: int, destination: int) -> None:
    _hover_cell(page, layer, source, destination)
    page.mouse.down()
    page.mouse.up()


def _count_map_pixels(page: sync_api.Page, layer: int) -> np.ndarray:
    """Return weight layer `layer`'s share map as a (rows, columns, 4) array."""
    height, width, data = page.evaluate(
        """(layer) => {
            const canvas = document.querySelector(
                `.counts-weight-figure[data-layer="${layer}"] canvas.counts-map`);
            const pixels = canvas.getContext("2d")
                .getImageData(0, 0, canvas.width, canvas.height).data;
            return [canvas.height, canvas.width, Array.from(pixels)];
        }""",
        layer,
    )
    return np.asarray(data, dtype=np.uint8).reshape(height, width, 4)


def _expected_repeats(steps: int, groups: list[tuple[int, float]]) -> float:
    """Return E[repeats] for one group of n items kept with probability q.

    The exact sum over kept counts k, in floating point: Σ_k C(n, k)·f(p_k) with
    p_k = q^k (1 − q)^(n − k) and f(p) = (1 − p)^T − 1 + T·p.
    """
    assert len(groups) == 1
    count, keep = groups[0]
    total = 0.0
    for kept in range(count + 1):
        probability = keep**kept * (1 - keep) ** (count - kept)
        repeats_of_mask = (1 - probability) ** steps - 1 + steps * probability
        total += math.comb(count, kept) * repeats_of_mask
    return total


def _save_view_screenshots(
    page: sync_api.Page, name: str, selectors: list[str]
) -> None:
    """Save each view at every viewport size, after the views redraw."""
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate(
            """() => new Promise(
                (resolve) => setTimeout(() => requestAnimationFrame(resolve), 600))"""
        )
        for selector in selectors:
            slug = selector.strip(".#").replace(" ", "-")
            path = ARTIFACTS / f"{name}-{slug}-{width}x{height}.png"
            page.locator(selector).screenshot(path=path)


def _save_tooltip_screenshots(page: sync_api.Page, selector: str) -> None:
    """Hover `selector` at every viewport size and save the panel with its tooltip."""
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.mouse.move(0, 0)
        page.locator(selector).hover()
        # a first-hidden-layer unit of 8×8 digits shows its incoming weights as an image
        sync_api.expect(page.locator(".tooltip canvas")).to_be_visible(
            timeout=TIMEOUT_MS
        )
        panel = page.locator(".network-panel").bounding_box()
        tooltip = page.locator(".tooltip").bounding_box()
        assert panel is not None and tooltip is not None
        left = min(panel["x"], tooltip["x"])
        top = min(panel["y"], tooltip["y"])
        right = max(panel["x"] + panel["width"], tooltip["x"] + tooltip["width"])
        bottom = max(panel["y"] + panel["height"], tooltip["y"] + tooltip["height"])
        page.screenshot(
            path=ARTIFACTS / f"lessons-tooltip-{width}x{height}.png",
            clip={"x": left, "y": top, "width": right - left, "height": bottom - top},
        )


def test_counts_and_pins_match_frames(page: sync_api.Page, server: LiveServer) -> None:
    frames = collect_binary_frames(page)
    run_id = create_full_speed_run(
        page, {"#field-epochs": "2"}, {"#field-dataset": "digits"}
    )
    for layer, source, destination in PINNED_WEIGHTS:
        _click_cell(page, layer, source, destination)
    sync_api.expect(page.locator(".pinned-card")).to_have_count(len(PINNED_WEIGHTS))
    steps = _train_to_end(page, server, run_id)

    wait_for_frames(page, frames, steps - 1)
    masks = _step_masks(frames)
    assert len(masks) == steps
    layer_sizes = [64, 128, 128, 10]
    assert _merged_frame_count(frames, layer_sizes) > 0, "no merged frame was tested"
    kept = [np.sum([step[layer] for step in masks], axis=0) for layer in range(3)]

    # kept share of three units, hovered in the network view
    for layer, unit in CHOSEN_UNITS:
        page.locator(
            f"#network circle[data-layer='{layer}'][data-unit='{unit}']"
        ).hover()
        count, total = _tooltip_numbers(page, f"unit:{layer}:{unit}", KEPT_PATTERN)
        assert total == steps, f"unit {layer}:{unit} steps"
        assert count == int(kept[layer][unit]), f"unit {layer}:{unit} kept count"

    # trained share of three weights, hovered in the heatmaps
    for layer, source, destination in CHOSEN_WEIGHTS:
        destination_kept = (
            [step[layer + 1][destination] for step in masks]
            if layer + 1 < 3
            else [True] * steps
        )
        expected = sum(
            bool(step[layer][source]) and bool(destination_in)
            for step, destination_in in zip(masks, destination_kept, strict=True)
        )
        _hover_cell(page, layer, source, destination)
        key = f"weight:{layer}:{source}:{destination}"
        count, total = _tooltip_numbers(page, key, TRAINED_PATTERN)
        assert total == steps, f"W[{layer}][{source}][{destination}] steps"
        assert count == expected, f"W[{layer}][{source}][{destination}] trained count"

    # each pinned weight's chart marks exactly the steps that trained it
    for layer, source, destination in PINNED_WEIGHTS:
        trained = sum(
            bool(step[layer][source])
            and (layer + 1 == 3 or bool(step[layer + 1][destination]))
            for step in masks
        )
        chart = page.locator(
            f".pinned-card[data-key='{layer}:{source}:{destination}'] canvas"
        )
        assert chart.get_attribute("data-update-marks") == str(trained)
        assert int(chart.get_attribute("data-merged-points") or "0") > 0

    distinct = len({b"".join(np.packbits(m).tobytes() for m in step) for step in masks})
    meter = page.locator(".meter")
    assert meter.locator("#meter-distinct").get_attribute("data-value") == str(distinct)
    assert meter.locator("#meter-repeats").get_attribute("data-value") == str(
        steps - distinct
    )

    # the lesson: a hidden-to-hidden weight at drop rate 0.5 trains in 0.25 of the steps
    lesson = page.locator("#counts-lesson")
    sync_api.expect(lesson).to_contain_text("0.5 × 0.5 = 0.25 of the steps, not 0.5")
    mean_share = float(
        page.locator(".counts-weight-figure[data-layer='1']").get_attribute(
            "data-mean-share"
        )
        or "nan"
    )
    expected_share = float(np.mean([np.outer(s[1], s[2]).mean() for s in masks]))
    assert mean_share == pytest.approx(expected_share, abs=1e-4)

    # W[1]'s share map has a pixel per weight: the most and the least trained
    # weights differ in colour, and redrawing at another size changes nothing
    trained = np.sum([np.outer(step[1], step[2]) for step in masks], axis=0)
    most = np.unravel_index(np.argmax(trained), trained.shape)
    least = np.unravel_index(np.argmin(trained), trained.shape)
    before = _count_map_pixels(page, 1)
    assert before.shape[:2] == trained.shape
    assert not np.array_equal(before[most], before[least])
    for width, height in [(1920, 1080), (1280, 800)]:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(500)
    np.testing.assert_array_equal(_count_map_pixels(page, 1), before)

    _save_view_screenshots(
        page,
        "lessons",
        [".network-panel", ".pinned-panel", ".counts-panel", ".meter-panel"],
    )
    _save_tooltip_screenshots(page, "#network circle[data-layer='1'][data-unit='17']")


def test_pinned_weight_sgd_recurrence(page: sync_api.Page, server: LiveServer) -> None:
    """At 20 steps/s each frame is one step, so plain SGD reveals each gradient."""
    frames = collect_binary_frames(page)
    layer, source, destination = PINNED_WEIGHTS[1]
    run_id = create_full_speed_run(
        page, {"#field-epochs": "1"}, {"#field-dataset": "digits"}
    )
    page.select_option("#field-speed", "20")
    _click_cell(page, layer, source, destination)
    page.click("#button-start")
    wait_for_step(page, 30)
    pause_run(page)
    assert run_id

    card = page.locator(f".pinned-card[data-key='{layer}:{source}:{destination}']")
    update = card.locator(".pinned-updates li").filter(has_text="∂L/∂a = −Δa/η").first
    sync_api.expect(update).to_be_visible(timeout=TIMEOUT_MS)
    title = update.locator(".pinned-update-title").inner_text()
    step = int(re.match(r"step (\d+): in the sub-network at step \1", title).group(1))
    math_text = update.locator(".pinned-update-math").inner_text().replace("−", "-")
    after, before, rate, gradient = (
        float(v)
        for v in re.search(r":\s+(\S+) = (\S+) - (\S+) × (\S+)$", math_text).groups()
    )
    assert rate == 0.03
    assert after == pytest.approx(before - rate * gradient, rel=1e-3, abs=1e-6)

    # the gradient is −Δw/η of that step's frame
    wait_for_frames(page, frames, step)
    snapshot = decode_snapshot(
        next(f for f in frames if frame_type(f) == FRAME_SNAPSHOT)
    )
    layer_sizes = snapshot.meta["layer_sizes"]
    frame = next(
        decoded
        for decoded in (
            decode_steps(f, layer_sizes) for f in frames if frame_type(f) == FRAME_STEPS
        )
        if decoded.first_step == step
    )
    assert frame.step_count == 1
    delta = float(frame.weight_deltas[layer][source, destination])
    assert gradient == pytest.approx(-delta / 0.03, rel=1e-4)
    _save_view_screenshots(page, "lessons-sgd", [".pinned-panel"])


def test_meter_eight_units_repeat(page: sync_api.Page, server: LiveServer) -> None:
    """moons, one hidden layer of 8 units, input drop rate 0: 2^8 sub-networks."""
    frames = collect_binary_frames(page)
    run_id = create_full_speed_run(
        page,
        {
            "#field-hidden-sizes": "8",
            "#field-input-drop-rate": "0",
            "#field-n-samples": "800",
            "#field-batch-size": "12",
            "#field-epochs": "40",
        },
        {"#field-dataset": "moons"},
    )
    steps = _train_to_end(page, server, run_id)
    assert steps == 2000  # 600 training points in batches of 12, 40 epochs

    wait_for_frames(page, frames, steps - 1)
    masks = _step_masks(frames)
    distinct = len({np.packbits(step[1]).tobytes() for step in masks})
    assert all(step[0].all() for step in masks), "input drop rate 0 keeps every input"
    repeats = steps - distinct
    assert repeats > 1500

    assert page.locator("#meter-distinct").get_attribute("data-value") == str(distinct)
    assert page.locator("#meter-repeats").get_attribute("data-value") == str(repeats)
    expected = float(
        page.locator("#meter-expected").get_attribute("data-value") or "nan"
    )
    assert expected == pytest.approx(_expected_repeats(steps, [(8, 0.5)]), rel=1e-9)
    assert page.locator("#meter-possible").inner_text() == "2⁸ = 256"
    sync_api.expect(page.locator("#meter-verdict")).to_contain_text("fails here")
    _save_view_screenshots(page, "lessons-eight-units", [".meter-panel"])


def test_meter_large_network_no_repeats(
    page: sync_api.Page, server: LiveServer
) -> None:
    """digits, hidden layers 512-512: 64 + 1,024 droppable units, 2^1,088 sub-networks.

    An MNIST-shaped 784-512-512-10 network would need MNIST files; 64-512-512-10
    has the same hidden layers and just as hopeless odds of a repeat.
    """
    frames = collect_binary_frames(page)
    run_id = create_full_speed_run(
        page,
        {"#field-hidden-sizes": "512,512", "#field-epochs": "12"},
        {"#field-dataset": "digits"},
    )
    steps = _train_to_end(page, server, run_id)
    assert steps >= 2000

    wait_for_frames(page, frames, steps - 1)
    masks = _step_masks(frames)
    distinct = len({b"".join(np.packbits(m).tobytes() for m in step) for step in masks})
    assert distinct == steps
    assert page.locator("#meter-distinct").get_attribute("data-value") == str(steps)
    assert page.locator("#meter-repeats").get_attribute("data-value") == "0"
    sync_api.expect(page.locator("#meter-verdict")).to_contain_text("holds here")

    # the birthday series' first term, C(T, 2) Σ p(m)², is C(T, 2) Π (q² + (1 − q)²)^n
    log10_expected = (
        math.log10(math.comb(steps, 2))
        + 64 * math.log10(0.8**2 + 0.2**2)
        + 1024 * math.log10(0.5)
    )
    shown = float(page.locator("#meter-expected").get_attribute("data-log10") or "nan")
    assert shown == pytest.approx(log10_expected, abs=1e-6)
    assert page.locator("#network svg").get_attribute("data-view") == "summary"
    _save_view_screenshots(
        page,
        "lessons-512",
        [".network-panel", ".meter-panel", ".counts-panel", ".heatmap-panel"],
    )


def test_opened_run_counts_recorded_steps(
    browser: sync_api.Browser, page_errors: PageErrors, server: LiveServer
) -> None:
    """A finished run opened from its link counts every recorded step.

    The page connects after the last step, so every step reaches it from the
    server's step history rather than from the stream.
    """
    body = {
        "dataset": "moons",
        "n_samples": 800,
        "hidden_sizes": [8],
        "input_drop_rate": 0,
        "batch_size": 12,
        "epochs": 40,
    }
    run_id = httpx.post(f"{server.base_url}/api/runs", json=body).json()["id"]
    httpx.post(f"{server.base_url}/api/runs/{run_id}/start")
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    run = {"status": "created"}
    while run["status"] != "finished" and time.monotonic() < deadline:
        time.sleep(0.1)
        run = httpx.get(f"{server.base_url}/api/runs/{run_id}").json()
    assert run["status"] == "finished"
    steps = int(run["step"])
    assert steps == 2000  # 600 training points in batches of 12, 40 epochs

    recorded = httpx.get(
        f"{server.base_url}/api/runs/{run_id}/steps",
        params={"first": 0, "count": steps},
    ).json()
    assert recorded["step_count"] == steps
    distinct = len({base64.b64decode(masks) for masks in recorded["masks"]})

    page = open_dashboard(browser, page_errors, f"{server.base_url}/#run={run_id}")
    try:
        page.wait_for_function(
            "(steps) => document.querySelector('#meter-steps').dataset.value === steps",
            arg=str(steps),
            timeout=TIMEOUT_MS,
        )
        meter = page.locator(".meter-panel")
        assert meter.locator("#meter-distinct").get_attribute("data-value") == str(
            distinct
        )
        assert meter.locator("#meter-repeats").get_attribute("data-value") == str(
            steps - distinct
        )
        page.locator(".counts-panel").scroll_into_view_if_needed()
        sync_api.expect(page.locator("#counts-summary")).to_contain_text(
            f"{steps:,} steps, steps 0–{steps - 1}", timeout=TIMEOUT_MS
        )
        losses = page.evaluate(
            """(steps) => Array.from(window.dropviz.store.losses.values.slice(0, steps))
                .filter(Number.isFinite).length""",
            steps,
        )
        assert losses == steps
    finally:
        page.context.close()
