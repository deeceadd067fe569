"""Fan-out and shared lossless merging, driven without a network."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from dropviz.streaming import frames
from dropviz.streaming import hub as hub_module
from dropviz.streaming.hub import (
    CLOSE_GOING_AWAY,
    CLOSE_TRY_AGAIN_LATER,
    Batch,
    ClientQueue,
    StreamHub,
)
from dropviz.streaming.options import (
    Ack,
    ClientMessageError,
    ClientOptions,
    OptionsUpdate,
    Resync,
)
from dropviz.training.config import TrainConfig
from dropviz.training.records import StepRecord
from dropviz.training.trainer import Trainer

CONFIG = TrainConfig(dataset="moons", n_samples=200, hidden_sizes=(6, 5), batch_size=10)
LAYER_SIZES = [2, 6, 5, 2]
MAX_BYTES = 1 << 24
DEFAULTS = ClientOptions(max_frames_per_second=60.0)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    event_loop = asyncio.new_event_loop()
    yield event_loop
    event_loop.close()


class Training:
    """A trainer that publishes every step to a hub, as a run's worker does."""

    def __init__(self, max_merge_steps: int = 1000) -> None:
        self.trainer = Trainer(CONFIG)
        self.lock = threading.RLock()
        self.hub = StreamHub(
            "test",
            CONFIG.mask_scope,
            max_merge_steps,
            layer_count=3,
            parameters=self.parameters,
            parameters_lock=self.lock,
        )
        self.records: list[StepRecord] = []
        self.history = [self.weights()]  # weights after 0, 1, 2, ... steps

    def parameters(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        return self.trainer.params.weights, self.trainer.params.biases

    def weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.trainer.params.weights]

    def add_client(
        self, loop: asyncio.AbstractEventLoop, options: ClientOptions = DEFAULTS
    ) -> ClientQueue:
        with self.lock:  # the run holds its state lock from snapshot to here
            return self.hub.add_client(loop, options, self.trainer.step_count)

    def step(self, count: int = 1) -> None:
        for _ in range(count):
            with self.lock:
                record = self.trainer.step()
                self.records.append(record)
                self.hub.publish_step(record)
            self.history.append(self.weights())


@pytest.fixture
def training() -> Training:
    return Training()


def _decode(hub: StreamHub, client: ClientQueue, batch: Batch) -> frames.StepsFrame:
    assert batch.segment is not None
    options = client.options
    messages = batch.segment.messages(
        hub.mask_scope,
        options.delta_dtype,
        options.frame_layers(hub.layer_count),
        MAX_BYTES,
    )
    assert len(messages) == 1
    return frames.decode_steps(messages[0], LAYER_SIZES)


def test_slow_client_receives_exact_merged_frame(loop, training) -> None:
    hub = training.hub
    client = training.add_client(loop)
    training.step(7)
    hub.publish_event({"type": "epoch", "epoch": 0})

    batch = hub.take(client, steps_due=True)
    assert batch.events == ['{"type":"epoch","epoch":0}']
    decoded = _decode(hub, client, batch)
    assert decoded.first_step == 0
    assert decoded.step_count == 7
    for layer in range(3):
        # One float32 subtraction of the weights before and after.
        expected = training.history[7][layer] - training.history[0][layer]
        assert np.array_equal(decoded.weight_deltas[layer], expected)
    for step_masks, record in zip(decoded.masks, training.records, strict=True):
        for got, want in zip(step_masks, record.masks, strict=True):
            assert np.array_equal(got, want)


def test_step_deltas_zero_outside_subnetwork(loop, training) -> None:
    client = training.add_client(loop)
    moved_steps = 0
    for _ in range(10):
        training.step()
        decoded = _decode(training.hub, client, training.hub.take(client, True))
        masks = training.records[-1].masks  # input, hidden 1, hidden 2
        moved = False
        for layer in range(3):
            kept_in = masks[layer]
            kept_out = masks[layer + 1] if layer + 1 < len(masks) else None
            outside = ~kept_in[:, None]
            if kept_out is not None:
                outside = outside | ~kept_out[None, :]
            outside = np.broadcast_to(outside, decoded.weight_deltas[layer].shape)
            assert np.all(decoded.weight_deltas[layer][outside] == 0.0)
            moved |= bool(np.any(decoded.weight_deltas[layer][~outside] != 0.0))
        moved_steps += moved
    # A step whose sub-network lost every unit of a layer moves no weight.
    assert moved_steps >= 5


def test_client_copy_follows_server_weights(loop, training) -> None:
    """Snapshot plus every frame's deltas gives the server's weights.

    Each delta is one float32 subtraction, exact whenever the two values are
    within a factor of two of each other (Sterbenz), so the copy drifts by at
    most a few units in the last place over many frames.
    """
    rng = np.random.default_rng(1)
    client = training.add_client(loop)
    copy = training.weights()
    for _ in range(60):
        training.step()
        if rng.random() < 0.4:
            batch = training.hub.take(client, steps_due=True)
            if batch.segment is not None:
                decoded = _decode(training.hub, client, batch)
                for layer in range(3):
                    copy[layer] += decoded.weight_deltas[layer]
    decoded = _decode(training.hub, client, training.hub.take(client, True))
    for layer in range(3):
        copy[layer] += decoded.weight_deltas[layer]
        np.testing.assert_array_max_ulp(copy[layer], training.history[-1][layer], 4)


def test_seal_waits_for_training_to_release_parameters(loop, training) -> None:
    hub = training.hub
    client = training.add_client(loop)
    training.step(2)
    holding = threading.Event()
    release = threading.Event()

    def hold_parameters() -> None:
        with training.lock:  # as the training thread does during a step
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold_parameters)
    holder.start()
    assert holding.wait(5)
    batch = hub.take(client, steps_due=True)
    assert batch.segment is None
    assert batch.seal_pending and batch.steps_waiting
    release.set()
    holder.join()

    training.step()  # the training thread seals at its next publish
    decoded = _decode(hub, client, hub.take(client, steps_due=True))
    assert (decoded.first_step, decoded.step_count) == (0, 3)
    expected = training.history[3][1] - training.history[0][1]
    assert np.array_equal(decoded.weight_deltas[1], expected)


def test_paused_training_lets_the_sender_seal(loop, training) -> None:
    client = training.add_client(loop)
    training.step(3)
    batch = training.hub.take(client, steps_due=True)
    assert not batch.seal_pending
    assert batch.segment is not None and batch.segment.step_count == 3


def test_keeping_up_clients_share_one_encoding(loop, training) -> None:
    hub = training.hub
    first = training.add_client(loop)
    second = training.add_client(loop)
    training.step()
    a = hub.take(first, steps_due=True)
    b = hub.take(second, steps_due=True)
    assert a.segment is b.segment
    args = (hub.mask_scope, "float32", 0b111, MAX_BYTES)
    assert a.segment is not None and b.segment is not None
    assert a.segment.messages(*args)[0] is b.segment.messages(*args)[0]


def test_merged_backlog_leaves_shared_segment_untouched(loop, training) -> None:
    hub = training.hub
    fast = training.add_client(loop)
    slow = training.add_client(loop)
    training.step()
    shared = hub.take(fast, steps_due=True).segment  # step 0, in both backlogs
    assert shared is not None
    original = shared.weight_deltas[0].copy()
    training.step()
    hub.take(fast, steps_due=True)  # seals step 1: slow's backlog becomes 0..1
    assert np.array_equal(shared.weight_deltas[0], original)
    decoded = _decode(hub, slow, hub.take(slow, steps_due=True))
    assert decoded.step_count == 2
    expected = training.history[2][0] - training.history[0][0]
    assert np.allclose(decoded.weight_deltas[0], expected, rtol=0, atol=1e-7)


def test_client_past_merge_limit_is_closed(loop) -> None:
    training = Training(max_merge_steps=3)
    hub = training.hub
    fast = training.add_client(loop)
    slow = training.add_client(loop)
    for _ in range(5):
        training.step()
        hub.take(fast, steps_due=True)
    batch = hub.take(slow, steps_due=True)
    assert batch.close is not None
    assert batch.close.code == CLOSE_TRY_AGAIN_LATER
    assert batch.segment is None


def test_open_segment_past_merge_limit_closes_lone_client(loop) -> None:
    training = Training(max_merge_steps=3)
    hub = training.hub
    client = training.add_client(loop)
    training.step(7)
    batch = hub.take(client, steps_due=True)
    assert batch.close is not None
    assert batch.close.code == CLOSE_TRY_AGAIN_LATER


@pytest.mark.parametrize("lagging_count", [1, 20])
def test_merge_cost_per_step_independent_of_clients(
    loop, training, lagging_count: int
) -> None:
    hub = training.hub
    fast = training.add_client(loop)
    lagging = [training.add_client(loop) for _ in range(lagging_count)]
    for _ in range(50):
        training.step()
        hub.take(fast, steps_due=True)
    # The fast client seals every step; every lagging client shares one
    # backlog, so each seal costs one merge however many clients lag.
    assert hub.merges == 49
    first = hub.take(lagging[0], steps_due=True).segment
    assert first is not None and first.step_count == 50
    for client in lagging[1:]:
        assert hub.take(client, steps_due=True).segment is first


def test_distinct_backlogs_merge_once_each(loop, training) -> None:
    hub = training.hub
    fast = training.add_client(loop)
    early = [training.add_client(loop) for _ in range(3)]
    late = [training.add_client(loop) for _ in range(3)]
    training.step()
    for client in [fast, *early]:
        hub.take(client, steps_due=True)  # late clients keep step 0 as backlog
    merges_before = hub.merges
    training.step()
    hub.take(fast, steps_due=True)
    # Early clients had no backlog; the late ones share one: a single merge.
    assert hub.merges - merges_before == 1
    segments = {id(hub.take(client, steps_due=True).segment) for client in late}
    assert len(segments) == 1


def test_frames_cover_every_step_once_under_random_takes(loop, training) -> None:
    rng = np.random.default_rng(0)
    hub = training.hub
    clients = [training.add_client(loop) for _ in range(5)]
    covered: list[list[frames.StepsFrame]] = [[] for _ in clients]
    for _ in range(60):
        training.step()
        for index, client in enumerate(clients):
            if rng.random() < 0.3:
                batch = hub.take(client, steps_due=True)
                if batch.segment is not None:
                    covered[index].append(_decode(hub, client, batch))
    for index, client in enumerate(clients):
        batch = hub.take(client, steps_due=True)
        if batch.segment is not None:
            covered[index].append(_decode(hub, client, batch))

    for client_frames in covered:
        steps = [
            step for f in client_frames for step in range(f.first_step, f.last_step + 1)
        ]
        assert steps == list(range(60))
        for layer in range(3):
            total = sum(
                f.weight_deltas[layer].astype(np.float64) for f in client_frames
            )
            change = training.history[60][layer].astype(np.float64) - training.history[
                0
            ][layer].astype(np.float64)
            # float32 rounding of each frame's subtraction and of backlog sums
            assert np.allclose(total, change, rtol=0, atol=1e-6)


def test_event_waits_for_steps_it_follows(loop, training) -> None:
    hub = training.hub
    fast = training.add_client(loop)
    slow = training.add_client(loop)
    training.step()
    hub.take(fast, steps_due=True)  # slow's backlog: step 0
    training.step()
    hub.publish_event({"type": "status", "status": "paused"})
    batch = hub.take(slow, steps_due=True)
    assert batch.segment is not None
    assert batch.segment.end_step == 2  # the event follows step 1, so it came too
    assert batch.events == ['{"type":"status","status":"paused"}']


def test_event_alone_goes_out_before_tick(loop, training) -> None:
    hub = training.hub
    client = training.add_client(loop)
    hub.publish_event({"type": "status", "status": "running"})
    batch = hub.take(client, steps_due=False)
    assert batch.events == ['{"type":"status","status":"running"}']
    assert batch.segment is None


def test_steps_wait_for_tick(loop, training) -> None:
    hub = training.hub
    client = training.add_client(loop)
    training.step()
    batch = hub.take(client, steps_due=False)
    assert batch.is_empty()
    assert batch.steps_waiting


def test_new_client_starts_at_its_snapshot(loop, training) -> None:
    hub = training.hub
    first = training.add_client(loop)
    training.step(3)
    second = training.add_client(loop)
    training.step()
    decoded = _decode(hub, second, hub.take(second, steps_due=True))
    assert (decoded.first_step, decoded.step_count) == (3, 1)
    decoded = _decode(hub, first, hub.take(first, steps_due=True))
    assert (decoded.first_step, decoded.step_count) == (0, 4)


def test_graceful_close_flushes_steps_and_events(loop, training) -> None:
    hub = training.hub
    client = training.add_client(loop)
    training.step(4)
    hub.publish_event({"type": "status", "status": "paused"})
    hub.close_all(CLOSE_GOING_AWAY, "server shutting down")
    batch = hub.take(client, steps_due=False)
    assert batch.segment is not None and batch.segment.step_count == 4
    assert len(batch.events) == 1
    assert batch.close is not None and batch.close.code == CLOSE_GOING_AWAY


def test_options_update_replies_and_resyncs_added_layer(loop, training) -> None:
    hub = training.hub
    client = training.add_client(loop)
    hub.handle_message(client, OptionsUpdate({"delta_layers": 0b001}))
    batch = hub.take(client, steps_due=False)
    assert json.loads(batch.replies[0])["delta_layers"] == [0]
    assert not batch.resync
    hub.handle_message(client, OptionsUpdate({"delta_layers": 0b011}))
    assert hub.take(client, steps_due=False).resync
    hub.restart_client(client, 0)
    assert json.loads(hub.take(client, steps_due=False).replies[0])["delta_layers"] == [
        0,
        1,
    ]


def test_float16_and_float32_clients_get_separate_encodings(loop, training) -> None:
    hub = training.hub
    half = training.add_client(loop)
    full = training.add_client(loop)
    hub.handle_message(half, OptionsUpdate({"delta_dtype": "float16"}))
    training.step()
    a = _decode(hub, half, hub.take(half, steps_due=True))
    b = _decode(hub, full, hub.take(full, steps_due=True))
    assert (a.delta_dtype, b.delta_dtype) == ("float16", "float32")


def test_resync_request_reaches_sender(loop, training) -> None:
    hub = training.hub
    client = training.add_client(loop)
    hub.handle_message(client, Resync())
    assert hub.take(client, steps_due=True).resync


def test_step_locked_wait_needs_ack(loop, training) -> None:
    hub = training.hub
    client = training.add_client(loop)
    hub.handle_message(client, OptionsUpdate({"step_locked": True}))
    halt = threading.Event()
    assert hub.wait_for_acks(0, halt)  # nothing published yet: step 0 may go

    training.step()
    passed = threading.Event()
    waiter = threading.Thread(
        target=lambda: hub.wait_for_acks(1, halt) and passed.set()
    )
    waiter.start()
    assert not passed.wait(0.2)  # step 1 waits for the ack of step 0
    with pytest.raises(ClientMessageError, match="not sent"):
        hub.handle_message(client, Ack(0))  # the sender has not taken step 0 yet
    hub.take(client, steps_due=True)
    hub.handle_message(client, Ack(0))
    assert passed.wait(5)
    waiter.join()


def test_step_locked_wait_ends_on_halt_and_disconnect(loop, training) -> None:
    hub = training.hub
    client = training.add_client(loop)
    hub.handle_message(client, OptionsUpdate({"step_locked": True}))
    training.step()
    halt = threading.Event()
    halt.set()
    assert not hub.wait_for_acks(1, halt)
    hub.remove_client(client)
    assert hub.wait_for_acks(1, threading.Event())


def test_unread_option_confirmations_keep_only_latest(loop, training) -> None:
    hub = training.hub
    client = training.add_client(loop)
    for rate in (1, 2, 3):
        hub.handle_message(client, OptionsUpdate({"max_frames_per_second": rate}))
    replies = hub.take(client, steps_due=False).replies
    assert len(replies) == 1
    assert json.loads(replies[0])["max_frames_per_second"] == 3


def test_lag_warning_rate_limited_with_counts(
    loop, training, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "LAG_LOG_INTERVAL", 0.0)
    hub = training.hub
    client = training.add_client(loop)
    with caplog.at_level(logging.DEBUG, logger="dropviz.streaming.hub"):
        hub.record_frame(client, step_count=1, late=False)
        hub.record_frame(client, step_count=40, late=True)
        monkeypatch.setattr(hub_module, "LAG_LOG_INTERVAL", 3600.0)
        hub.record_frame(client, step_count=40, late=True)  # within the interval
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "late_frames=1" in warnings[0].getMessage()
    assert "merged_steps=40" in warnings[0].getMessage()
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) == 1  # the first window had no late frame
    assert (client.frames, client.merged_frames, client.late_frames) == (3, 2, 2)
