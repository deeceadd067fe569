"""The page on a server with an access token: the URL fragment hand-off."""

from __future__ import annotations

import httpx
import pytest
from playwright import sync_api

from tests.conftest import LiveServer
from tests.frontend.pages import TIMEOUT_MS, start_digits_run, wait_for_step

pytestmark = pytest.mark.browser

TOKEN = "page-token-81d0c3"


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    return {"DROPVIZ_TOKEN": TOKEN}


def test_page_with_fragment_token_trains_and_streams(
    blank_page: sync_api.Page, server: LiveServer
) -> None:
    page = blank_page
    page.goto(f"{server.base_url}/#token={TOKEN}")
    page.wait_for_selector(
        "#field-dataset option[value='digits']",
        state="attached",
        timeout=TIMEOUT_MS,
    )
    start_digits_run(page, speed="60")
    wait_for_step(page, 5)  # the stream connected with the cookie

    assert "token" not in page.evaluate("window.location.hash")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["dropviz_token"]["value"] == TOKEN
    assert cookies["dropviz_token"]["sameSite"] == "Strict"
    assert httpx.get(f"{server.base_url}/api/runs").status_code == 401
