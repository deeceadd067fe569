"""Client messages of the stream protocol: options, acknowledgements, resync.

A client sends small JSON text messages (docs/protocol.md, "Client
messages"). `parse_client_message` turns one into a typed value or raises
`ClientMessageError` with a reason short enough for a WebSocket close frame,
which RFC 6455 caps at 123 bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

MAX_CLIENT_MESSAGE_BYTES = 4096  # a valid message is under 200 bytes
MAX_CLOSE_REASON_BYTES = 123
MIN_FRAMES_PER_SECOND = 0.1
DELTA_DTYPES = ("float32", "float16")
OPTION_KEYS = frozenset(
    {"max_frames_per_second", "delta_dtype", "delta_layers", "step_locked"}
)


class ClientMessageError(ValueError):
    """A client message that breaks the protocol; the reason fits a close frame."""

    def __init__(self, reason: str) -> None:
        super().__init__(close_reason(reason))
        self.reason = close_reason(reason)


@dataclass(frozen=True)
class ClientOptions:
    """The choices of one client; every client starts with the server defaults."""

    max_frames_per_second: float
    delta_dtype: str = "float32"
    delta_layers: int = 0xFFFF_FFFF  # bitmask of weight layers; more bits than layers
    step_locked: bool = False

    def layer_list(self, layer_count: int) -> list[int]:
        return [layer for layer in range(layer_count) if self.delta_layers >> layer & 1]

    def frame_layers(self, layer_count: int) -> int:
        """Return the `delta_layers` bitmask limited to the run's layers."""
        return self.delta_layers & ((1 << layer_count) - 1)

    def to_message(self, layer_count: int) -> dict[str, Any]:
        """Return the options as the server's confirmation message."""
        return {
            "type": "options",
            "max_frames_per_second": self.max_frames_per_second,
            "delta_dtype": self.delta_dtype,
            "delta_layers": self.layer_list(layer_count),
            "step_locked": self.step_locked,
        }


@dataclass(frozen=True)
class OptionsUpdate:
    """The keys an options message set; keys it left out keep their values."""

    values: dict[str, Any]

    def apply(self, options: ClientOptions) -> ClientOptions:
        return replace(options, **self.values)


@dataclass(frozen=True)
class Ack:
    step: int  # the last step of the frame the client finished with


@dataclass(frozen=True)
class Resync:
    """A request for a fresh snapshot."""


ClientMessage = OptionsUpdate | Ack | Resync


def close_reason(text: str) -> str:
    """Cut `text` to the 123 UTF-8 bytes a close frame's reason may hold."""
    encoded = text.encode()
    if len(encoded) <= MAX_CLOSE_REASON_BYTES:
        return text
    return encoded[: MAX_CLOSE_REASON_BYTES - 3].decode(errors="ignore") + "..."


def parse_client_message(
    text: str, layer_count: int, max_frames_per_second: float
) -> ClientMessage:
    """Parse and validate one client text message.

    `layer_count` is the run's number of weight layers and
    `max_frames_per_second` the server's cap for one client.
    """
    if len(text.encode()) > MAX_CLIENT_MESSAGE_BYTES:
        raise ClientMessageError(f"message exceeds {MAX_CLIENT_MESSAGE_BYTES} bytes")
    try:
        message = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        raise ClientMessageError("message is not valid JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ClientMessageError("message must be a JSON object with a string type")

    kind = message.pop("type")
    if kind == "options":
        return _parse_options(message, layer_count, max_frames_per_second)
    if kind == "ack":
        _reject_unknown_keys(message, {"step"}, "ack")
        step = message.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ClientMessageError("ack needs step: a non-negative integer")
        return Ack(step)
    if kind == "resync":
        _reject_unknown_keys(message, set(), "resync")
        return Resync()
    raise ClientMessageError(
        f"unknown message type {kind[:40]!r}; expected options, ack or resync"
    )


def _parse_options(
    message: dict[str, Any], layer_count: int, max_frames_per_second: float
) -> OptionsUpdate:
    _reject_unknown_keys(message, OPTION_KEYS, "options")
    values: dict[str, Any] = {}

    if "max_frames_per_second" in message:
        rate = message["max_frames_per_second"]
        if (
            not isinstance(rate, int | float)
            or isinstance(rate, bool)
            or not MIN_FRAMES_PER_SECOND <= rate <= max_frames_per_second
        ):
            raise ClientMessageError(
                f"max_frames_per_second must be a number in "
                f"[{MIN_FRAMES_PER_SECOND:g}, {max_frames_per_second:g}]"
            )
        values["max_frames_per_second"] = float(rate)

    if "delta_dtype" in message:
        if message["delta_dtype"] not in DELTA_DTYPES:
            raise ClientMessageError("delta_dtype must be float32 or float16")
        values["delta_dtype"] = message["delta_dtype"]

    if "delta_layers" in message:
        layers = message["delta_layers"]
        if (
            not isinstance(layers, list)
            or not all(_is_int(layer) and 0 <= layer < layer_count for layer in layers)
            or len(set(layers)) != len(layers)
        ):
            raise ClientMessageError(
                f"delta_layers must list distinct weight layers 0..{layer_count - 1}"
            )
        values["delta_layers"] = sum(1 << layer for layer in layers)

    if "step_locked" in message:
        if not isinstance(message["step_locked"], bool):
            raise ClientMessageError("step_locked must be true or false")
        values["step_locked"] = message["step_locked"]
    return OptionsUpdate(values)


def _reject_unknown_keys(
    message: dict[str, Any], allowed: set[str] | frozenset[str], kind: str
) -> None:
    unknown = sorted(set(message) - allowed)
    if unknown:
        raise ClientMessageError(f"unknown key {unknown[0][:40]!r} in {kind} message")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
