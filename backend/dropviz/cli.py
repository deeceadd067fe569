"""The `dropviz` command: `dropviz serve` starts the dashboard."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

# One BLAS thread unless the user chose otherwise: these variables only take
# effect if set before numpy loads, which the imports inside main() do.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dropviz", description="Watch dropout train a neural network."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the dashboard server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000)")
    serve.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="logging level (default info)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2


def serve(args: argparse.Namespace) -> int:
    from dropviz.config import Settings
    from dropviz.main import create_app
    from dropviz.server import run_server

    overrides = {
        key: value
        for key, value in (
            ("host", args.host),
            ("port", args.port),
            ("log_level", args.log_level),
        )
        if value is not None
    }
    settings = Settings(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if (
        settings.host not in ("127.0.0.1", "localhost", "::1")
        and settings.token is None
    ):
        logging.getLogger("dropviz").warning(
            "binding %s makes the dashboard reachable from other machines, and "
            "no access token is set; set DROPVIZ_TOKEN to require one",
            settings.host,
        )
    logging.getLogger("dropviz").info(
        "dashboard at http://%s:%d/", settings.host, settings.port
    )
    run_server(create_app(settings), settings)
    return 0
