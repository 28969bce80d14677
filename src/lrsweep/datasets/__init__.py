"""Datasets: the bundled telco_churn.csv.gz (see README: provenance and SHA-256) and generated tables.

A generator (``ctr``) writes a table with a sidecar ``<table>.meta.json`` saying how it was made. Reading
such a table is ordinary file reading plus what the sidecar adds, through :class:`Generated`: the columns a
reader derives (``derived``), and the generating model (``reference``), whose scores on the sweep's own test
rows give the best figures any model could reach. Nothing else in lrsweep knows a generator by name.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from lrsweep.errors import LrsweepError

__all__ = ["GENERATORS", "Generated", "Reference", "generate", "generated_table"]

# dataset.generator -> the module that writes such tables (ensure_table, sidecar, reference)
GENERATORS = {"ctr": "lrsweep.datasets.ctr", "softmax": "lrsweep.datasets.softmax"}


class Reference(Protocol):
    """A generated table's true model: the positive-class probability of raw rows, shape (n,), for a binary
    generator; a K-class generator returns an (n, K) matrix of class probabilities, columns in sorted label order.

    It is pickled to wherever the rows are (Spark executors), so it holds plain values only.
    """

    columns: tuple[str, ...]  # the raw (and derived) columns it reads

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True)
class Generated:
    """What a generated table's sidecar tells a reader."""

    meta: dict[str, Any]
    reference: Reference
    # columns computed when the table is read: name -> an expression over its columns that pandas' eval and
    # Spark SQL both evaluate (e.g. "hour % 100")
    derived: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """What data.json records: the parameters and the whole table's Bayes-optimal figures."""
        keys = (
            "params",
            "click_rate",
            "classes",
            "class_shares",
            "bayes_log_loss",
            "bayes_roc_auc",
            "bayes_roc_auc_max_binning_error",
            "sha256",
        )
        return {k: self.meta[k] for k in keys if k in self.meta}


def _module(name: str) -> Any:
    if name not in GENERATORS:
        raise LrsweepError(f"dataset.generator={name!r} is not known", f"use one of: {', '.join(GENERATORS)}")
    return importlib.import_module(GENERATORS[name])


def generate(name: str, rows: int | None, seed: int) -> Path:
    """The cached table of generator ``name`` for ``(rows, seed)``, written on first use."""
    module = _module(name)
    return Path(module.ensure_table(rows or module.DEFAULT_ROWS, seed))


def generated_table(path: Path) -> Generated | None:
    """The :class:`Generated` description of a local table written by one of the generators, else None."""
    sidecar = path.with_name(path.name + ".meta.json")
    if path.is_dir() or not sidecar.is_file():
        return None
    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("file") != path.name:
        return None
    made_by = str(meta.get("created_by", "")).split(" ")[0]
    if made_by not in GENERATORS.values():
        return None
    module = importlib.import_module(made_by)
    return Generated(meta, module.reference(meta), dict(module.DERIVED))
