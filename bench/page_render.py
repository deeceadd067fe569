"""Rendering cost of the dashboard page while a large run trains at full speed.

Starts `python -m dropviz serve` on a free 127.0.0.1 port, opens the page in
headless Chromium (Debian's /usr/bin/chromium), creates a run of the given
network through the form and starts it at full speed. A network with 64
inputs trains on digits; one with 784 inputs on MNIST-format IDX files of
generated 28x28 images (tests/idx_files.py) written to a temporary folder
that the server reads as DROPVIZ_DATA_DIR. After a warm-up it records, for
`--seconds`:

- every requestAnimationFrame interval, from a rAF loop injected before the
  page's scripts (so the loop itself keeps frames coming);
- every frame's main-thread work: from the probe's rAF callback, the first
  of the frame, to a message posted there, which runs after the page's
  callbacks and the frame's style, layout, paint and commit;
- every main-thread task over 50 ms, from PerformanceObserver "longtask",
  and the scripts of the longest animation frame over 50 ms, from
  "long-animation-frame";
- steps the page received and steps the server trained;
- the CPU time of the page's main thread and of its renderer process (the
  stream worker included), from the DevTools metrics ThreadTime and
  ProcessTime. Unlike the frame intervals, these hardly change when other
  programs load the machine;
- the 1-minute load average of the machine before and after.

With `--screenshot-dir`, it then saves full-page screenshots of the page,
still training, at 1280x800 and 1920x1080.

Usage, from the repository root:
    python bench/page_render.py [--network 64-128-128-10]
        [--network 784-512-512-10] [--rounds 3] [--seconds 10] [--warmup 3]
        [--viewport 1280x800] [--screenshot-dir DIR]
The last line of output is one JSON object with the numbers of every round.
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

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
from tests.idx_files import write_mnist_folder  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
DEFAULT_VIEWPORT = "1280x800"
SCREENSHOT_VIEWPORTS = [(1280, 800), (1920, 1080)]
SERVER_START_TIMEOUT = 30.0  # seconds
DATASET_BY_INPUTS = {64: "digits", 784: "mnist"}
MNIST_TRAIN_IMAGES = 6000
MNIST_TEST_IMAGES = 1000
FRAME_MS = 1000 / 60
OBSERVER_DELIVERY_MS = 2000

# Runs before the page's own scripts, so its rAF callback runs first in every
# frame. It records each frame's timestamp and the main thread's work for the
# frame: from its rAF callback to a message posted there, which runs as the
# next task, after the page's callbacks and the frame's style, layout, paint
# and commit. Long tasks and long animation frames keep their start time, so
# only those inside the window count, however late the observer delivers them.
PROBE = """
window.__bench = { frames: [], work: [], longTasks: [], longFrames: [], window: null };
const inWindow = (start) =>
  window.__bench.window !== null && start >= window.__bench.window[0] &&
  (window.__bench.window[1] === null || start <= window.__bench.window[1]);
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.__bench.longTasks.push([entry.startTime, entry.duration]);
  }
}).observe({ type: "longtask", buffered: false });
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.__bench.longFrames.push({
      start: entry.startTime,
      duration: entry.duration,
      scripts: entry.scripts.map((script) => ({
        source: `${script.sourceURL.split("/").pop()}:${script.sourceFunctionName}`,
        invoker: script.invokerType,
        duration: script.duration,
        forcedLayout: script.forcedStyleAndLayoutDuration,
      })),
    });
  }
}).observe({ type: "long-animation-frame", buffered: false });
const channel = new MessageChannel();
let frameStart = 0;
channel.port1.onmessage = () => {
  if (inWindow(frameStart)) window.__bench.work.push(performance.now() - frameStart);
};
const tick = (timestamp) => {
  frameStart = performance.now();
  if (inWindow(frameStart)) window.__bench.frames.push(timestamp);
  channel.port2.postMessage(null);
  requestAnimationFrame(tick);
};
requestAnimationFrame(tick);
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(log_path: Path, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log_file = log_path.open("wb")
    # A state folder beside the data, removed with it: runs of this benchmark
    # must not land in the user's default state folder.
    environment = {
        **os.environ,
        "DROPVIZ_DATA_DIR": str(data_dir),
        "DROPVIZ_STATE_DIR": str(log_path.parent / "state"),
    }
    environment.setdefault("OPENBLAS_NUM_THREADS", "1")
    process = subprocess.Popen(
        [sys.executable, "-m", "dropviz", "serve", "--port", str(port)],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=environment,
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


def parse_network(text: str) -> tuple[str, str]:
    """Return the data set and the hidden sizes of a network such as 64-128-128-10."""
    try:
        sizes = [int(size) for size in text.split("-")]
    except ValueError:
        sizes = []
    if len(sizes) < 3 or sizes[0] not in DATASET_BY_INPUTS or sizes[-1] != 10:
        raise argparse.ArgumentTypeError(
            f"invalid network {text!r}: expected sizes joined by '-', with "
            f"{' or '.join(map(str, DATASET_BY_INPUTS))} inputs and 10 outputs, "
            "such as 784-512-512-10"
        )
    return DATASET_BY_INPUTS[sizes[0]], ",".join(map(str, sizes[1:-1]))


def longest_frame_scripts(long_frames: list[dict[str, Any]]) -> list[str]:
    """Describe the scripts of the longest animation frame over 50 ms, if any."""
    if not long_frames:
        return []
    longest = max(long_frames, key=lambda frame: frame["duration"])
    return [
        f"{script['source']} ({script['invoker']}) {script['duration']:.0f} ms, "
        f"forced layout {script['forcedLayout']:.0f} ms"
        for script in longest["scripts"]
    ] or [f"no script: {longest['duration']:.0f} ms of style, layout and paint"]


def cpu_seconds(cdp: sync_api.CDPSession) -> tuple[float, float]:
    """Return the CPU seconds of the page's main thread and renderer process."""
    entries = cdp.send("Performance.getMetrics")["metrics"]
    metrics = {entry["name"]: entry["value"] for entry in entries}
    return metrics["ThreadTime"], metrics["ProcessTime"]


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def save_screenshots(page: sync_api.Page, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for width, height in SCREENSHOT_VIEWPORTS:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(1500)  # the views redraw at the new size
        page.screenshot(path=folder / f"{name}-{width}x{height}.png", full_page=True)


def parse_viewport(text: str) -> dict[str, int]:
    """Return Playwright's viewport for a size such as 1280x800."""
    width, _, height = text.partition("x")
    if not (width.isdigit() and height.isdigit()) or 0 in (int(width), int(height)):
        raise argparse.ArgumentTypeError(
            f"invalid viewport {text!r}: expected width and height in CSS "
            "pixels joined by 'x', such as 1920x1080"
        )
    return {"width": int(width), "height": int(height)}


def measure(
    browser: sync_api.Browser,
    base_url: str,
    viewport: dict[str, int],
    network: str,
    seconds: float,
    warmup: float,
    screenshot_dir: Path | None = None,
) -> dict[str, Any]:
    dataset, hidden = parse_network(network)
    load_before = load_average()
    context = browser.new_context(viewport=viewport)
    context.add_init_script(PROBE)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(base_url)
    page.wait_for_selector(
        f"#field-dataset option[value='{dataset}']:not([disabled])", state="attached"
    )
    page.select_option("#field-dataset", dataset)
    page.fill("#field-hidden-sizes", hidden)
    # enough epochs that the run still trains when the measurement ends
    page.fill("#field-epochs", "2000")
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
    thread_start, process_start = cpu_seconds(cdp)
    start = page.evaluate("(window.__bench.window = [performance.now(), null])[0]")
    page.wait_for_timeout(seconds * 1000)
    end = page.evaluate("window.__bench.window[1] = performance.now()")
    thread_end, process_end = cpu_seconds(cdp)
    server_end = httpx.get(f"{base_url}/api/runs/{run_id}", timeout=30).json()
    page_end = page.evaluate("window.dropviz.store.nextStep")
    view = page.evaluate("document.querySelector('#network svg').dataset.view")
    # Chromium delivers performance entries at low priority, sometimes seconds
    # late; the window filter drops those of the start-up.
    page.wait_for_timeout(OBSERVER_DELIVERY_MS)
    frames = page.evaluate("window.__bench.frames")
    work = page.evaluate("window.__bench.work")
    long_tasks = [
        duration
        for task_start, duration in page.evaluate("window.__bench.longTasks")
        if task_start < end and task_start + duration > start
    ]
    long_frames = [
        frame
        for frame in page.evaluate("window.__bench.longFrames")
        if frame["start"] < end and frame["start"] + frame["duration"] > start
    ]
    if screenshot_dir is not None:
        save_screenshots(page, screenshot_dir, network)
    httpx.post(f"{base_url}/api/runs/{run_id}/stop", timeout=30)
    context.close()

    intervals = [b - a for a, b in zip(frames, frames[1:], strict=False)]
    # an interval over 1.5 frames means at least one 60 Hz frame was skipped
    missed = sum(1 for interval in intervals if interval > 1.5 * FRAME_MS)
    return {
        "network": network,
        "dataset": dataset,
        "network_view": view,
        "seconds": seconds,
        "animation_frames": len(frames),
        "frame_interval_ms_p50": round(percentile(intervals, 0.50), 1),
        "frame_interval_ms_p95": round(percentile(intervals, 0.95), 1),
        "frame_interval_ms_p99": round(percentile(intervals, 0.99), 1),
        "frame_interval_ms_max": round(max(intervals, default=float("nan")), 1),
        "late_frame_share": round(missed / max(1, len(intervals)), 3),
        "frame_work_ms_p50": round(percentile(work, 0.50), 1),
        "frame_work_ms_p95": round(percentile(work, 0.95), 1),
        "frame_work_ms_p99": round(percentile(work, 0.99), 1),
        "frame_work_ms_max": round(max(work, default=float("nan")), 1),
        "long_tasks": len(long_tasks),
        "long_task_ms_max": round(max(long_tasks, default=0.0), 1),
        "long_task_ms_total": round(sum(long_tasks), 1),
        "longest_frame_scripts": longest_frame_scripts(long_frames),
        "page_steps_per_second": round((page_end - page_start) / seconds, 1),
        "server_steps_per_second": round(
            (server_end["step"] - server_start["step"]) / seconds, 1
        ),
        "main_thread_cpu_ms_per_s": round(
            1000 * (thread_end - thread_start) / seconds, 1
        ),
        "renderer_cpu_ms_per_s": round(
            1000 * (process_end - process_start) / seconds, 1
        ),
        "run_status_after": server_end["status"],
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--network",
        action="append",
        type=str,
        help="layer sizes, input first, such as 784-512-512-10; 64 inputs train "
        "on digits and 784 on generated MNIST-format images; repeatable "
        "(default: 64-128-128-10 and 784-512-512-10)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="measurements of every network"
    )
    parser.add_argument(
        "--screenshot-dir",
        type=Path,
        help="folder for screenshots of each network's page after its last round",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="measured seconds per network"
    )
    parser.add_argument(
        "--viewport",
        type=parse_viewport,
        default=parse_viewport(DEFAULT_VIEWPORT),
        help=f"page size in CSS pixels, such as 1920x1080; views outside it draw "
        f"less often (default: {DEFAULT_VIEWPORT})",
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds of training before"
    )
    args = parser.parse_args()
    networks = args.network or ["64-128-128-10", "784-512-512-10"]
    for network in networks:
        try:
            parse_network(network)
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))

    results = []
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        write_mnist_folder(
            data_dir / "mnist", n_train=MNIST_TRAIN_IMAGES, n_test=MNIST_TEST_IMAGES
        )
        process, base_url = start_server(Path(folder) / "server.log", data_dir)
        try:
            with sync_api.sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                for round_index in range(args.rounds):
                    for network in networks:
                        last_round = round_index + 1 == args.rounds
                        result = measure(
                            browser,
                            base_url,
                            args.viewport,
                            network,
                            args.seconds,
                            args.warmup,
                            args.screenshot_dir if last_round else None,
                        )
                        result["round"] = round_index + 1
                        print(json.dumps(result), flush=True)
                        results.append(result)
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=10)

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPOSITORY,
    ).stdout.strip()
    machine = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "chromium": subprocess.run(
            [CHROMIUM, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit,
        "machine": machine,
        "viewport": args.viewport,
        "results": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
