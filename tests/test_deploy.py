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


def _compose_service() -> dict:
    compose = yaml.safe_load(ROOT.joinpath("docker-compose.yml").read_text())
    return dict(compose["services"]["dropviz"])


def test_compose_environment_names_real_settings() -> None:
    from dropviz.config import Settings

    fields = {f"DROPVIZ_{name.upper()}" for name in Settings.model_fields}
    environment = _compose_service()["environment"]
    readme = ROOT.joinpath("README.md").read_text()
    assert set(environment) <= fields, set(environment) - fields
    for limit in (
        "DROPVIZ_TOKEN",
        "DROPVIZ_MAX_RUNNING_RUNS",
        "DROPVIZ_MAX_STORED_RUNS",
        "DROPVIZ_MAX_STATE_BYTES",
        "DROPVIZ_MAX_UNITS_PER_LAYER",
        "DROPVIZ_MAX_HIDDEN_LAYERS",
        "DROPVIZ_MAX_CLIENTS_PER_RUN",
        "DROPVIZ_MAX_CSV_BYTES",
        "DROPVIZ_MAX_IMPORT_BYTES",
    ):
        assert limit in environment
        assert f"`{limit}`" in readme  # each limit is documented


def test_compose_defaults_match_settings_defaults() -> None:
    from dropviz.config import Settings

    defaults = Settings(state_dir=Path("/data"))
    for variable, value in _compose_service()["environment"].items():
        match = re.fullmatch(r"\$\{(\w+):-(.*)\}", str(value))
        if match and match.group(2):
            name = variable.removeprefix("DROPVIZ_").lower()
            assert str(getattr(defaults, name)) == match.group(2), variable


def test_state_dir_on_owned_named_volume() -> None:
    service = _compose_service()
    compose = yaml.safe_load(ROOT.joinpath("docker-compose.yml").read_text())
    state_dir = service["environment"]["DROPVIZ_STATE_DIR"]
    volume, _, mount = service["volumes"][0].partition(":")
    assert mount == state_dir
    assert volume in compose["volumes"]  # named, so it outlives the container

    dockerfile = ROOT.joinpath("Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)$", dockerfile, re.MULTILINE)[-1]
    assert f"DROPVIZ_STATE_DIR={state_dir}" in dockerfile
    assert f"chown {user}:{user} {state_dir}" in dockerfile
    assert f'VOLUME ["{state_dir}"]' in dockerfile


def test_compose_grace_period_covers_shutdown() -> None:
    grace = _compose_service()["stop_grace_period"]
    assert grace.endswith("s")
    package = ROOT.joinpath("backend", "dropviz")
    source = "".join(path.read_text() for path in sorted(package.glob("*.py")))
    match = re.search(r"timeout_graceful_shutdown=(\w+)", source)
    assert match, "the server no longer pins uvicorn's graceful shutdown timeout"
    timeout = match.group(1)
    if not timeout.isdigit():  # a named constant
        constant = re.search(rf"^{timeout} = (\d+)", source, re.MULTILINE)
        assert constant, f"{timeout} is not set to a whole number of seconds"
        timeout = constant.group(1)
    # The open connections' wait, plus a few seconds to write checkpoints.
    assert int(grace[:-1]) >= int(timeout) + 5


def test_image_installs_like_readme() -> None:
    dockerfile = ROOT.joinpath("Dockerfile").read_text()
    readme_install = _readme_commands()[0]
    assert "pip install -e ." in readme_install
    assert "pip install --no-cache-dir -e ." in dockerfile
    assert _dockerfile_cmd()[:2] == ["dropviz", "serve"]
    assert "dropviz serve" in readme_install
