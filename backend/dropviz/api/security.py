"""Access control for every request: the access token and cross-site writes.

With an access token set (DROPVIZ_TOKEN), each API call, stream and API
document must present it, as `Authorization: Bearer <token>`, as the
`dropviz_token` cookie, or, for WebSocket handshakes only, because browsers
cannot set headers there, as the `token` query parameter. The page's own
files and `GET /api/health` stay open, so the page can load and a
container health check needs no secret. The page reads the token from its
URL fragment (`#token=...`) once and stores it in the cookie (frontend/js/token.js).

Independently of the token, a state-changing call (any method but GET,
HEAD and OPTIONS) under /api/ gets 403 when a browser marks it cross-site
(`Sec-Fetch-Site: cross-site`). Its body must be JSON, else the response is 415.
So a form or `text/plain` post, which a foreign page can send without a
CORS preflight, never reaches a handler. Routes that take another body
type check it themselves.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, unquote

from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

TOKEN_COOKIE = "dropviz_token"
PROTECTED_PREFIXES = ("/api/", "/ws/", "/docs", "/redoc", "/openapi.json")
OPEN_PATHS = frozenset({"/api/health"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Routes that read a raw body of their own type and check the Content-Type.
RAW_BODY_PATHS = frozenset({"/api/datasets/csv", "/api/runs/import"})
REJECTED_LOG_INTERVAL = 100  # log the 1st, 101st, ... rejected request


class RedactTokenFilter(logging.Filter):
    """Replace `token=<value>` in log lines with `token=<redacted>`.

    uvicorn logs each WebSocket handshake's path with its query string, which
    is where a browser's stream carries the token.
    """

    _pattern = re.compile(r"(token=)[^&\s\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg = self._pattern.sub(r"\1<redacted>", message)
            record.args = None
        return True


def install_log_redaction() -> None:
    """Add the token filter to uvicorn's loggers; call after uvicorn set them up."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger_ = logging.getLogger(name)
        if not any(isinstance(f, RedactTokenFilter) for f in logger_.filters):
            logger_.addFilter(RedactTokenFilter())


class AccessMiddleware:
    """Pure ASGI middleware, so streams and WebSockets pass through untouched."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._token = token.encode() if token else None
        self.rejected = 0  # requests rejected for a missing or wrong token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
        }

        if self._token is not None and _is_protected(path):
            if not self._presents_token(scope, headers):
                self._log_rejection(scope, path)
                if scope["type"] == "websocket":
                    # Closing before accept refuses the handshake with HTTP 403.
                    await send({"type": "websocket.close", "code": 1008})
                else:
                    await _send_json(
                        send,
                        401,
                        "Missing or invalid access token; send it as "
                        "Authorization: Bearer <token>, or open the page as "
                        "http://<host>:<port>/#token=<token>.",
                        extra_headers=[(b"www-authenticate", b"Bearer")],
                    )
                return

        if scope["type"] == "http" and _is_state_changing(scope["method"], path):
            problem = _write_problem(path, headers)
            if problem is not None:
                await _send_json(send, *problem)
                return
        await self.app(scope, receive, send)

    def _presents_token(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self._token is not None
        candidates = []
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            candidates.append(credentials.strip())
        try:
            cookie = SimpleCookie(headers.get("cookie", ""))
        except CookieError:
            cookie = SimpleCookie()
        if TOKEN_COOKIE in cookie:
            # The page stores the token URL-encoded (frontend/js/token.js).
            candidates.append(unquote(cookie[TOKEN_COOKIE].value))
        if scope["type"] == "websocket":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            candidates.extend(query.get("token", []))
        return any(
            hmac.compare_digest(candidate.encode(), self._token)
            for candidate in candidates
        )

    def _log_rejection(self, scope: Scope, path: str) -> None:
        self.rejected += 1
        if self.rejected % REJECTED_LOG_INTERVAL == 1:
            client = scope.get("client") or ("?", 0)
            logger.warning(
                "request rejected, missing or invalid access token: client=%s "
                "path=%s rejected_total=%d",
                client[0],
                path,
                self.rejected,
            )


def _is_protected(path: str) -> bool:
    return path.startswith(PROTECTED_PREFIXES) and path not in OPEN_PATHS


def _is_state_changing(method: str, path: str) -> bool:
    return method not in SAFE_METHODS and path.startswith("/api/")


def _write_problem(path: str, headers: dict[str, str]) -> tuple[int, str] | None:
    """Return (status, detail) when a state-changing call must be rejected."""
    if headers.get("sec-fetch-site", "") == "cross-site":
        return (
            403,
            "Cross-site requests may not change state; use the dashboard page "
            "served by this server, or a client that is not a browser.",
        )
    if path in RAW_BODY_PATHS:
        return None
    content_type = headers.get("content-type")
    has_body = headers.get("content-length", "0") not in ("", "0") or (
        "transfer-encoding" in headers
    )
    if content_type is None and not has_body:
        return None  # a bare POST such as /start carries no body to check
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return (
            415,
            f"Content-Type {content_type!r} is not supported; send a JSON body "
            "with Content-Type: application/json.",
        )
    return None


async def _send_json(
    send: Send,
    status_code: int,
    detail: str,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(extra_headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
