"""Where a sweep's table comes from, resolved once: a bundled file, a file or URI, or a generated table.

``dataset.source`` selects the kind (``bundled`` | ``file`` | ``generated``); behaviour follows the data it
finds, not the dataset's name: a table written by one of lrsweep's generators carries a sidecar, and its
:class:`~lrsweep.datasets.Generated` description (derived columns, true model) comes with the source.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lrsweep.config import DatasetConfig
from lrsweep.data import uri
from lrsweep.datasets import Generated, generate, generated_table
from lrsweep.errors import LrsweepError

log = logging.getLogger("lrsweep")

__all__ = ["Source", "resolve_source", "bundled_path"]


def bundled_path(name: str) -> Path:
    """The packaged copy of a bundled dataset (``lrsweep/datasets/<name>.csv.gz``)."""
    return Path(str(resources.files("lrsweep.datasets") / f"{name}.csv.gz"))


@dataclass(frozen=True)
class Source:
    """A resolved table: its kind, where its bytes are, its format, and what a generator's sidecar adds."""

    kind: str  # bundled | file | generated
    location: uri.Location
    format: str  # csv | parquet
    generated: Generated | None = None

    @property
    def shown(self) -> str:
        """How data.json and messages name it: "bundled" for a packaged table, else the (redacted) location."""
        return "bundled" if self.kind == "bundled" else self.location.text

    @property
    def name(self) -> str:
        return self.location.name

    @functools.cached_property
    def size_bytes(self) -> int | None:
        """Bytes stored (None when a server does not say)."""
        return uri.size_bytes(self.location)


def _format(loc: uri.Location, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    name = loc.name.lower()
    return "parquet" if (name.endswith((".parquet", ".pq")) or uri.is_dir(loc)) else "csv"


def resolve_source(cfg: DatasetConfig) -> Source:
    """Find the table ``cfg`` names (generating it on first use); refuse, in one line, what cannot be read."""
    cfg.check()
    kind = cfg.kind
    if kind == "generated" and cfg.path is None:
        loc = uri.resolve(str(generate(str(cfg.generator), cfg.rows, cfg.seed)))
    elif kind == "bundled":
        path = bundled_path(cfg.label)
        if not path.is_file():
            raise LrsweepError(
                f"no bundled dataset named {cfg.name!r}",
                "use dataset=telco_churn, or dataset=csv dataset.path=FILE dataset.target=COLUMN",
            )
        loc = uri.resolve(str(path))
    else:  # a file, or a table a generator wrote there
        loc = uri.resolve(str(cfg.path))
    if uri.is_dir(loc) and not uri.parquet_parts(loc):
        raise LrsweepError(
            f"{loc.text!r} is a folder with no Parquet files", "point dataset.path at a CSV or Parquet file"
        )
    generated = generated_table(loc.path) if loc.path is not None else None
    if kind == "generated" and generated is None:
        log.warning("%s has no generator's sidecar: no Bayes-optimal reference figures", loc.text)
    return Source(kind, loc, _format(loc, cfg.format), generated)
