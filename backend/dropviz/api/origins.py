"""The `Origin` check of WebSocket handshakes.

Browsers let any page open a WebSocket to any server, so without this check a
page on another site could watch and, through client messages, hold back a
run. Clients that are not browsers send no `Origin` header and pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from dropviz.config import Settings

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]  # scheme, host, port


def normalize_origin(value: str) -> Origin | None:
    """Return (scheme, host, port) of an origin, lowercased; None if invalid."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def allowed_origins(settings: Settings) -> frozenset[Origin]:
    """Return the origins whose pages may open a stream.

    `settings.allowed_origins` lists them, comma-separated; when it is empty,
    the server's own origin and its loopback forms are allowed.
    """
    if settings.allowed_origins.strip():
        values = [v for v in settings.allowed_origins.split(",") if v.strip()]
    else:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        values = [f"http://{name}:{settings.port}" for name in (host, *LOOPBACK_HOSTS)]
    origins = set()
    for value in values:
        origin = normalize_origin(value)
        if origin is None:
            raise ValueError(
                f"invalid origin {value.strip()!r} in DROPVIZ_ALLOWED_ORIGINS; "
                "expected scheme://host[:port], e.g. http://localhost:8000"
            )
        origins.add(origin)
    return frozenset(origins)


def origin_allowed(header: str | None, allowed: frozenset[Origin]) -> bool:
    """Return whether a handshake with this `Origin` header may proceed."""
    if header is None:
        return True
    return normalize_origin(header) in allowed
