"""The Origin allowlist of WebSocket handshakes."""

from __future__ import annotations

import pytest

from dropviz.api.origins import allowed_origins, normalize_origin, origin_allowed
from dropviz.config import Settings


def test_default_allows_own_origin_and_loopback_forms() -> None:
    allowed = allowed_origins(Settings(host="127.0.0.1", port=8000))
    for origin in (
        "http://127.0.0.1:8000",
        "http://localhost:8000",
        "http://[::1]:8000",
        "HTTP://LocalHost:8000",
    ):
        assert origin_allowed(origin, allowed), origin
    for origin in (
        "http://localhost:8001",
        "https://localhost:8000",
        "http://evil.example",
        "null",
        "",
    ):
        assert not origin_allowed(origin, allowed), origin


def test_missing_origin_allowed() -> None:
    assert origin_allowed(None, allowed_origins(Settings()))


def test_default_includes_bound_host() -> None:
    allowed = allowed_origins(Settings(host="192.0.2.7", port=9000))
    assert origin_allowed("http://192.0.2.7:9000", allowed)
    assert origin_allowed("http://localhost:9000", allowed)


def test_port_80_matches_origin_without_port() -> None:
    allowed = allowed_origins(Settings(host="localhost", port=80))
    assert origin_allowed("http://localhost", allowed)


def test_configured_origins_replace_defaults() -> None:
    settings = Settings(allowed_origins="https://dash.example, http://10.0.0.2:8000")
    allowed = allowed_origins(settings)
    assert origin_allowed("https://dash.example:443", allowed)
    assert origin_allowed("http://10.0.0.2:8000", allowed)
    assert not origin_allowed("http://127.0.0.1:8000", allowed)


def test_invalid_configured_origin_raises() -> None:
    with pytest.raises(ValueError, match="invalid origin 'localhost:8000'"):
        allowed_origins(Settings(allowed_origins="localhost:8000"))


@pytest.mark.parametrize(
    "value", ["ftp://a.example", "http://a.example/path", "http://:80", "http://a:x"]
)
def test_normalize_rejects_non_origins(value: str) -> None:
    assert normalize_origin(value) is None
