"""dropviz: watch dropout train a neural network, one mini-batch at a time."""

from __future__ import annotations

__version__ = "0.1.0"
