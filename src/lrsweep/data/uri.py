"""Where a table's bytes are: a local path or a URI (placeholder: local paths and file:// only)."""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lrsweep.errors import LrsweepError
from lrsweep.redact import redact_uri

__all__ = ["Location", "is_uri", "resolve", "is_dir", "parquet_parts", "size_bytes", "read_pandas", "sha256"]


def is_uri(text: str) -> bool:
    head, sep, _ = text.partition("://")
    return bool(sep) and len(head) > 1 and head.replace("+", "").replace("-", "").replace(".", "").isalnum()


@dataclass(frozen=True)
class Location:
    text: str  # as given, redacted: for messages and logs
    url: str
    path: Path | None = None

    @property
    def is_remote(self) -> bool:
        return self.path is None

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


def resolve(text: str) -> Location:
    shown = redact_uri(text)
    if is_uri(text) and not text.startswith("file://"):
        raise LrsweepError(f"cannot read {shown}: remote URIs are not supported yet", "use a local path")
    path = Path(text[len("file://") :] if text.startswith("file://") else text).expanduser()
    if not path.exists():
        raise LrsweepError(
            f"data file {str(path)!r} does not exist", "check dataset.path (relative to the working directory)"
        )
    return Location(str(path), str(path), path)


def is_dir(loc: Location) -> bool:
    return loc.path is not None and loc.path.is_dir()


def parquet_parts(loc: Location) -> list[Path]:
    assert loc.path is not None
    return sorted(loc.path.glob("*.parquet")) if loc.path.is_dir() else [loc.path]


def size_bytes(loc: Location) -> int:
    return sum(f.stat().st_size for f in parquet_parts(loc)) if is_dir(loc) else loc.path.stat().st_size  # type: ignore[union-attr]


def read_pandas(loc: Location, fmt: str) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(loc.path)
    return pd.read_csv(loc.path, low_memory=False)


def sha256(loc: Location) -> str:
    """SHA-256 of the data's bytes; for a .gz file, of the bytes inside; for a folder, its parts in name order."""
    h = hashlib.sha256()
    for f in parquet_parts(loc) if is_dir(loc) else [loc.path]:
        opener = gzip.open if str(f).endswith(".gz") else open
        with opener(f, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
