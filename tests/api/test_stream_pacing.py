"""How often the stream sends a client steps frames."""

from __future__ import annotations

import asyncio

import pytest

from dropviz.api.routes.stream import _frame_interval, _ladder_ceil
from dropviz.config import Settings
from dropviz.streaming.hub import ClientQueue
from dropviz.streaming.options import ClientOptions

SETTINGS = Settings(max_frames_per_second=60.0, max_stream_bytes_per_second=50e6)


def _client(rate: float) -> ClientQueue:
    loop = asyncio.new_event_loop()
    loop.close()  # only the options are read
    return ClientQueue(loop, ClientOptions(max_frames_per_second=rate), 0)


@pytest.mark.parametrize(
    "count, rounded",
    [(0, 1), (1, 1), (7, 7), (8, 8), (9, 10), (17, 20), (64, 64), (65, 80), (129, 160)],
)
def test_ladder_rounds_up_at_most_a_quarter(count: int, rounded: int) -> None:
    assert _ladder_ceil(count) == rounded
    assert rounded <= max(1, count) * 1.25


def test_small_frames_keep_requested_rate() -> None:
    assert _frame_interval(_client(60.0), 105_000, 7, SETTINGS) == pytest.approx(1 / 60)
    assert _frame_interval(_client(2.0), 105_000, 1, SETTINGS) == pytest.approx(0.5)


def test_large_frames_stay_within_byte_share() -> None:
    for streams in (1, 20):
        interval = _frame_interval(_client(60.0), 2_680_000, streams, SETTINGS)
        share = SETTINGS.max_stream_bytes_per_second / streams
        assert 2_680_000 / interval <= share
        # Rounding up to whole base intervals and to the ladder wastes less
        # than half of the share.
        assert 2_680_000 / interval > share / 2


def test_interval_ignores_small_size_changes() -> None:
    one_step = _frame_interval(_client(60.0), 2_679_100, 20, SETTINGS)
    many_steps = _frame_interval(_client(60.0), 2_743_272, 20, SETTINGS)
    assert one_step == many_steps
