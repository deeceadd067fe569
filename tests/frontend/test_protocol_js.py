"""Browser tests of the page's frame decoder, `frontend/js/protocol.js`.

Frames are encoded in Python with `dropviz.streaming.frames` and decoded in
Chromium; every decoded array is compared with numpy's decoding of the same
bytes. The last two tests stream real runs: one whose frames the server
splits into parts, and one large enough that the page requests fewer frames
a second. Both compare the page's weights with the server's.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from playwright import sync_api

from dropviz.streaming.frames import (
    StepEntry,
    decode_snapshot,
    decode_steps,
    encode_snapshot,
    encode_steps,
    pack_masks,
    split_message,
)
from tests.conftest import LiveServer, serve
from tests.frontend.pages import (
    TIMEOUT_MS,
    PageErrors,
    collect_binary_frames,
    open_dashboard,
    pause_run,
    read_page_weights,
    read_server_weights,
    wait_for_step,
)

pytestmark = pytest.mark.browser

LAYER_SIZES = [5, 7, 3, 2]  # odd sizes, so float16 arrays need padding
PART_LIMIT_BYTES = 65_536  # the smallest maximum message size the server accepts
SLOW_FRAMES_PER_SECOND = 10  # below the 13.2 the page requests for 64-512-512-10

# Decodes a base64 message in the page; returns arrays as lists, NaN as "NaN".
DECODE_STEPS = """async ([message, layerSizes]) => {
    const protocol = await import("./js/protocol.js");
    const bytes = Uint8Array.from(atob(message), (c) => c.charCodeAt(0));
    const frame = protocol.decodeSteps(bytes.buffer, layerSizes);
    const list = (values) => values === null ? null : Array.from(values,
        (value) => Number.isNaN(value) ? "NaN" : value);
    return {
        deltaDtype: frame.deltaDtype,
        weightDeltas: frame.weightDeltas.map(list),
        biasDeltas: frame.biasDeltas.map(list),
        losses: list(frame.losses),
    };
}"""

JOIN_PARTS = """async (parts) => {
    const protocol = await import("./js/protocol.js");
    const assembler = new protocol.PartAssembler();
    const results = [];
    for (const part of parts) {
        const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
        try {
            const whole = assembler.add(bytes.buffer);
            const text = whole && String.fromCharCode(...new Uint8Array(whole));
            results.push(whole === null ? null : btoa(text));
        } catch (error) {
            results.push(`${error.name}: ${error.message}`);
        }
    }
    return results;
}"""


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Environment that makes the server split messages over PART_LIMIT_BYTES."""
    return {"DROPVIZ_STREAM_MAX_MESSAGE_BYTES": str(PART_LIMIT_BYTES)}


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that sends one client at most SLOW_FRAMES_PER_SECOND frames."""
    env = {"DROPVIZ_MAX_FRAMES_PER_SECOND": str(SLOW_FRAMES_PER_SECOND)}
    with serve(tmp_path_factory.mktemp("slow-server") / "server.log", env) as live:
        yield live


def _b64(message: bytes) -> str:
    return base64.b64encode(message).decode("ascii")


def _random_steps(
    rng: np.random.Generator, magnitudes: list[float]
) -> tuple[list[StepEntry], list[np.ndarray], list[np.ndarray]]:
    """Two steps of LAYER_SIZES with deltas of the given magnitude per layer.

    Each array mixes zeros, values near its maximum and values 2^-30 of it,
    which become float16 subnormals or zero.
    """
    entries = []
    for step in range(2):
        masks = [rng.random(size) < 0.5 for size in LAYER_SIZES[:-1]]
        entries.append(StepEntry(0, 1, 0.5 + step, 0.25, pack_masks(masks)))
    weight_deltas = []
    bias_deltas = []
    for layer, magnitude in enumerate(magnitudes):
        shapes = [
            (LAYER_SIZES[layer], LAYER_SIZES[layer + 1]),
            (LAYER_SIZES[layer + 1],),
        ]
        arrays = []
        for shape in shapes:
            values = rng.normal(0, magnitude, shape).astype(np.float32)
            flat = values.reshape(-1)
            flat[::3] = 0.0
            flat[1] = np.float32(magnitude * 2.0**-30)
            arrays.append(values)
        weight_deltas.append(arrays[0])
        bias_deltas.append(arrays[1])
    return entries, weight_deltas, bias_deltas


def _as_array(values: list[Any] | None) -> np.ndarray | None:
    if values is None:
        return None
    return np.asarray(
        [np.nan if value == "NaN" else value for value in values], dtype=np.float32
    )


def _assert_same_deltas(decoded: dict[str, Any], expected: Any) -> None:
    for name, ours, theirs in [
        ("W", decoded["weightDeltas"], expected.weight_deltas),
        ("b", decoded["biasDeltas"], expected.bias_deltas),
    ]:
        assert len(ours) == len(theirs)
        for layer, (page_values, numpy_values) in enumerate(
            zip(ours, theirs, strict=True)
        ):
            if numpy_values is None:
                assert page_values is None, f"{name}[{layer}] should be absent"
                continue
            array = _as_array(page_values)
            assert array is not None, f"{name}[{layer}] is missing"
            # bit for bit: both sides multiply a float16 value by a power of two
            np.testing.assert_array_equal(
                array, numpy_values.reshape(-1), err_msg=f"{name}[{layer}]"
            )


@pytest.mark.parametrize("delta_layers", [0b111, 0b101, 0b000])
def test_float16_deltas_match_numpy(page: sync_api.Page, delta_layers: int) -> None:
    rng = np.random.default_rng(delta_layers)
    entries, weight_deltas, bias_deltas = _random_steps(rng, [3e-3, 40.0, 1e-7])
    message = encode_steps(
        10, entries, weight_deltas, bias_deltas, "per-step", delta_layers, "float16"
    )
    expected = decode_steps(message, LAYER_SIZES)

    decoded = page.evaluate(DECODE_STEPS, [_b64(message), LAYER_SIZES])
    assert decoded["deltaDtype"] == 1
    assert decoded["losses"] == [0.5, 1.5]
    _assert_same_deltas(decoded, expected)
    # zeros outside a sub-network stay exactly zero
    for layer, deltas in enumerate(decoded["weightDeltas"]):
        if deltas is not None:
            zeros = weight_deltas[layer].reshape(-1) == 0
            assert np.all(_as_array(deltas)[zeros] == 0), f"W[{layer}] zeros"


def test_float16_non_finite_deltas(page: sync_api.Page) -> None:
    rng = np.random.default_rng(7)
    entries, weight_deltas, bias_deltas = _random_steps(rng, [1.0, 1.0, 1.0])
    weight_deltas[1].reshape(-1)[[2, 4]] = [np.nan, -np.inf]
    message = encode_steps(
        0, entries, weight_deltas, bias_deltas, "per-step", None, "float16"
    )
    decoded = page.evaluate(DECODE_STEPS, [_b64(message), LAYER_SIZES])
    layer = _as_array(decoded["weightDeltas"][1])
    assert layer is not None
    assert np.isnan(layer[2])
    assert layer[4] == -np.inf
    _assert_same_deltas(decoded, decode_steps(message, LAYER_SIZES))


def test_float32_deltas_unchanged(page: sync_api.Page) -> None:
    rng = np.random.default_rng(3)
    entries, weight_deltas, bias_deltas = _random_steps(rng, [1e-2, 1e-3, 1e-4])
    message = encode_steps(5, entries, weight_deltas, bias_deltas, "per-step", 0b110)
    decoded = page.evaluate(DECODE_STEPS, [_b64(message), LAYER_SIZES])
    assert decoded["deltaDtype"] == 0
    _assert_same_deltas(decoded, decode_steps(message, LAYER_SIZES))


def test_unknown_delta_dtype_rejected(page: sync_api.Page) -> None:
    rng = np.random.default_rng(4)
    entries, weight_deltas, bias_deltas = _random_steps(rng, [1.0, 1.0, 1.0])
    message = bytearray(
        encode_steps(0, entries, weight_deltas, bias_deltas, "per-step")
    )
    message[30:32] = (2).to_bytes(2, "little")  # delta_dtype
    error = page.evaluate(
        f"""async (args) => {{
            try {{ await ({DECODE_STEPS})(args); return null; }}
            catch (error) {{ return error.message; }}
        }}""",
        [_b64(bytes(message)), LAYER_SIZES],
    )
    assert error is not None
    assert "delta_dtype 2" in error


def _snapshot_message(rng: np.random.Generator, sizes: list[int]) -> bytes:
    weights = [
        rng.normal(0, 0.1, (sizes[layer], sizes[layer + 1])).astype(np.float32)
        for layer in range(len(sizes) - 1)
    ]
    biases = [np.zeros(size, np.float32) for size in sizes[1:]]
    meta = {"run_id": "r", "layer_sizes": sizes, "status": "created"}
    return encode_snapshot(42, meta, weights, biases)


def test_parts_join_to_message(page: sync_api.Page) -> None:
    message = _snapshot_message(np.random.default_rng(5), [30, 40, 10])
    parts = split_message(message, 1500)
    assert len(parts) >= 3

    results = page.evaluate(JOIN_PARTS, [_b64(part) for part in parts])
    assert results[:-1] == [None] * (len(parts) - 1)
    assert base64.b64decode(results[-1]) == message
    # a second message joins after the first
    again = page.evaluate(JOIN_PARTS, [_b64(part) for part in parts + parts])
    assert base64.b64decode(again[-1]) == message
    assert decode_snapshot(base64.b64decode(again[-1])).next_step == 42


def test_parts_out_of_order_rejected(page: sync_api.Page) -> None:
    message = _snapshot_message(np.random.default_rng(6), [30, 40, 10])
    parts = split_message(message, 1500)
    swapped = [parts[0], parts[2], parts[1]]
    results = page.evaluate(JOIN_PARTS, [_b64(part) for part in swapped])
    assert results[0] is None
    assert results[1].startswith("ProtocolError: Part 2 arrived; expected part 1")
    # the partial message was forgotten, so part 1 alone is out of order too
    assert results[2].startswith("ProtocolError: Part 1 arrived; expected part 0")

    truncated = parts[0][:20]
    results = page.evaluate(JOIN_PARTS, [_b64(truncated)])
    assert "part header" in results[0]


def _run_until_paused(page: sync_api.Page, hidden: str, speed: str) -> str:
    """Create a digits run through the form, train 100 steps, pause; return its id."""
    page.select_option("#field-dataset", "digits")
    page.fill("#field-hidden-sizes", hidden)
    page.select_option("#field-speed", speed)
    page.click("#button-new")
    sync_api.expect(page.locator("#counter-status")).to_have_text(
        "created", timeout=TIMEOUT_MS
    )
    run_id = page.locator("#counter-run").get_attribute("title")
    assert run_id
    page.wait_for_function("window.dropviz.store.hasSnapshot", timeout=TIMEOUT_MS)
    page.click("#button-start")
    wait_for_step(page, 100)
    pause_run(page)
    return run_id


def _assert_weights_match(page: sync_api.Page, server: LiveServer, run_id: str) -> None:
    """Wait until the paused run's last step is shown; compare the page's weights."""
    step = httpx.get(f"{server.base_url}/api/runs/{run_id}", timeout=30).json()["step"]
    page.wait_for_function(
        "(step) => document.querySelector('#counter-step').dataset.value === step",
        arg=str(step),
        timeout=TIMEOUT_MS,
    )
    server_weights = read_server_weights(server, run_id)
    page_weights = read_page_weights(page)
    for layer, (ours, theirs) in enumerate(
        zip(page_weights, server_weights, strict=True)
    ):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4, err_msg=f"W{layer}")


def test_page_applies_split_frames(page: sync_api.Page, server: LiveServer) -> None:
    """64-128-128-10 frames (about 105 KB) arrive in two parts each."""
    frames = collect_binary_frames(page)
    run_id = _run_until_paused(page, "128,128", "200")
    assert any(message[6] == 3 for message in frames), "the server sent no part frame"

    _assert_weights_match(page, server, run_id)


def _delta_bytes(layer_sizes: list[int]) -> int:
    """Bytes of float32 weight and bias deltas in one steps frame."""
    return sum(
        4 * (layer_sizes[layer] + 1) * layer_sizes[layer + 1]
        for layer in range(len(layer_sizes) - 1)
    )


def test_large_network_asks_fewer_frames(
    page: sync_api.Page, server: LiveServer
) -> None:
    """A 64-512-512-10 frame is 1.2 MB, so the page asks for 13.2 frames a second.

    Its copy of the weights is still exact: merged float32 frames lose nothing.
    """
    sent: list[str] = []
    received: list[str] = []

    def on_websocket(websocket: sync_api.WebSocket) -> None:
        websocket.on(
            "framesent",
            lambda payload: sent.append(payload) if isinstance(payload, str) else None,
        )
        websocket.on(
            "framereceived",
            lambda payload: (
                received.append(payload) if isinstance(payload, str) else None
            ),
        )

    page.on("websocket", on_websocket)
    run_id = _run_until_paused(page, "512,512", "")

    # 16 MB/s of deltas, rounded down to a tenth of a frame
    rate = math.floor(10 * 16_000_000 / _delta_bytes([64, 512, 512, 10])) / 10
    assert rate == 13.2
    options = [json.loads(text) for text in sent]
    assert options == [{"type": "options", "max_frames_per_second": rate}]
    confirmations = [
        message for message in map(json.loads, received) if message["type"] == "options"
    ]
    assert [c["max_frames_per_second"] for c in confirmations] == [rate]
    assert confirmations[0]["delta_dtype"] == "float32"

    _assert_weights_match(page, server, run_id)


def test_rejected_frame_rate_reconnects(
    browser: sync_api.Browser, slow_server: LiveServer, page_errors: PageErrors
) -> None:
    """A server whose frame rate limit is below the page's request closes the
    socket with 1008; the page reconnects without the request and streams on."""
    page = open_dashboard(browser, page_errors, slow_server.base_url)
    sockets: list[dict[str, Any]] = []

    def on_websocket(websocket: sync_api.WebSocket) -> None:
        record: dict[str, Any] = {"sent": [], "closed": False}
        websocket.on("framesent", lambda payload: record["sent"].append(payload))
        websocket.on("close", lambda _: record.update(closed=True))
        sockets.append(record)

    page.on("websocket", on_websocket)
    _run_until_paused(page, "512,512", "")

    assert len(sockets) >= 2, "the page did not reconnect"
    first = sockets[0]
    assert first["closed"]
    assert [json.loads(text)["max_frames_per_second"] for text in first["sent"]] == [
        13.2
    ]
    assert all(socket["sent"] == [] for socket in sockets[1:])
    sync_api.expect(page.locator("#connection")).to_have_text("live")
    page.context.close()


def test_page_sends_client_message(page: sync_api.Page) -> None:
    """The socket that RunStream holds sends client messages like a WebSocket."""
    received: list[str] = []
    page.on(
        "websocket",
        lambda websocket: websocket.on(
            "framereceived",
            lambda payload: (
                received.append(payload) if isinstance(payload, str) else None
            ),
        ),
    )
    page.select_option("#field-dataset", "digits")
    page.click("#button-new")
    sync_api.expect(page.locator("#connection")).to_have_text(
        "live", timeout=TIMEOUT_MS
    )
    page.evaluate(
        """() => window.dropviz.stream.socket.send(
            JSON.stringify({ type: "options", max_frames_per_second: 7 }))"""
    )
    page.wait_for_timeout(500)
    options = [
        message for message in map(json.loads, received) if message["type"] == "options"
    ]
    assert [message["max_frames_per_second"] for message in options] == [7]
