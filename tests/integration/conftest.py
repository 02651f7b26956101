"""Fixtures the browser tests share."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from support import require, skip_or_fail

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright never downloads a browser here


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = require("playwright.sync_api", "pip install playwright (no browser download)")
    require("fastapi", "pip install 'datamill[annotate]'")
    if not shutil.which(CHROMIUM):
        skip_or_fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()
