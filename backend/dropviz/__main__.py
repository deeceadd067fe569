"""Run the command-line interface with `python -m dropviz`."""

from __future__ import annotations

from dropviz.cli import main

raise SystemExit(main())
