"""Schemathesis against the live server's OpenAPI schema: no 5xx, no bad shapes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import start_server, stop_server

# Small runs only, so that generated configs create and train quickly.
FUZZ_LIMITS = {
    "DROPVIZ_MAX_STORED_RUNS": "20",
    "DROPVIZ_MAX_UNITS_PER_LAYER": "64",
    "DROPVIZ_MAX_HIDDEN_LAYERS": "2",
}
FUZZ_TIMEOUT = 120.0  # seconds; the run took about 15 on a 2-core machine


def test_openapi_fuzz_finds_no_server_error(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server.log", FUZZ_LIMITS)
    executable = shutil.which("schemathesis", path=os.path.dirname(sys.executable))
    assert executable, "schemathesis is missing; install the test extra"
    try:
        result = subprocess.run(
            [
                executable,
                "run",
                f"{server.base_url}/openapi.json",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--phases",
                "coverage,fuzzing,stateful",
                "--max-examples",
                "10",
                "--seed",
                "1",
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--no-color",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=FUZZ_TIMEOUT,
            cwd=tmp_path,
        )
    finally:
        stop_server(server)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # Background failures, such as an evaluation job or a training thread
    # that raised, return 200 but log a traceback.
    assert "Traceback" not in server.log(), server.log()[-6000:]
