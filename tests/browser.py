"""Debian's Chromium (``make test`` installs it), driven by Playwright, which never downloads a browser."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

__all__ = ["CHROMIUM", "launched"]

CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def launched() -> Iterator[Any]:
    """A headless Chromium browser; the test is skipped only where Playwright or the package is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]' (make test does)")
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium (make test does)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()
