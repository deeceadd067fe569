"""Checks of the server's configurable limits that request schemas cannot know."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError

from dropviz.config import Settings


def check_layer_limits(
    hidden_sizes: Sequence[int], settings: Settings, loc: tuple[str, ...]
) -> None:
    """Raise a 422 naming max_hidden_layers or max_units_per_layer when passed."""
    errors: list[dict[str, Any]] = []
    if len(hidden_sizes) > settings.max_hidden_layers:
        errors.append(
            {
                "type": "too_long",
                "loc": (*loc, "hidden_sizes"),
                "msg": (
                    f"{len(hidden_sizes)} hidden layers exceed max_hidden_layers, "
                    f"{settings.max_hidden_layers}; use fewer layers, or raise "
                    "DROPVIZ_MAX_HIDDEN_LAYERS on the server"
                ),
                "input": list(hidden_sizes),
            }
        )
    for index, size in enumerate(hidden_sizes):
        if size > settings.max_units_per_layer:
            errors.append(
                {
                    "type": "less_than_equal",
                    "loc": (*loc, "hidden_sizes", index),
                    "msg": (
                        f"{size} units exceed max_units_per_layer, "
                        f"{settings.max_units_per_layer}; use a smaller layer, or "
                        "raise DROPVIZ_MAX_UNITS_PER_LAYER on the server"
                    ),
                    "input": size,
                }
            )
    if errors:
        raise RequestValidationError(errors)
