"""Helpers that the browser tests share: the Chromium they drive, page setup,
the WebSocket frames a page received, dashboard actions and screenshots.

The fixtures that use them are in tests/frontend/conftest.py.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright import sync_api

from dropviz.streaming.frames import FRAME_STEPS, frame_type
from tests.conftest import LiveServer

logger = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
TIMEOUT_MS = 60_000  # generous: a 2-core machine trains and rasterizes at once
DEFAULT_VIEWPORT: sync_api.ViewportSize = {"width": 1280, "height": 800}
VIEWPORTS = [(1280, 800), (1920, 1080)]


class PageErrors:
    """Uncaught errors of every page a test opened; empty at the end."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: sync_api.Page) -> sync_api.Page:
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        # pytest shows a failed test's captured log, so the page's warnings come with it
        page.on(
            "console",
            lambda message: (
                logger.warning("console.%s: %s", message.type, message.text)
                if message.type in ("error", "warning")
                else None
            ),
        )
        return page


def require_chromium() -> None:
    """Skip the test when Debian's Chromium is missing, or fail it in CI."""
    if CHROMIUM.exists():
        return
    reason = (
        f"{CHROMIUM} not found; install Debian's chromium package to run browser tests"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def new_page(
    browser: sync_api.Browser,
    errors: PageErrors,
    viewport: sync_api.ViewportSize = DEFAULT_VIEWPORT,
) -> sync_api.Page:
    """Open a blank page in a new browser context, for the caller to close."""
    context = browser.new_context(viewport=viewport)
    return errors.watch(context.new_page())


def open_dashboard(
    browser: sync_api.Browser,
    errors: PageErrors,
    url: str,
    viewport: sync_api.ViewportSize = DEFAULT_VIEWPORT,
) -> sync_api.Page:
    """Open the dashboard at `url` as `new_page` does and wait for its form.

    The form is ready once it lists the data sets.
    """
    page = new_page(browser, errors, viewport)
    page.goto(url)
    page.wait_for_selector("#field-dataset option[value='digits']", state="attached")
    return page


def collect_binary_frames(page: sync_api.Page) -> list[bytes]:
    """Return a list that fills with the binary frames the page's sockets receive."""
    frames: list[bytes] = []

    def on_websocket(websocket: sync_api.WebSocket) -> None:
        def on_frame(payload: str | bytes) -> None:
            if isinstance(payload, bytes):
                frames.append(payload)

        websocket.on("framereceived", on_frame)

    page.on("websocket", on_websocket)
    return frames


def wait_for_frames(page: sync_api.Page, frames: list[bytes], last_step: int) -> None:
    """Wait until `frames` contains the steps frame that covers `last_step`.

    The stream worker's socket reports its frames to Playwright through the
    worker's own DevTools session, so they can arrive after the page's DOM
    already shows the step.
    """
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        for message in frames:
            if frame_type(message) != FRAME_STEPS:
                continue
            first_step, step_count = struct.unpack_from("<QI", message, 8)
            if first_step + step_count - 1 >= last_step:
                return
        assert time.monotonic() < deadline, f"no frame of step {last_step} arrived"
        # a Playwright call, unlike time.sleep, lets the frame events arrive
        page.wait_for_timeout(100)


def create_run(
    page: sync_api.Page,
    fields: dict[str, str],
    selects: dict[str, str],
    speed: str | None = None,
) -> str:
    """Create a run through the form and return its id, not started.

    `selects` maps a select's CSS selector to the option to choose, and `fields`
    an input's selector to the text to fill in. `speed` is the #field-speed
    option chosen after them, where "" is full speed and None keeps the form's.
    """
    for selector, option in selects.items():
        page.select_option(selector, option)
    for selector, value in fields.items():
        page.fill(selector, value)
    if speed is not None:
        page.select_option("#field-speed", speed)
    page.click("#button-new")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "created", timeout=TIMEOUT_MS
    )
    page.wait_for_function("window.dropviz.store.hasSnapshot", timeout=TIMEOUT_MS)
    run_id = page.locator("#counter-run").get_attribute("title")
    assert run_id
    return run_id


def create_full_speed_run(
    page: sync_api.Page, fields: dict[str, str], selects: dict[str, str]
) -> str:
    """Create a full-speed run as `create_run` does and wait for its heatmaps."""
    run_id = create_run(page, fields, selects, speed="")
    page.wait_for_selector(".heatmap canvas", timeout=TIMEOUT_MS)
    return run_id


def start_digits_run(
    page: sync_api.Page,
    speed: str,
    mask_scope: str = "per-step",
    selects: dict[str, str] | None = None,
) -> None:
    """Create a digits run through the form and start it; `selects` maps a
    select's CSS selector to the option to choose, after the mask scope."""
    page.select_option("#field-dataset", "digits")
    page.select_option("#field-mask-scope", mask_scope)
    for selector, option in (selects or {}).items():
        page.select_option(selector, option)
    page.select_option("#field-speed", speed)
    page.click("#button-new")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "created", timeout=TIMEOUT_MS
    )
    page.click("#button-start")


def wait_for_step(page: sync_api.Page, step: int) -> None:
    page.wait_for_function(
        f"Number(document.querySelector('#counter-step').dataset.value) >= {step}",
        timeout=TIMEOUT_MS,
    )


def pause_run(page: sync_api.Page) -> None:
    page.click("#button-pause")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "paused", timeout=TIMEOUT_MS
    )


def drawn_units(page: sync_api.Page) -> list[tuple[int, int, str]]:
    """Return (layer, unit, kept) of every unit the network view draws."""
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


def read_page_weights(page: sync_api.Page) -> list[np.ndarray]:
    """Return the page's copy of the weights, read from the stream worker."""
    values = page.evaluate(
        "window.dropviz.readWeights().then((w) => w.weights.map((l) => Array.from(l)))"
    )
    return [np.asarray(layer, dtype=np.float32) for layer in values]


def read_server_weights(server: LiveServer, run_id: str) -> list[np.ndarray]:
    """Return the run's weight matrices from the server, each flattened."""
    response = httpx.get(f"{server.base_url}/api/runs/{run_id}/weights", timeout=30.0)
    response.raise_for_status()
    with np.load(io.BytesIO(response.content)) as archive:
        return [
            archive[f"W{layer}"].ravel() for layer in range(len(archive.files) // 2)
        ]


def boxes_overlap(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def wait_for_redraw(page: sync_api.Page) -> None:
    # two animation frames: the resize observer's redraw, then its paint
    page.evaluate(
        """() => new Promise((resolve) => requestAnimationFrame(
            () => requestAnimationFrame(resolve)))"""
    )


def save_screenshots(page: sync_api.Page, name: str, full_page: bool = True) -> None:
    """Save a screenshot at each of VIEWPORTS, after the views redraw."""
    ARTIFACTS.mkdir(exist_ok=True)
    for width, height in VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function(
            """() => {
                const view = document.querySelector("#network");
                const canvas = view.querySelector("canvas");
                return canvas.width === Math.round(view.clientWidth * devicePixelRatio);
            }""",
            timeout=TIMEOUT_MS,
        )
        wait_for_redraw(page)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(
            path=ARTIFACTS / f"{name}-{width}x{height}.png", full_page=full_page
        )
