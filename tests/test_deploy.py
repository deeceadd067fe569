"""Static checks of the container files and the README's commands.

No Docker engine runs where these tests run, so they check that the
Dockerfile and the compose file start the same entry point on the same port,
and that CI runs the README's test command.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _dockerfile_cmd() -> list[str]:
    text = ROOT.joinpath("Dockerfile").read_text()
    match = re.search(r"^CMD (\[.*\])$", text, re.MULTILINE)
    assert match, "Dockerfile has no exec-form CMD"
    return list(yaml.safe_load(match.group(1)))


def test_compose_and_dockerfile_start_same_server() -> None:
    compose = yaml.safe_load(ROOT.joinpath("docker-compose.yml").read_text())
    service = compose["services"]["dropviz"]
    assert service["command"] == _dockerfile_cmd()
    assert service["command"][:2] == ["dropviz", "serve"]
    port = service["command"][service["command"].index("--port") + 1]
    assert service["ports"] == [f"127.0.0.1:8000:{port}"]
    assert f"EXPOSE {port}" in ROOT.joinpath("Dockerfile").read_text()


def test_compose_healthcheck_probes_api_health() -> None:
    compose = yaml.safe_load(ROOT.joinpath("docker-compose.yml").read_text())
    probe = " ".join(compose["services"]["dropviz"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/api/health" in probe


def test_dockerfile_runs_as_non_root_user() -> None:
    text = ROOT.joinpath("Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")


def test_console_script_points_at_cli() -> None:
    pyproject = ROOT.joinpath("pyproject.toml").read_text()
    assert 'dropviz = "dropviz.cli:main"' in pyproject


def _readme_commands() -> list[str]:
    readme = ROOT.joinpath("README.md").read_text()
    return re.findall(r"```(?:sh|bash|console)\n(.*?)\n```", readme, re.DOTALL)


def test_readme_starts_with_serve_then_test_command() -> None:
    commands = _readme_commands()
    assert "dropviz serve" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_readme_test_command() -> None:
    test_command = _readme_commands()[1].strip()
    ci_script = ROOT.joinpath(".ci", "run").read_text()
    assert test_command in ci_script
    shlex.split(test_command)  # parses as one shell command line
