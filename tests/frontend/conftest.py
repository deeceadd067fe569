"""Fixtures of the browser tests: a live server and a Chromium per test module,
and a fresh page per test whose uncaught errors fail the test.

A module that needs another server defines its own `server_env` fixture.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright import sync_api

from tests.conftest import LiveServer, serve
from tests.frontend.pages import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PageErrors,
    new_page,
    open_dashboard,
    require_chromium,
)


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """Environment variables for the module's server, on top of a fresh state folder."""
    return {}


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    server_env: dict[str, str],
) -> Iterator[LiveServer]:
    """The module's dropviz server, whose log must contain no traceback at the end."""
    require_chromium()
    module_name = request.module.__name__.rsplit(".", 1)[-1]
    log_path = tmp_path_factory.mktemp(f"{module_name}-server") / "server.log"
    with serve(log_path, server_env) as live:
        yield live


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    require_chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page_errors() -> Iterator[PageErrors]:
    """Uncaught errors of the pages a test opens, which must be none at the end."""
    errors = PageErrors()
    yield errors
    assert errors.errors == [], f"uncaught errors in the page: {errors.errors}"


@pytest.fixture
def blank_page(
    browser: sync_api.Browser,
    page_errors: PageErrors,
) -> Iterator[sync_api.Page]:
    """A page in its own browser context that has loaded nothing yet."""
    page = new_page(browser, page_errors)
    yield page
    page.context.close()


@pytest.fixture
def page(
    browser: sync_api.Browser, page_errors: PageErrors, server: LiveServer
) -> Iterator[sync_api.Page]:
    """The dashboard of the module's server in its own browser context."""
    page = open_dashboard(browser, page_errors, server.base_url)
    yield page
    page.context.close()
