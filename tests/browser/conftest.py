"""Browser tests need Debian's Chromium, Playwright and the npm assets that
``scripts/setup.sh`` installs. Locally they are skipped (with the reason) when any is
missing; in CI (``CI=true``) they fail instead, so a broken setup cannot pass silently."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from offline import missing_requirements  # noqa: E402


@pytest.fixture(scope="session")
def browser():
    missing = missing_requirements()
    if missing:
        msg = "browser test needs: " + "; ".join(missing) + " — run scripts/setup.sh"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg)
        pytest.skip(msg)
    from offline import launch
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()
