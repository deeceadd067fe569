"""Server settings, read from DROPVIZ_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# In a source checkout the page is at backend/dropviz/../../frontend.
DEFAULT_FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"


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


@lru_cache
def get_settings() -> Settings:
    return Settings()
