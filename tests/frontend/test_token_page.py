"""The page on a server with an access token: the URL fragment hand-off."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright import sync_api

from tests.conftest import LiveServer, start_server, stop_server
from tests.frontend.test_dashboard import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    _require_chromium,
    _start_digits_run,
    _wait_for_step,
)

pytestmark = pytest.mark.browser

TOKEN = "page-token-81d0c3"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    _require_chromium()
    log_path = tmp_path_factory.mktemp("token-page-server") / "server.log"
    live = start_server(log_path, {"DROPVIZ_TOKEN": TOKEN})
    yield live
    stop_server(live)
    assert "Traceback" not in live.log(), live.log()


def test_page_with_fragment_token_trains_and_streams(
    token_server: LiveServer,
) -> None:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda error: page_errors.append(str(error)))

        page.goto(f"{token_server.base_url}/#token={TOKEN}")
        page.wait_for_selector(
            "#field-dataset option[value='digits']",
            state="attached",
            timeout=TIMEOUT_MS,
        )
        _start_digits_run(page, speed="60")
        _wait_for_step(page, 5)  # the stream connected with the cookie

        assert "token" not in page.evaluate("window.location.hash")
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["dropviz_token"]["value"] == TOKEN
        assert cookies["dropviz_token"]["sameSite"] == "Strict"
        context.close()
        browser.close()
    assert page_errors == []
    assert httpx.get(f"{token_server.base_url}/api/runs").status_code == 401
