"""Browser tests: Debian's Chromium, driven by Playwright, against a live server."""

from __future__ import annotations

import pytest

# pytest rewrites asserts only in test modules and conftest.py files. Registering
# the helper module makes its failed asserts show the compared values too.
pytest.register_assert_rewrite("tests.frontend.pages")
