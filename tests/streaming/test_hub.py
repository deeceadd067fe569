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


@pytest.fixture
def records() -> list[StepRecord]:
    trainer = Trainer(CONFIG)
    return [trainer.step() for _ in range(60)]


def _hub(max_merge_steps: int = 1000) -> StreamHub:
    return StreamHub("test", CONFIG.mask_scope, max_merge_steps, layer_count=3)


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


def _exact_sum(records: list[StepRecord], layer: int) -> np.ndarray:
    total = np.zeros(records[0].weight_deltas[layer].shape, np.float64)
    for record in records:
        total += record.weight_deltas[layer]
    return total


def test_slow_client_receives_exact_merged_frame(loop, records) -> None:
    hub = _hub()
    client = hub.add_client(loop, DEFAULTS, next_step=0)
    for record in records[:7]:
        hub.publish_step(record)
    hub.publish_event({"type": "epoch", "epoch": 0})

    batch = hub.take(client, steps_due=True)
    assert batch.events == ['{"type":"epoch","epoch":0}']
    decoded = _decode(hub, client, batch)
    assert decoded.first_step == 0
    assert decoded.step_count == 7
    for layer in range(3):
        expected = np.zeros_like(records[0].weight_deltas[layer])
        for record in records[:7]:
            expected += record.weight_deltas[layer]  # the order the hub adds in
        assert np.array_equal(decoded.weight_deltas[layer], expected)
    for step_masks, record in zip(decoded.masks, records[:7], strict=True):
        for got, want in zip(step_masks, record.masks, strict=True):
            assert np.array_equal(got, want)


def test_keeping_up_clients_share_one_encoding(loop, records) -> None:
    hub = _hub()
    first = hub.add_client(loop, DEFAULTS, 0)
    second = hub.add_client(loop, DEFAULTS, 0)
    hub.publish_step(records[0])
    a = hub.take(first, steps_due=True)
    b = hub.take(second, steps_due=True)
    assert a.segment is b.segment
    args = (hub.mask_scope, "float32", 0b111, MAX_BYTES)
    assert a.segment is not None and b.segment is not None
    assert a.segment.messages(*args)[0] is b.segment.messages(*args)[0]


def test_merged_backlog_leaves_shared_payload_untouched(loop, records) -> None:
    hub = _hub()
    fast = hub.add_client(loop, DEFAULTS, 0)
    slow = hub.add_client(loop, DEFAULTS, 0)
    original = records[0].weight_deltas[0].copy()
    hub.publish_step(records[0])
    hub.take(fast, steps_due=True)  # seals step 0 into both backlogs
    hub.publish_step(records[1])
    hub.take(fast, steps_due=True)  # seals step 1: slow's backlog becomes 0..1
    assert np.array_equal(records[0].weight_deltas[0], original)
    decoded = _decode(hub, slow, hub.take(slow, steps_due=True))
    assert decoded.step_count == 2


def test_client_past_merge_limit_is_closed(loop, records) -> None:
    hub = _hub(max_merge_steps=3)
    fast = hub.add_client(loop, DEFAULTS, 0)
    slow = hub.add_client(loop, DEFAULTS, 0)
    for record in records[:5]:
        hub.publish_step(record)
        hub.take(fast, steps_due=True)
    batch = hub.take(slow, steps_due=True)
    assert batch.close is not None
    assert batch.close.code == CLOSE_TRY_AGAIN_LATER
    assert batch.segment is None


def test_open_segment_past_merge_limit_closes_lone_client(loop, records) -> None:
    hub = _hub(max_merge_steps=3)
    client = hub.add_client(loop, DEFAULTS, 0)
    for record in records[:7]:
        hub.publish_step(record)
    batch = hub.take(client, steps_due=True)
    assert batch.close is not None
    assert batch.close.code == CLOSE_TRY_AGAIN_LATER


@pytest.mark.parametrize("lagging_count", [1, 20])
def test_merge_cost_per_step_independent_of_clients(
    loop, records, lagging_count: int
) -> None:
    hub = _hub()
    fast = hub.add_client(loop, DEFAULTS, 0)
    lagging = [hub.add_client(loop, DEFAULTS, 0) for _ in range(lagging_count)]
    for record in records[:50]:
        hub.publish_step(record)
        hub.take(fast, steps_due=True)
    # The fast client seals every step; every lagging client shares one
    # backlog, so each seal costs one merge however many clients lag.
    assert hub.merges == 49
    first = hub.take(lagging[0], steps_due=True).segment
    assert first is not None and first.step_count == 50
    for client in lagging[1:]:
        assert hub.take(client, steps_due=True).segment is first


def test_distinct_backlogs_merge_once_each(loop, records) -> None:
    hub = _hub()
    fast = hub.add_client(loop, DEFAULTS, 0)
    early = [hub.add_client(loop, DEFAULTS, 0) for _ in range(3)]
    late = [hub.add_client(loop, DEFAULTS, 0) for _ in range(3)]
    hub.publish_step(records[0])
    for client in [fast, *early]:
        hub.take(client, steps_due=True)  # late clients keep step 0 as backlog
    merges_before = hub.merges
    hub.publish_step(records[1])
    hub.take(fast, steps_due=True)
    # Early clients had no backlog; the late ones share one: a single merge.
    assert hub.merges - merges_before == 1
    segments = {id(hub.take(client, steps_due=True).segment) for client in late}
    assert len(segments) == 1


def test_frames_cover_every_step_once_under_random_takes(loop, records) -> None:
    rng = np.random.default_rng(0)
    hub = _hub()
    clients = [hub.add_client(loop, DEFAULTS, 0) for _ in range(5)]
    covered: list[list[frames.StepsFrame]] = [[] for _ in clients]
    for record in records:
        hub.publish_step(record)
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
        assert steps == list(range(len(records)))
        for layer in range(3):
            total = sum(
                f.weight_deltas[layer].astype(np.float64) for f in client_frames
            )
            # float32 additions in another grouping than the float64 reference
            assert np.allclose(total, _exact_sum(records, layer), rtol=0, atol=1e-6)


def test_event_waits_for_steps_it_follows(loop, records) -> None:
    hub = _hub()
    fast = hub.add_client(loop, DEFAULTS, 0)
    slow = hub.add_client(loop, DEFAULTS, 0)
    hub.publish_step(records[0])
    hub.take(fast, steps_due=True)  # slow's backlog: step 0
    hub.publish_step(records[1])
    hub.publish_event({"type": "status", "status": "paused"})
    batch = hub.take(slow, steps_due=True)
    assert batch.segment is not None
    assert batch.segment.end_step == 2  # the event follows step 1, so it came too
    assert batch.events == ['{"type":"status","status":"paused"}']


def test_event_alone_goes_out_before_tick(loop, records) -> None:
    hub = _hub()
    client = hub.add_client(loop, DEFAULTS, 0)
    hub.publish_event({"type": "status", "status": "running"})
    batch = hub.take(client, steps_due=False)
    assert batch.events == ['{"type":"status","status":"running"}']
    assert batch.segment is None


def test_steps_wait_for_tick(loop, records) -> None:
    hub = _hub()
    client = hub.add_client(loop, DEFAULTS, 0)
    hub.publish_step(records[0])
    batch = hub.take(client, steps_due=False)
    assert batch.is_empty()
    assert batch.steps_waiting


def test_new_client_starts_at_its_snapshot(loop, records) -> None:
    hub = _hub()
    first = hub.add_client(loop, DEFAULTS, 0)
    for record in records[:3]:
        hub.publish_step(record)
    second = hub.add_client(loop, DEFAULTS, 3)
    hub.publish_step(records[3])
    decoded = _decode(hub, second, hub.take(second, steps_due=True))
    assert (decoded.first_step, decoded.step_count) == (3, 1)
    decoded = _decode(hub, first, hub.take(first, steps_due=True))
    assert (decoded.first_step, decoded.step_count) == (0, 4)


def test_graceful_close_flushes_steps_and_events(loop, records) -> None:
    hub = _hub()
    client = hub.add_client(loop, DEFAULTS, 0)
    for record in records[:4]:
        hub.publish_step(record)
    hub.publish_event({"type": "status", "status": "paused"})
    hub.close_all(CLOSE_GOING_AWAY, "server shutting down")
    batch = hub.take(client, steps_due=False)
    assert batch.segment is not None and batch.segment.step_count == 4
    assert len(batch.events) == 1
    assert batch.close is not None and batch.close.code == CLOSE_GOING_AWAY


def test_options_update_replies_and_resyncs_added_layer(loop, records) -> None:
    hub = _hub()
    client = hub.add_client(loop, DEFAULTS, 0)
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


def test_float16_and_float32_clients_get_separate_encodings(loop, records) -> None:
    hub = _hub()
    half = hub.add_client(loop, DEFAULTS, 0)
    full = hub.add_client(loop, DEFAULTS, 0)
    hub.handle_message(half, OptionsUpdate({"delta_dtype": "float16"}))
    hub.publish_step(records[0])
    a = _decode(hub, half, hub.take(half, steps_due=True))
    b = _decode(hub, full, hub.take(full, steps_due=True))
    assert (a.delta_dtype, b.delta_dtype) == ("float16", "float32")


def test_resync_request_reaches_sender(loop) -> None:
    hub = _hub()
    client = hub.add_client(loop, DEFAULTS, 0)
    hub.handle_message(client, Resync())
    assert hub.take(client, steps_due=True).resync


def test_step_locked_wait_needs_ack(loop, records) -> None:
    hub = _hub()
    client = hub.add_client(loop, DEFAULTS, 0)
    hub.handle_message(client, OptionsUpdate({"step_locked": True}))
    halt = threading.Event()
    assert hub.wait_for_acks(0, halt)  # nothing published yet: step 0 may go

    hub.publish_step(records[0])
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


def test_step_locked_wait_ends_on_halt_and_disconnect(loop, records) -> None:
    hub = _hub()
    client = hub.add_client(loop, DEFAULTS, 0)
    hub.handle_message(client, OptionsUpdate({"step_locked": True}))
    hub.publish_step(records[0])
    halt = threading.Event()
    halt.set()
    assert not hub.wait_for_acks(1, halt)
    hub.remove_client(client)
    assert hub.wait_for_acks(1, threading.Event())


def test_unread_option_confirmations_keep_only_latest(loop) -> None:
    hub = _hub()
    client = hub.add_client(loop, DEFAULTS, 0)
    for rate in (1, 2, 3):
        hub.handle_message(client, OptionsUpdate({"max_frames_per_second": rate}))
    replies = hub.take(client, steps_due=False).replies
    assert len(replies) == 1
    assert json.loads(replies[0])["max_frames_per_second"] == 3


def test_lag_warning_rate_limited_with_counts(
    loop, records, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_module, "LAG_LOG_INTERVAL", 0.0)
    hub = _hub()
    client = hub.add_client(loop, DEFAULTS, 0)
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
