"""Stream load benchmark: training speed, REST latency and memory under viewers.

Starts a dropviz server on 127.0.0.1 in a subprocess, with one 784-512-512-10
run over generated MNIST-shaped data (28x28 inputs, 10 classes), and
measures:

- training steps per second at full speed with 0, 1 and 20 viewers: real
  WebSocket connections with the dashboard's default options, all held by one
  client process that reads without decoding;
- latency of `GET /api/runs/{id}` while training with 5 viewers;
- server RSS over a window with one client that never reads (reconnected
  whenever the server drops it for sending no keepalive pongs);
- frames and MB per second per viewer, and the hub's merge cost per step.

Every loop is bounded and the script stops by itself; it contacts only the
server it started. The last line of output is one JSON object with all
figures. Run it from the repository root:

    .venv/bin/python bench/stream_load.py             # about 4 minutes
    .venv/bin/python bench/stream_load.py --rss-seconds 600  # 10-minute memory
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# One BLAS thread, as `dropviz serve` uses; it only takes effect before numpy loads.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import httpx  # noqa: E402
import numpy as np  # noqa: E402

SERVER_START_TIMEOUT = 60.0  # seconds
SETTLE_SECONDS = 1.5  # after starting the run, before measuring
LATENCY_INTERVAL = 0.02  # seconds between two latency probes
VIEWER_COUNTS = (0, 1, 20)
LATENCY_VIEWERS = 5
HIDDEN_SIZES = (512, 512)
TRAIN_SIZE = 6000
TEST_SIZE = 1000


# server process ----------------------------------------------------------------


def mnist_shaped_dataset(seed: int) -> Any:
    """Return 28x28 inputs in [0, 1], mostly zero like MNIST, with 10 classes.

    Each class has a random sparse stroke pattern; an example keeps about 80%
    of its class's pixels plus noise, so the task is learnable.
    """
    from dropviz.training.data import Dataset

    rng = np.random.default_rng(seed)
    count = TRAIN_SIZE + TEST_SIZE
    labels = rng.integers(0, 10, count)
    patterns = (rng.random((10, 784)) < 0.19) * rng.uniform(0.5, 1.0, (10, 784))
    kept = rng.random((count, 784)) < 0.8
    noise = (rng.random((count, 784)) < 0.02) * rng.random((count, 784))
    images = np.clip(patterns[labels] * kept + noise, 0.0, 1.0).astype(np.float32)
    return Dataset(
        name="mnist-shaped (generated)",
        x_train=images[:TRAIN_SIZE],
        y_train=labels[:TRAIN_SIZE].astype(np.int64),
        x_test=images[TRAIN_SIZE:],
        y_test=labels[TRAIN_SIZE:].astype(np.int64),
        class_names=tuple(str(k) for k in range(10)),
        input_shape=(28, 28),
        train_index=np.arange(TRAIN_SIZE),
        test_index=np.arange(TRAIN_SIZE, count),
    )


def serve(port: int, batch_size: int) -> None:
    """Run the benchmark server with one run; print its id once it listens."""
    import threading

    from fastapi.routing import APIRoute

    from dropviz.config import Settings
    from dropviz.main import create_app
    from dropviz.server import run_server
    from dropviz.training.config import TrainConfig

    # A state folder of its own, so that runs of earlier sessions stay out,
    # and room for the 20 viewers of one run.
    state_dir = tempfile.mkdtemp(prefix="dropviz-bench-")
    settings = Settings(
        host="127.0.0.1",
        port=port,
        log_level="warning",
        state_dir=Path(state_dir),
        max_clients_per_run=max(VIEWER_COUNTS) + 1,
    )
    app = create_app(settings)
    config = TrainConfig(
        hidden_sizes=HIDDEN_SIZES, batch_size=batch_size, epochs=10_000
    )
    run = app.state.runs.create(config, dataset=mnist_shaped_dataset(seed=0))

    def read_stats() -> dict[str, Any]:
        return {
            "steps": run.trainer.step_count,
            "merges": run.hub.merges,
            "seals": run.hub.seals,
            "publish_seconds": run.hub.publish_seconds,
        }

    # First in the route list, ahead of the page mounted at "/".
    app.router.routes.insert(0, APIRoute("/bench/stats", read_stats, methods=["GET"]))

    def announce() -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1.0)
                print(f"READY {run.id}", flush=True)
                return
            except httpx.TransportError:
                time.sleep(0.1)

    threading.Thread(target=announce, daemon=True).start()
    try:
        run_server(app, settings)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


# viewer process ----------------------------------------------------------------

# The dashboard requests at most this many bytes of deltas per second, as
# `requestFrameRate` in frontend/js/worker/streamWorker.js does, and sends no
# options when the server's default of 60 frames per second stays below it.
DASHBOARD_BYTES_PER_SECOND = 16_000_000
SERVER_FRAMES_PER_SECOND = 60


def dashboard_frame_rate(layer_sizes: list[int]) -> float | None:
    """Return the frame rate the dashboard requests for this network, or None."""
    delta_bytes = sum(
        4 * (n_in + 1) * n_out
        for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:], strict=True)
    )
    rate = max(1.0, math.floor(10 * DASHBOARD_BYTES_PER_SECOND / delta_bytes) / 10)
    return None if rate >= SERVER_FRAMES_PER_SECOND else rate


def view(url: str, count: int, window: float) -> None:
    """Hold `count` streams, read them without decoding, print per-stream counts.

    Counting starts when a line arrives on standard input and lasts `window`
    seconds; the streams are read all along.
    """
    asyncio.run(_view(url, count, window))


async def _view(url: str, count: int, window: float) -> None:
    from websockets.asyncio.client import connect

    connections = [
        await connect(url, max_size=None, compression=None, open_timeout=30)
        for _ in range(count)
    ]
    rate = dashboard_frame_rate([784, *HIDDEN_SIZES, 10])
    if rate is not None:
        for connection in connections:
            await connection.send(
                json.dumps({"type": "options", "max_frames_per_second": rate})
            )
    counts = [[0, 0] for _ in connections]  # binary messages, bytes
    counting = [False]

    async def read(index: int) -> None:
        async for message in connections[index]:
            if counting[0] and isinstance(message, bytes):
                counts[index][0] += 1
                counts[index][1] += len(message)

    readers = [asyncio.create_task(read(k)) for k in range(count)]
    print("CONNECTED", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu_start = time.process_time()
    counting[0] = True
    await asyncio.sleep(window)
    counting[0] = False
    report = {
        "frames": [c[0] for c in counts],
        "bytes": [c[1] for c in counts],
        "cpu_seconds": time.process_time() - cpu_start,
    }
    print(json.dumps(report))
    sys.stdout.flush()
    for task in readers:
        task.cancel()
    for connection in connections:
        await connection.close()


# driver ------------------------------------------------------------------------


class Bench:
    """The driver: owns the server process and the HTTP client."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.port = _free_port()
        self.server = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "serve",
                "--port",
                str(self.port),
                "--batch-size",
                str(args.batch_size),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.server.stdout is not None
        line = self.server.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError(f"benchmark server did not start: {line}")
        self.run_id = line[1]
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        self.ws_url = f"ws://127.0.0.1:{self.port}/ws/runs/{self.run_id}"

    def close(self) -> None:
        self.api.close()
        self.server.terminate()
        try:
            self.server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()

    def control(self, action: str) -> dict[str, Any]:
        response = self.api.post(f"/api/runs/{self.run_id}/{action}")
        response.raise_for_status()
        return dict(response.json())

    def state(self) -> dict[str, Any]:
        return dict(self.api.get(f"/api/runs/{self.run_id}").json())

    def stats(self) -> dict[str, Any]:
        return dict(self.api.get("/bench/stats").json())

    def cpu_seconds(self) -> float:
        """Return the CPU seconds the server process has used."""
        return _cpu_seconds(Path(f"/proc/{self.server.pid}/stat"))

    def thread_cpu_seconds(self) -> dict[str, float]:
        """Return the CPU seconds of each server thread, by thread id."""
        seconds = {}
        for task in Path(f"/proc/{self.server.pid}/task").iterdir():
            try:
                seconds[task.name] = _cpu_seconds(task / "stat")
            except FileNotFoundError:
                continue  # the thread ended meanwhile
        return seconds

    def rss_bytes(self) -> int:
        status = Path(f"/proc/{self.server.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("VmRSS missing from /proc status")

    def wait_for_clients(self, expected: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.state()["stream_clients"] != expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not reach {expected} streams")
            time.sleep(0.05)

    def start_viewers(self, count: int) -> subprocess.Popen[str]:
        viewers = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "view",
                "--url",
                self.ws_url,
                "--count",
                str(count),
                "--window",
                str(self.args.window),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert viewers.stdout is not None
        if viewers.stdout.readline().strip() != "CONNECTED":
            raise RuntimeError("viewer process failed to connect")
        self.wait_for_clients(count)
        return viewers

    def measure_rate(self, viewer_count: int) -> dict[str, Any]:
        """Train at full speed for one window; return steps/s and per-viewer rates."""
        viewers = self.start_viewers(viewer_count) if viewer_count else None
        self.control("start")
        time.sleep(SETTLE_SECONDS)

        if viewers is not None:
            assert viewers.stdin is not None
            viewers.stdin.write("GO\n")
            viewers.stdin.flush()
        before, start = self.stats(), time.monotonic()
        cpu_before, threads_before = self.cpu_seconds(), self.thread_cpu_seconds()
        time.sleep(self.args.window)
        cpu_after, threads_after = self.cpu_seconds(), self.thread_cpu_seconds()
        after, elapsed = self.stats(), time.monotonic() - start
        self.control("pause")

        # Python does not name OS threads, so take the busiest one: the trainer.
        trainer_seconds = max(
            threads_after[tid] - threads_before.get(tid, 0.0) for tid in threads_after
        )
        steps = after["steps"] - before["steps"]
        result: dict[str, Any] = {
            "viewers": viewer_count,
            "steps_per_second": steps / elapsed,
            "load_average": os.getloadavg()[0],
            "server_cpu_cores": (cpu_after - cpu_before) / elapsed,
            "trainer_cpu_ms_per_step": 1e3 * trainer_seconds / max(steps, 1),
            "merges_per_step": (after["merges"] - before["merges"]) / max(steps, 1),
            "seals_per_second": (after["seals"] - before["seals"]) / elapsed,
            "publish_us_per_step": 1e6
            * (after["publish_seconds"] - before["publish_seconds"])
            / max(steps, 1),
        }
        if viewers is not None:
            output, _ = viewers.communicate(timeout=self.args.window + 60)
            counts = json.loads(output.strip().splitlines()[-1])
            result["frames_per_second_per_viewer"] = (
                statistics.mean(counts["frames"]) / self.args.window
            )
            result["mb_per_second_per_viewer"] = (
                statistics.mean(counts["bytes"]) / self.args.window / 1e6
            )
            result["viewer_process_cpu_cores"] = (
                counts["cpu_seconds"] / self.args.window
            )
            self.wait_for_clients(0)
        return result

    def measure_latency(self) -> dict[str, Any]:
        """Probe GET /api/runs/{id} while training with a few viewers."""
        viewers = self.start_viewers(LATENCY_VIEWERS)
        self.control("start")
        time.sleep(SETTLE_SECONDS)
        assert viewers.stdin is not None
        viewers.stdin.write("GO\n")
        viewers.stdin.flush()

        latencies = []
        deadline = time.monotonic() + self.args.window
        while time.monotonic() < deadline:
            sent = time.perf_counter()
            self.api.get(f"/api/runs/{self.run_id}").raise_for_status()
            latencies.append(time.perf_counter() - sent)
            time.sleep(LATENCY_INTERVAL)
        self.control("pause")
        viewers.communicate(timeout=self.args.window + 60)
        self.wait_for_clients(0)

        milliseconds = np.array(latencies) * 1e3
        return {
            "viewers": LATENCY_VIEWERS,
            "requests": len(latencies),
            "p50_ms": float(np.percentile(milliseconds, 50)),
            "p99_ms": float(np.percentile(milliseconds, 99)),
            "max_ms": float(milliseconds.max()),
        }

    def measure_rss(self) -> dict[str, Any]:
        """Train with a client that never reads; sample the server's RSS."""
        rss_start = self.rss_bytes()
        stalled = _stalled_client(self.port, self.run_id)
        self.wait_for_clients(1)
        reconnects = 0
        samples = []
        self.control("start")
        start = time.monotonic()
        while time.monotonic() - start < self.args.rss_seconds:
            time.sleep(1.0)
            samples.append(self.rss_bytes())
            if self.state()["stream_clients"] == 0:
                # Dropped for sending no pongs: a fresh one takes its place.
                stalled.close()
                stalled = _stalled_client(self.port, self.run_id)
                self.wait_for_clients(1)
                reconnects += 1
        steps = self.control("pause")["step"]
        stalled.close()
        return {
            "seconds": self.args.rss_seconds,
            "steps_trained": steps,
            "rss_start_mb": rss_start / 1e6,
            "rss_max_mb": max(samples) / 1e6,
            "rss_end_mb": samples[-1] / 1e6,
            "growth_mb": (samples[-1] - rss_start) / 1e6,
            "max_growth_mb": (max(samples) - rss_start) / 1e6,
            "stalled_clients_dropped": reconnects,
        }


def _stalled_client(port: int, run_id: str) -> socket.socket:
    """Open a stream with a plain socket that never reads, so it sends no pongs."""
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/runs/{run_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    return sock


def _cpu_seconds(stat_path: Path) -> float:
    # Fields 14 and 15 of /proc/.../stat are user and system time in clock ticks.
    # The name in field 2 may contain spaces, so count from its closing bracket.
    fields = stat_path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True, check=False
    ).stdout.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average": os.getloadavg()[0],
    }


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    info = machine()
    started = datetime.now(UTC)
    bench = Bench(args)
    try:
        bench.control("start")  # warm up caches and the allocator
        time.sleep(3.0)
        bench.control("pause")

        phases: dict[int, list[dict[str, Any]]] = {n: [] for n in VIEWER_COUNTS}
        for repeat in range(args.repeats):
            # Rotate the order: the machine's other load drifts over minutes.
            shift = repeat % len(VIEWER_COUNTS)
            for count in VIEWER_COUNTS[shift:] + VIEWER_COUNTS[:shift]:
                result = bench.measure_rate(count)
                phases[count].append(result)
                print(f"repeat {repeat}: {json.dumps(result)}", flush=True)
        latency = bench.measure_latency()
        print(f"latency: {json.dumps(latency)}", flush=True)
        rss = bench.measure_rss() if args.rss_seconds > 0 else None
        print(f"rss: {json.dumps(rss)}", flush=True)
    finally:
        bench.close()

    rates = {
        n: statistics.median(r["steps_per_second"] for r in phases[n]) for n in phases
    }
    trainer_cpu = {
        n: statistics.median(r["trainer_cpu_ms_per_step"] for r in phases[n])
        for n in phases
    }
    # Each repeat's ratio compares windows measured within a minute of each other.
    ratios = {
        n: statistics.median(
            watched["steps_per_second"] / alone["steps_per_second"]
            for watched, alone in zip(phases[n], phases[0], strict=True)
        )
        for n in VIEWER_COUNTS[1:]
    }
    return {
        "date": started.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {**info, "load_average_end": os.getloadavg()[0]},
        "network": [784, *HIDDEN_SIZES, 10],
        "batch_size": args.batch_size,
        "window_seconds": args.window,
        "repeats": args.repeats,
        "steps_per_second": {str(n): rates[n] for n in rates},
        "ratio_1_viewer": ratios[1],
        "ratio_20_viewers": ratios[20],
        "trainer_cpu_ms_per_step": {str(n): trainer_cpu[n] for n in trainer_cpu},
        "phases": {str(n): phases[n] for n in phases},
        "latency": latency,
        "rss": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    serve_parser = commands.add_parser("serve", help="internal: the server process")
    serve_parser.add_argument("--port", type=int, required=True)
    serve_parser.add_argument("--batch-size", type=int, required=True)
    view_parser = commands.add_parser("view", help="internal: the viewer process")
    view_parser.add_argument("--url", required=True)
    view_parser.add_argument("--count", type=int, required=True)
    view_parser.add_argument("--window", type=float, required=True)
    parser.add_argument(
        "--window", type=float, default=8.0, help="seconds per measurement (8)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="rounds of 0, 1 and 20 viewers (3)"
    )
    parser.add_argument(
        "--rss-seconds",
        type=float,
        default=60.0,
        help="seconds of the memory window with a client that never reads; "
        "0 skips it (60)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=8, help="mini-batch size (8, the default)"
    )
    args = parser.parse_args()

    if args.command == "serve":
        serve(args.port, args.batch_size)
    elif args.command == "view":
        view(args.url, args.count, args.window)
    else:
        print(json.dumps(run_benchmark(args)))


if __name__ == "__main__":
    main()
