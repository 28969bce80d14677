"""A small tmpfs mounted for one test (root can mount one here and in CI), unmounted after: a full disk
(``size=1m``) or a read-only file system (``ro``: root ignores permission bits, not that)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(folder: Path, options: str = "size=1m") -> Iterator[Path]:
    """``folder`` (made here) as a tmpfs mounted with ``options``; the test is skipped if it cannot be mounted."""
    folder.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({options}) here: {made.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
