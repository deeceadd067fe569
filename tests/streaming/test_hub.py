"""Fan-out and lossless merging, driven without a network."""

from __future__ import annotations

import asyncio

import numpy as np

from dropviz.streaming import frames
from dropviz.streaming.hub import CLOSE_TRY_AGAIN_LATER, CloseRequest, StreamHub
from dropviz.training.config import TrainConfig
from dropviz.training.trainer import Trainer

CONFIG = TrainConfig(dataset="moons", n_samples=200, hidden_sizes=(6, 5), batch_size=10)


def test_slow_client_receives_exact_merged_frame() -> None:
    async def scenario() -> None:
        trainer = Trainer(CONFIG)
        hub = StreamHub("test", CONFIG.mask_scope, max_merge_steps=1000)
        client = hub.add_client(asyncio.get_running_loop())
        records = [trainer.step() for _ in range(7)]
        for record in records:
            hub.publish_step(record)
        hub.publish_event({"type": "epoch", "epoch": 0})

        messages = await client.next_messages()
        assert not isinstance(messages, CloseRequest)
        assert len(messages) == 2
        assert messages[1] == '{"type":"epoch","epoch":0}'
        decoded = frames.decode_steps(messages[0], trainer.layer_sizes)
        assert decoded.first_step == 0
        assert decoded.step_count == 7
        for layer in range(len(trainer.layer_sizes) - 1):
            expected = np.zeros_like(records[0].weight_deltas[layer])
            for record in records:
                expected += record.weight_deltas[layer]
            assert np.array_equal(decoded.weight_deltas[layer], expected)
        for step_masks, record in zip(decoded.masks, records, strict=True):
            for got, want in zip(step_masks, record.masks, strict=True):
                assert np.array_equal(got, want)
        assert client.merged_frames == 1

    asyncio.run(scenario())


def test_keeping_up_clients_share_one_encoding() -> None:
    async def scenario() -> None:
        trainer = Trainer(CONFIG)
        hub = StreamHub("test", CONFIG.mask_scope, max_merge_steps=1000)
        loop = asyncio.get_running_loop()
        first, second = hub.add_client(loop), hub.add_client(loop)
        hub.publish_step(trainer.step())
        a = await first.next_messages()
        b = await second.next_messages()
        assert isinstance(a, list) and isinstance(b, list)
        assert a[0] is b[0]  # the same bytes object, encoded once

    asyncio.run(scenario())


def test_merged_record_leaves_shared_payload_untouched() -> None:
    async def scenario() -> None:
        trainer = Trainer(CONFIG)
        hub = StreamHub("test", CONFIG.mask_scope, max_merge_steps=1000)
        loop = asyncio.get_running_loop()
        fast, slow = hub.add_client(loop), hub.add_client(loop)
        first = trainer.step()
        original = first.weight_deltas[0].copy()
        hub.publish_step(first)
        await fast.next_messages()
        hub.publish_step(trainer.step())  # merges into the slow client's pending frame
        assert np.array_equal(first.weight_deltas[0], original)
        fast_frame = await fast.next_messages()
        slow_frame = await slow.next_messages()
        assert isinstance(fast_frame, list) and isinstance(slow_frame, list)
        assert frames.decode_steps(slow_frame[0], trainer.layer_sizes).step_count == 2

    asyncio.run(scenario())


def test_client_past_merge_limit_is_closed() -> None:
    async def scenario() -> None:
        trainer = Trainer(CONFIG)
        hub = StreamHub("test", CONFIG.mask_scope, max_merge_steps=3)
        client = hub.add_client(asyncio.get_running_loop())
        for _ in range(4):
            hub.publish_step(trainer.step())
        result = await client.next_messages()
        assert isinstance(result, CloseRequest)
        assert result.code == CLOSE_TRY_AGAIN_LATER

    asyncio.run(scenario())
