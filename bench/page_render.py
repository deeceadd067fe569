"""Rendering cost of the dashboard page while a large run trains at full speed.

Starts `python -m dropviz serve` on a free 127.0.0.1 port, opens the page in
headless Chromium (Debian's /usr/bin/chromium), creates a digits run with the
given hidden layers through the form and starts it at full speed. After a
warm-up it records, for `--seconds`:

- every requestAnimationFrame interval, from a rAF loop injected before the
  page's scripts (so the loop itself keeps frames coming);
- every main-thread task over 50 ms, from PerformanceObserver "longtask";
- steps the page received and steps the server trained.

Usage: python bench/page_render.py [--hidden 512,512] [--hidden 2000,2000]
       [--seconds 10] [--warmup 3]
The last line of output is one JSON object with the numbers of every network.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from playwright import sync_api

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
VIEWPORT = {"width": 1280, "height": 800}
SERVER_START_TIMEOUT = 30.0  # seconds

# Runs before the page's own scripts: records rAF timestamps and long tasks.
PROBE = """
window.__bench = { frames: [], longTasks: [], recording: false };
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (window.__bench.recording) window.__bench.longTasks.push(entry.duration);
  }
});
observer.observe({ type: "longtask", buffered: false });
const tick = (timestamp) => {
  if (window.__bench.recording) window.__bench.frames.push(timestamp);
  requestAnimationFrame(tick);
};
requestAnimationFrame(tick);
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "dropviz", "serve", "--port", str(port)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/api/health", timeout=1.0).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not respond within {SERVER_START_TIMEOUT} s")


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(
    browser: sync_api.Browser, base_url: str, hidden: str, seconds: float, warmup: float
) -> dict[str, Any]:
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(PROBE)
    page = context.new_page()
    page.goto(base_url)
    page.wait_for_selector("#field-dataset option[value='digits']", state="attached")
    page.select_option("#field-dataset", "digits")
    page.fill("#field-hidden-sizes", hidden)
    page.fill("#field-epochs", "200")
    page.select_option("#field-speed", "")
    page.click("#button-new")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "created", timeout=60_000
    )
    run_id = page.locator("#counter-run").get_attribute("title")
    page.click("#button-start")
    page.wait_for_timeout(warmup * 1000)

    server_start = httpx.get(f"{base_url}/api/runs/{run_id}", timeout=30).json()
    page_start = page.evaluate("window.dropviz.store.nextStep")
    page.evaluate("window.__bench.recording = true")
    page.wait_for_timeout(seconds * 1000)
    page.evaluate("window.__bench.recording = false")
    server_end = httpx.get(f"{base_url}/api/runs/{run_id}", timeout=30).json()
    page_end = page.evaluate("window.dropviz.store.nextStep")
    view = page.evaluate("document.querySelector('#network svg').dataset.view")
    frames = page.evaluate("window.__bench.frames")
    long_tasks = page.evaluate("window.__bench.longTasks")
    httpx.post(f"{base_url}/api/runs/{run_id}/stop", timeout=30)
    context.close()

    intervals = [b - a for a, b in zip(frames, frames[1:], strict=False)]
    return {
        "hidden_sizes": hidden,
        "network_view": view,
        "seconds": seconds,
        "animation_frames": len(frames),
        "frame_interval_ms_p50": round(percentile(intervals, 0.50), 1),
        "frame_interval_ms_p95": round(percentile(intervals, 0.95), 1),
        "frame_interval_ms_p99": round(percentile(intervals, 0.99), 1),
        "frame_interval_ms_max": round(max(intervals, default=float("nan")), 1),
        "long_tasks": len(long_tasks),
        "long_task_ms_max": round(max(long_tasks, default=0.0), 1),
        "long_task_ms_total": round(sum(long_tasks), 1),
        "page_steps_per_second": round((page_end - page_start) / seconds, 1),
        "server_steps_per_second": round(
            (server_end["step"] - server_start["step"]) / seconds, 1
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--hidden",
        action="append",
        help="hidden layer sizes of a digits run, such as 512,512; repeatable "
        "(default: 512,512 and 2000,2000)",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per network"
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of training before"
    )
    args = parser.parse_args()
    hidden_sizes = args.hidden or ["512,512", "2000,2000"]

    results = []
    with tempfile.TemporaryDirectory() as folder:
        process, base_url = start_server(Path(folder) / "server.log")
        try:
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                for hidden in hidden_sizes:
                    result = measure(
                        browser, base_url, hidden, args.seconds, args.warmup
                    )
                    print(json.dumps(result))
                    results.append(result)
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=10)

    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "chromium": subprocess.run(
            [CHROMIUM, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }
    print(json.dumps({"machine": machine, "viewport": VIEWPORT, "results": results}))


if __name__ == "__main__":
    main()
