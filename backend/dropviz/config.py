"""Server settings, read from DROPVIZ_* environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# In a source checkout the page is at backend/dropviz/../../frontend.
DEFAULT_FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"


def default_state_dir() -> Path:
    """Return $XDG_DATA_HOME/dropviz, or ~/.local/share/dropviz without it."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "dropviz"


class Settings(BaseSettings):
    """Settings of one server process; every field has an environment variable."""

    model_config = SettingsConfigDict(env_prefix="DROPVIZ_", extra="ignore")

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8000, ge=1, le=65535, description="TCP port to bind.")
    log_level: str = Field("info", description="Python logging level name.")
    frontend_dir: Path = Field(DEFAULT_FRONTEND_DIR, description="Folder served at /.")
    blas_threads: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "BLAS threads for training. One by default: on a 2-core machine a second "
            "BLAS thread competes with the event loop."
        ),
    )
    max_running_runs: int = Field(4, ge=1, le=256, description="Runs training at once.")
    max_merge_steps: int = Field(
        20_000,
        ge=1,
        description="Unsent steps a client may lag before it is disconnected.",
    )
    max_frames_per_second: float = Field(
        60.0,
        gt=0,
        le=1000,
        description=(
            "Most steps frames sent to one client per second; steps in between merge. "
            "60 matches a typical display refresh."
        ),
    )
    max_stream_bytes_per_second: float = Field(
        50e6,
        gt=0,
        description=(
            "Bytes per second all streams together may send, shared evenly among "
            "them: a client's frames come less often (merging more steps) when "
            "they would pass its share. Copying frames out holds Python's GIL, "
            "so unbounded sending slows training."
        ),
    )
    ws_ping_interval: float = Field(
        20.0, gt=0, description="Seconds between WebSocket keepalive pings."
    )
    ws_ping_timeout: float = Field(
        20.0,
        gt=0,
        description="Seconds to wait for a pong before dropping the connection.",
    )
    ws_max_size: int = Field(
        65_536,
        ge=8192,
        description=(
            "Largest message a client may send, in bytes; the WebSocket library "
            "closes a connection that sends more with code 1009. The stream "
            "closes one over 4,096 bytes with 1008 before that."
        ),
    )
    stream_max_message_bytes: int = Field(
        16 * 1024 * 1024,
        ge=65_536,
        description=(
            "Largest message the stream sends, in bytes; a longer snapshot or "
            "steps frame is split into part frames."
        ),
    )
    allowed_origins: str = Field(
        "",
        description=(
            "Comma-separated origins (scheme://host:port) whose pages may open a "
            "stream. Empty: the server's own origin and its localhost, 127.0.0.1 "
            "and [::1] forms. Clients that send no Origin header always may."
        ),
    )
    data_dir: Path | None = Field(
        None,
        description=(
            "Folder with the subfolders mnist/ and fashion-mnist/, each holding the "
            "four IDX files of its data set; None leaves those two sets unavailable."
        ),
    )
    max_csv_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1024,
        description="Largest CSV upload, in bytes; a larger one gets 413.",
    )
    max_uploaded_datasets: int = Field(
        4,
        ge=1,
        le=1000,
        description=(
            "Uploaded CSV data sets kept in memory at once; one more upload gets "
            "409. Each takes up to 4 times its CSV size as float64 values."
        ),
    )

    state_dir: Path = Field(
        default_factory=default_state_dir,
        description=(
            "Folder of the run index (dropviz.sqlite3) and each run's step file "
            "and checkpoints; created if missing."
        ),
    )
    checkpoint_steps: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description=(
            "Steps between two checkpoints of a training run. Replaying a step's "
            "weights re-runs at most this many steps."
        ),
    )
    checkpoint_seconds: float = Field(
        60.0,
        gt=0,
        description="Seconds of training between two checkpoints, at most.",
    )
    storage_queue_items: int = Field(
        65_536,
        ge=16,
        le=10_000_000,
        description=(
            "Writes (mostly steps, about 60 bytes each) queued for the storage "
            "writer; when full, training waits for the disk."
        ),
    )
    token: SecretStr | None = Field(
        None,
        description=(
            "Access token. When set, every API call and stream must present it; "
            "without it, binding an address other than loopback logs a warning."
        ),
    )
    max_units_per_layer: int = Field(
        4096, ge=1, le=4096, description="Units of one hidden layer, at most."
    )
    max_hidden_layers: int = Field(
        8, ge=1, le=8, description="Hidden layers of a run, at most."
    )
    max_stored_runs: int = Field(
        100,
        ge=1,
        le=100_000,
        description="Runs kept; one more create or import gets 409.",
    )
    max_state_bytes: int = Field(
        2 * 1024**3,
        ge=1024 * 1024,
        description=(
            "Disk use of the state folder, in bytes. Past it, creating, importing "
            "or starting a run gets 409, and a training run pauses."
        ),
    )
    max_clients_per_run: int = Field(
        16,
        ge=1,
        le=10_000,
        description="Open streams of one run; one more is closed with code 1013.",
    )
    max_import_bytes: int = Field(
        256 * 1024 * 1024,
        ge=1024,
        description="Largest run archive accepted by POST /api/runs/import, in bytes.",
    )

    @field_validator("token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, token: object) -> object:
        # docker compose passes an unset variable as an empty string.
        return None if token == "" else token


@lru_cache
def get_settings() -> Settings:
    return Settings()
