"""Data: where a table comes from, the one set of column rules, the split, and the parts a backend receives.

- ``source.py``  bundled | file (local path or URI, ``uri.py``) | generated: resolved once per sweep
- ``columns.py`` the column rules (numeric, one-hot, hashed, dropped) and the positive label, for every engine
- ``table.py``   the pandas path: a validated table in memory
- ``spark.py``   the Spark path: the same rules and parts as one Spark frame
- ``split.py``   train / validation / test and CV folds (stratified; or a seeded row hash for Spark reads)
- ``handle.py``  what the sweep hands a backend: the source, read on demand for the engine it uses
"""

from __future__ import annotations

from lrsweep.config import DatasetConfig
from lrsweep.data.columns import ColumnPlan, ColumnProfile, plan_columns, positive_label
from lrsweep.data.handle import DataHandle, DataSummary, open_data
from lrsweep.data.source import Source, bundled_path, resolve_source
from lrsweep.data.split import Split, cv_folds, split_table
from lrsweep.data.table import Table, as_text, read_table

__all__ = [
    "ColumnPlan",
    "ColumnProfile",
    "DataHandle",
    "DataSummary",
    "Source",
    "Split",
    "Table",
    "as_text",
    "bundled_path",
    "cv_folds",
    "load_table",
    "open_data",
    "plan_columns",
    "positive_label",
    "read_table",
    "resolve_source",
    "split_table",
]


def load_table(cfg: DatasetConfig) -> Table:
    """Resolve and read the table ``cfg`` names (pandas): ``read_table(resolve_source(cfg), cfg)``."""
    return read_table(resolve_source(cfg), cfg)
