"""A sweep's data, opened once: the resolved source and, on demand, its parts for one engine.

The sweep opens the data (:func:`open_data`) and hands the :class:`DataHandle` to the backend's
``prepare``; the backend takes the parts in the form it works with (:meth:`DataHandle.pandas` or
:meth:`DataHandle.spark`) and answers with a :class:`DataSummary`, which the sweep logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
from lrsweep.data.source import Source, resolve_source
from lrsweep.data.split import Split, split_table
from lrsweep.data.table import Table, read_table
from lrsweep.datasets import Reference

__all__ = ["DataHandle", "DataSummary", "open_data"]


@dataclass
class DataSummary:
    """What was read, for data.json, the parent run's params and the summary."""

    fingerprint: dict[str, Any]
    rows: dict[str, int]  # rows per part: train, val, test
    features: dict[str, list[str]]  # numeric, categorical (and hashed)
    dropped: dict[str, str] = field(default_factory=dict)
    input_example: pd.DataFrame | None = None  # a few raw training rows: the logged model's example
    sparse: bool = False  # the features are a sparse matrix (hashed, or a very wide one-hot): no dense-Hessian solver
    classes: list[str] = field(default_factory=list)  # a multi-class target's labels (codes 0..K-1); empty: binary

    @staticmethod
    def features_of(numeric: list[str], categorical: list[str], hashed: list[str]) -> dict[str, list[str]]:
        out = {"numeric": numeric, "categorical": categorical}
        return out | {"hashed": hashed} if hashed else out


@dataclass
class DataHandle:
    source: Source
    dataset: DatasetConfig
    split_cfg: SplitConfig
    cv: CVConfig
    seed: int
    _parts: tuple[Table, Split] | None = None

    @property
    def reference(self) -> Reference | None:
        """A generated table's true model, else None."""
        return self.source.generated.reference if self.source.generated else None

    def pandas(self) -> tuple[Table, Split]:
        """The whole table in memory and its stratified split (read and split once)."""
        if self._parts is None:
            table = read_table(self.source, self.dataset)
            self._parts = (table, split_table(table.y, self.split_cfg, self.cv, self.seed, table.classes))
        return self._parts

    def spark(self, spark: Any, *, direct: bool) -> Any:
        """The parts as one Spark frame (:class:`lrsweep.data.spark.SparkParts`); ``direct``: Spark reads the
        Parquet input itself (large data) instead of converting the pandas table."""
        from lrsweep.data import spark as spark_path

        if direct:
            return spark_path.read_direct(spark, self.source, self.dataset, self.split_cfg, self.cv, self.seed)
        return spark_path.from_table(spark, *self.pandas())


def open_data(dataset: DatasetConfig, split: SplitConfig, cv: CVConfig, seed: int) -> DataHandle:
    """Resolve the table (generating it on first use); reading waits for the backend."""
    return DataHandle(resolve_source(dataset), dataset, split, cv, seed)
