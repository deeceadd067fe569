"""Browser tests of slow motion on the step-locked stream.

The tests record the WebSocket messages the page receives and sends and
decode the frames with `dropviz.streaming.frames`. They check the server's
step count against the acknowledgements, the captions' order and numbers
against each frame, and the flashed heatmap cells against each frame's
nonzero deltas. Screenshots go to tests/frontend/artifacts/.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
    create_full_speed_run,
    pause_run,
    wait_for_redraw,
)

pytestmark = pytest.mark.browser

HIDDEN_SIZES = "8,8"
LAYER_NAMES = ["input", "hidden 1", "hidden 2"]  # the masked unit layers of 2-8-8-2
PHASE_ORDER = ["mask", "forward", "loss", "backward", "update"]
PLAYED_STEPS = 3
SHORT_PHASE_SECONDS = 0.3  # the shortest the control allows


@dataclass
class SocketLog:
    """Every message of the page's WebSockets, in order."""

    received: list[bytes] = field(default_factory=list)
    sent: list[dict[str, object]] = field(default_factory=list)

    def steps_frames(self) -> list[StepsFrame]:
        snapshots = [m for m in self.received if frame_type(m) == FRAME_SNAPSHOT]
        assert len(snapshots) == 1, "the page reconnected, so steps may be missing"
        layer_sizes = decode_snapshot(snapshots[0]).meta["layer_sizes"]
        return [
            decode_steps(message, layer_sizes)
            for message in self.received
            if frame_type(message) == FRAME_STEPS
        ]

    def acks(self) -> list[int]:
        return [int(str(m["step"])) for m in self.sent if m["type"] == "ack"]


def _record_sockets(page: sync_api.Page) -> SocketLog:
    log = SocketLog()

    def on_websocket(websocket: sync_api.WebSocket) -> None:
        def on_received(payload: str | bytes) -> None:
            if isinstance(payload, bytes):
                log.received.append(payload)

        def on_sent(payload: str | bytes) -> None:
            if isinstance(payload, str):
                log.sent.append(json.loads(payload))

        websocket.on("framereceived", on_received)
        websocket.on("framesent", on_sent)

    page.on("websocket", on_websocket)
    return log


def _record_captions(page: sync_api.Page) -> None:
    """Log every caption the page shows as [step, phase, text] in window.captions."""
    page.evaluate(
        """() => {
            window.captions = [];
            const caption = document.querySelector("#slowmo-caption");
            const record = () => {
                const { step, phase } = caption.dataset;
                const entry = [step, phase, caption.textContent];
                const last = window.captions[window.captions.length - 1];
                if (last === undefined || last.join() !== entry.join()) {
                    window.captions.push(entry);
                }
            };
            new MutationObserver(record).observe(caption, {
                attributes: true, childList: true, subtree: true, characterData: true,
            });
        }"""
    )


def _turn_on(page: sync_api.Page, phase_seconds: float) -> None:
    page.click("#slowmo-toggle")
    sync_api.expect(page.locator("#slowmo-toggle")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.eval_on_selector(
        "#slowmo-seconds",
        """(input, seconds) => {
            input.value = String(seconds);
            input.dispatchEvent(new Event("input"));
        }""",
        phase_seconds,
    )
    sync_api.expect(page.locator("#slowmo-seconds-value")).to_have_text(
        f"{phase_seconds:.1f} s"
    )


def _create_moons_run(page: sync_api.Page, selects: dict[str, str]) -> str:
    return create_full_speed_run(
        page,
        # Enough epochs that the run is still training when a test pauses it.
        {"#field-hidden-sizes": HIDDEN_SIZES, "#field-epochs": "2000"},
        {"#field-dataset": "moons", **selects},
    )


def _wait_until(page: sync_api.Page, condition: Callable[[], bool], what: str) -> None:
    """Poll `condition()` with Playwright waits, which deliver the socket events."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        page.wait_for_timeout(50)


def _server_step(server: LiveServer, run_id: str) -> int:
    run = httpx.get(f"{server.base_url}/api/runs/{run_id}", timeout=30.0).json()
    return int(run["step"])


def _pause_after_acks(page: sync_api.Page, log: SocketLog, count: int) -> int:
    """Let the page play until it acknowledged `count` steps, then pause it.

    Returns the acknowledgements sent by then; a pause may land a step late.
    Waits until the frame after the last acknowledged step has arrived, so the
    server has trained it and holds.
    """
    _wait_until(page, lambda: len(log.acks()) >= count, f"{count} acknowledgements")
    page.click("#slowmo-pause")
    sync_api.expect(page.locator("#slowmo")).to_have_attribute("data-state", "paused")
    acked = len(log.acks())
    _wait_until(
        page,
        lambda: sum(f.step_count for f in log.steps_frames()) == acked + 1,
        "the frame of the held step",
    )
    return acked


def _kept_text(frame: StepsFrame) -> str:
    parts = []
    for name, mask in zip(LAYER_NAMES, frame.masks[0], strict=True):
        parts.append(f"{name} {int(mask.sum())} of {len(mask)}")
    return ", ".join(parts)


def _phase_runs(captions: list[list[str]], step: int) -> list[str]:
    """The phases a step's captions went through, repeats of one phase merged."""
    phases: list[str] = []
    for caption_step, phase, _ in captions:
        if caption_step == str(step) and (not phases or phases[-1] != phase):
            phases.append(phase)
    return phases


def _caption_of(captions: list[list[str]], step: int, phase: str) -> str:
    texts = [t for s, p, t in captions if s == str(step) and p == phase]
    assert texts, f"no {phase} caption for step {step}"
    return texts[0]


def test_slow_motion_one_step_per_played_step(
    page: sync_api.Page, server: LiveServer
) -> None:
    log = _record_sockets(page)
    _turn_on(page, SHORT_PHASE_SECONDS)
    run_id = _create_moons_run(page, {})
    _record_captions(page)
    page.click("#button-start")

    acked = _pause_after_acks(page, log, PLAYED_STEPS)
    frames = log.steps_frames()
    # the server trained each acknowledged step and one more, then waits for its ack
    assert _server_step(server, run_id) == acked + 1
    page.wait_for_timeout(500)
    assert _server_step(server, run_id) == acked + 1
    assert [(f.first_step, f.step_count) for f in frames] == [
        (step, 1) for step in range(acked + 1)
    ]
    assert log.acks() == list(range(acked))
    options = [m for m in log.sent if m["type"] == "options"]
    assert options[-1] == {"type": "options", "step_locked": True}

    captions: list[list[str]] = page.evaluate("window.captions")
    for step in range(acked):
        frame = frames[step]
        assert _phase_runs(captions, step) == PHASE_ORDER
        mask_caption = _caption_of(captions, step, "mask")
        assert f"This step keeps {_kept_text(frame)};" in mask_caption
        assert "input q = 0.8, hidden 1 q = 0.5, hidden 2 q = 0.5" in mask_caption
        forward_caption = _caption_of(captions, step, "forward")
        assert "multiplied by 1/q (inverted dropout" in forward_caption
        assert "×1.25 for input, ×2 for hidden 1, ×2 for hidden 2" in forward_caption
        assert f"is {float(frame.losses[0]):.4f}" in _caption_of(captions, step, "loss")
        changed = sum(
            int(np.count_nonzero(d)) for d in frame.weight_deltas if d is not None
        )
        total = sum(d.size for d in frame.weight_deltas if d is not None)
        update_caption = _caption_of(captions, step, "update")
        assert f"{changed} of {total} weights changed" in update_caption

    # off: the options go back to the normal pace and the run trains freely
    page.click("#slowmo-toggle")
    assert {"type": "options", "step_locked": False} in log.sent
    _wait_until(
        page,
        lambda: _server_step(server, run_id) > acked + 20,
        "training at full speed",
    )
    pause_run(page)


def _overlay_cells(
    page: sync_api.Page, layer: int
) -> tuple[int, np.ndarray, np.ndarray]:
    """Return the flashed step and its (rows, columns) flashed and darkened cells."""
    step, rows, flash, dim = page.evaluate(
        """(layer) => {
            const figure = document.querySelector(`.heatmap[data-layer="${layer}"]`);
            const alpha = (canvas) => {
                const { width, height } = canvas;
                const context = canvas.getContext("2d");
                const pixels = context.getImageData(0, 0, width, height).data;
                return Array.from(
                    { length: width * height }, (_, i) => pixels[4 * i + 3] > 0);
            };
            const flash = figure.querySelector(".flash-cells");
            const dim = figure.querySelector(".flash-dim");
            return [Number(flash.dataset.step), flash.height, alpha(flash), alpha(dim)];
        }""",
        layer,
    )
    return (
        int(step),
        np.asarray(flash, dtype=bool).reshape(rows, -1),
        np.asarray(dim, dtype=bool).reshape(rows, -1),
    )


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_slow_motion_flash_matches_deltas(
    page: sync_api.Page, server: LiveServer, optimizer: str
) -> None:
    log = _record_sockets(page)
    _turn_on(page, SHORT_PHASE_SECONDS)
    _create_moons_run(page, {"#field-optimizer": optimizer})
    page.click("#button-start")
    _pause_after_acks(page, log, PLAYED_STEPS)
    frames = log.steps_frames()

    outside_moved = 0
    for layer in range(3):
        step, flashed, darkened = _overlay_cells(page, layer)
        assert step >= PLAYED_STEPS - 1, "the flash shows a played step"
        deltas = frames[step].weight_deltas[layer]
        assert deltas is not None
        # one cell per weight: the 2-8-8-2 maps are far below the block limits
        assert flashed.shape == deltas.shape
        assert np.array_equal(flashed, deltas != 0)
        assert np.array_equal(darkened, deltas == 0)

        masks = frames[step].masks[0]
        inside = masks[layer][:, None] & (
            masks[layer + 1][None, :] if layer + 1 < len(masks) else True
        )
        outside_moved += int(np.count_nonzero(flashed & ~inside))
    if optimizer == "sgd":
        assert outside_moved == 0  # plain SGD: a weight outside has gradient 0
    else:
        assert outside_moved > 0  # the velocity moves weights outside too
    page.click("#slowmo-toggle")
    page.click("#button-pause")


def test_slow_motion_in_link_and_classroom(
    page: sync_api.Page, server: LiveServer
) -> None:
    page.goto(f"{server.base_url}/#classroom=1&slowmo=0.5")
    page.reload()  # a new fragment alone does not load the page again
    toggle = page.locator("#slowmo-toggle")
    sync_api.expect(toggle).to_have_attribute("aria-pressed", "true")
    sync_api.expect(page.locator("#slowmo-seconds-value")).to_have_text("0.5 s")
    sync_api.expect(page.locator("#slowmo")).to_be_visible()
    assert page.locator(".sidebar").is_hidden()
    assert "slowmo=0.5" in page.url

    toggle.click()
    sync_api.expect(toggle).to_have_attribute("aria-pressed", "false")
    assert "slowmo=" not in page.url


def test_slow_motion_screenshots(page: sync_api.Page) -> None:
    _turn_on(page, 1.0)
    _create_moons_run(page, {})
    page.click("#button-start")
    caption = page.locator("#slowmo-caption")
    shown_phases = []
    ARTIFACTS.mkdir(exist_ok=True)
    for phase, target in [("forward", "#network"), ("update", "#heatmaps")]:
        if page.locator("#slowmo").get_attribute("data-state") == "paused":
            page.click("#slowmo-pause")  # continue to the next phase to show
        sync_api.expect(caption).to_have_attribute(
            "data-phase", phase, timeout=TIMEOUT_MS
        )
        page.click("#slowmo-pause")
        shown_phase = caption.get_attribute("data-phase")
        shown_phases.append(shown_phase)
        for width, height in VIEWPORTS:
            page.set_viewport_size({"width": width, "height": height})
            page.locator(target).scroll_into_view_if_needed()
            wait_for_redraw(page)
            page.screenshot(
                path=ARTIFACTS / f"slowmo-{shown_phase}-{width}x{height}.png"
            )
    assert shown_phases == ["forward", "update"]
    page.click("#slowmo-toggle")
    page.click("#button-pause")
