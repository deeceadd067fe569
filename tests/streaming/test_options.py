"""Parsing and validation of the JSON messages a stream client sends."""

from __future__ import annotations

import json

import pytest

from dropviz.streaming.options import (
    MAX_CLIENT_MESSAGE_BYTES,
    Ack,
    ClientMessageError,
    ClientOptions,
    OptionsUpdate,
    Resync,
    close_reason,
    parse_client_message,
)

LAYER_COUNT = 3
MAX_FPS = 60.0


def _parse(message: object) -> object:
    text = message if isinstance(message, str) else json.dumps(message)
    return parse_client_message(text, LAYER_COUNT, MAX_FPS)


def test_options_update_sets_only_given_keys() -> None:
    update = _parse({"type": "options", "delta_dtype": "float16", "delta_layers": [2]})
    assert isinstance(update, OptionsUpdate)
    options = update.apply(ClientOptions(max_frames_per_second=60.0))
    assert options.delta_dtype == "float16"
    assert options.frame_layers(LAYER_COUNT) == 0b100
    assert options.max_frames_per_second == 60.0
    assert options.step_locked is False


def test_options_full_message_round_trips_through_confirmation() -> None:
    message = {
        "type": "options",
        "max_frames_per_second": 2,
        "delta_dtype": "float32",
        "delta_layers": [0, 2],
        "step_locked": True,
    }
    update = _parse(message)
    assert isinstance(update, OptionsUpdate)
    options = update.apply(ClientOptions(max_frames_per_second=60.0))
    assert options.to_message(LAYER_COUNT) == {**message, "max_frames_per_second": 2.0}


def test_default_options_select_every_layer() -> None:
    options = ClientOptions(max_frames_per_second=60.0)
    assert options.frame_layers(LAYER_COUNT) == 0b111
    assert options.layer_list(LAYER_COUNT) == [0, 1, 2]


def test_ack_and_resync_parse() -> None:
    assert _parse({"type": "ack", "step": 41}) == Ack(41)
    assert _parse({"type": "resync"}) == Resync()


@pytest.mark.parametrize(
    "text, reason",
    [
        ("{not json", "not valid JSON"),
        ('{"type": "options", "max_frames_per_second": NaN}', "not valid JSON"),
        ("[1, 2]", "JSON object with a string type"),
        ('{"kind": "options"}', "JSON object with a string type"),
        ('{"type": "subscribe"}', "unknown message type 'subscribe'"),
        ('{"type": "options", "fps": 3}', "unknown key 'fps'"),
        ('{"type": "options", "max_frames_per_second": 0}', "[0.1, 60]"),
        ('{"type": "options", "max_frames_per_second": 61}', "[0.1, 60]"),
        ('{"type": "options", "max_frames_per_second": 1e999}', "[0.1, 60]"),
        ('{"type": "options", "max_frames_per_second": true}', "[0.1, 60]"),
        ('{"type": "options", "max_frames_per_second": "5"}', "[0.1, 60]"),
        ('{"type": "options", "delta_dtype": "int8"}', "float32 or float16"),
        ('{"type": "options", "delta_layers": [3]}', "weight layers 0..2"),
        ('{"type": "options", "delta_layers": [1, 1]}', "distinct"),
        ('{"type": "options", "delta_layers": 1}', "weight layers 0..2"),
        ('{"type": "options", "delta_layers": [true]}', "weight layers 0..2"),
        ('{"type": "options", "step_locked": 1}', "true or false"),
        ('{"type": "ack"}', "non-negative integer"),
        ('{"type": "ack", "step": -1}', "non-negative integer"),
        ('{"type": "ack", "step": 2.0}', "non-negative integer"),
        ('{"type": "ack", "step": 1, "extra": 0}', "unknown key 'extra'"),
        ('{"type": "resync", "now": true}', "unknown key 'now'"),
    ],
)
def test_invalid_message_raises_with_reason(text: str, reason: str) -> None:
    with pytest.raises(ClientMessageError) as excinfo:
        _parse(text)
    assert reason in excinfo.value.reason


def test_oversized_message_raises() -> None:
    text = json.dumps({"type": "resync", "pad": "x" * MAX_CLIENT_MESSAGE_BYTES})
    with pytest.raises(ClientMessageError, match="exceeds 4096 bytes"):
        _parse(text)


def test_every_reason_fits_close_frame() -> None:
    long_type = json.dumps({"type": "é" * 500})
    with pytest.raises(ClientMessageError) as excinfo:
        _parse(long_type)
    assert len(excinfo.value.reason.encode()) <= 123


def test_close_reason_cuts_at_character_boundary() -> None:
    reason = close_reason("é" * 100)  # 200 bytes
    assert len(reason.encode()) <= 123
    assert reason.endswith("...")
    assert close_reason("short") == "short"
