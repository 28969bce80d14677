"""The Spark path of the reader: the same table, rules and parts as the pandas path, as one cached frame.

Two ways in, chosen by the Spark backend:
- :func:`from_table`: a table read by pandas (:mod:`lrsweep.data.table`) and its stratified split, converted
  once (the same rows in the same parts as the scikit-learn backend);
- :func:`read_direct`: a Parquet input too large for pandas, read by Spark itself; its columns are profiled in
  one aggregation and planned by the shared rules (:mod:`lrsweep.data.columns`), its parts come from a
  seeded row hash (:func:`lrsweep.data.split.hash_parts`).

Either gives :class:`SparkParts`: a frame holding the feature columns, ``LABEL`` (1.0 = positive), ``PART``
(train/val/test codes) and ``FOLD`` (-1 outside CV folds). pyspark is imported inside functions only.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
from lrsweep.data import uri
from lrsweep.data.columns import (
    ColumnPlan,
    ColumnProfile,
    check_named_columns,
    class_labels,
    plan_columns,
    positive_label,
    rest_label,
    say_one_against_the_rest,
)
from lrsweep.data.source import Source
from lrsweep.data.split import (
    PART_NAMES,
    TEST,
    TRAIN,
    VAL,
    Split,
    check_both_classes,
    check_every_class,
    hash_parts,
)
from lrsweep.data.table import Table
from lrsweep.errors import LrsweepError

__all__ = ["SparkParts", "from_table", "read_direct", "ident", "present", "PREFIX", "LABEL", "PART", "FOLD"]

log = logging.getLogger("lrsweep")

# Columns lrsweep adds to a Spark frame; a data column with this prefix is refused.
PREFIX = "_lrsweep_"
LABEL, PART, FOLD = PREFIX + "label", PREFIX + "part", PREFIX + "fold"


def ident(name: str) -> str:
    """A column name quoted for Spark SQL."""
    return "`" + name.replace("`", "``") + "`"


def present(name: str) -> str:
    """The column as a double, NaN and +-inf read as missing (the pandas path reads them so; scikit-learn's
    SimpleImputer treats NaN as missing)."""
    v = f"CAST({ident(name)} AS DOUBLE)"
    return f"CASE WHEN isnan({v}) OR abs({v}) = CAST('Infinity' AS DOUBLE) THEN CAST(NULL AS DOUBLE) ELSE {v} END"


@dataclass
class SparkParts:
    """A table as one Spark frame with its parts, and what was detected about it."""

    frame: Any  # feature columns, LABEL, PART, FOLD (not cached: the backend decides)
    numeric: list[str]
    categorical: list[str]
    hashed: list[str]
    hash_features: int
    rows: dict[str, int]  # train, val, test
    exact: bool  # read through pandas (exact medians possible) or by Spark directly (approximate)
    fingerprint: dict[str, Any]
    dropped: dict[str, str]
    input_example: pd.DataFrame
    # what the model predicts: the target's (negative, positive) labels, or a multi-class target's K labels
    labels: tuple[str, ...] = ("0", "1")
    classes: list[str] = field(default_factory=list)  # a multi-class target's labels (LABEL holds codes 0..K-1)

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical + self.hashed


def _check_names(columns: list[str]) -> None:
    clash = [c for c in columns if c.startswith(PREFIX)]
    if clash:
        raise LrsweepError(f"column(s) {clash} use the prefix {PREFIX!r} reserved by backend=spark", "rename them")


def from_table(spark: Any, table: Table, split: Split) -> SparkParts:
    """The pandas path's table and split as a Spark frame: the same rows in the same parts."""
    from pyspark.sql import types as T

    _check_names(table.features)
    n = len(table.y)
    part = np.full(n, TRAIN, dtype=np.int32)
    part[split.val], part[split.test] = VAL, TEST
    fold = np.full(n, -1, dtype=np.int32)
    for k, (_, held) in enumerate(split.folds):
        fold[held] = k
    cols: dict[str, Any] = {c: table.X[c].to_numpy(dtype="float64", na_value=np.nan) for c in table.numeric}
    for c in table.categorical + table.hashed:
        s = table.X[c]
        cols[c] = np.where(s.notna().to_numpy(), s.to_numpy(dtype=object), None)
    cols |= {LABEL: table.y.astype("float64"), PART: part, FOLD: fold}
    schema = T.StructType(
        [T.StructField(c, T.DoubleType()) for c in table.numeric]
        + [T.StructField(c, T.StringType()) for c in table.categorical + table.hashed]
        + [
            T.StructField(LABEL, T.DoubleType()),
            T.StructField(PART, T.IntegerType()),
            T.StructField(FOLD, T.IntegerType()),
        ]
    )
    frame = spark.createDataFrame(pd.DataFrame(cols), schema=schema)
    return SparkParts(
        frame, table.numeric, table.categorical, table.hashed, table.hash_features, split.rows, True,
        table.fingerprint, table.dropped, table.X.iloc[split.train[:5]].copy(),
        tuple(table.classes) if table.classes else (table.negative or "0", table.positive), list(table.classes),
    )  # fmt: skip


def _profiles(df: Any, fields: list[Any]) -> tuple[int, list[ColumnProfile]]:
    """Rows, and every column's profile, in one pass (distinct values of text counted approximately)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    def kind(t: Any) -> str:
        if isinstance(t, T.StringType):
            return "text"
        if isinstance(t, T.BooleanType):
            return "bool"
        return "number" if isinstance(t, T.NumericType) else "other"

    kinds = [kind(f.dataType) for f in fields]
    aggs = [F.count(F.lit(1)).alias("n")]
    for i, f in enumerate(fields):
        if kinds[i] == "other":  # dropped by the rules; min/max may not even exist for the type
            continue
        x = F.expr(present(f.name)) if isinstance(f.dataType, T.FractionalType) else F.col(ident(f.name))
        aggs += [F.count(x).alias(f"n{i}"), F.min(x).alias(f"lo{i}"), F.max(x).alias(f"hi{i}")]
        if kinds[i] == "text":
            aggs.append(F.approx_count_distinct(x, 0.01).alias(f"d{i}"))
    row = df.agg(*aggs).first().asDict()
    out = []
    for i, f in enumerate(fields):
        if kinds[i] == "other":
            out.append(ColumnProfile(f.name, "other", 0, 0, True, f.dataType.simpleString()))
            continue
        constant = row[f"n{i}"] > 0 and row[f"lo{i}"] == row[f"hi{i}"]
        distinct = 1 if constant else int(row.get(f"d{i}") or 2)
        out.append(ColumnProfile(f.name, kinds[i], int(row[f"n{i}"]), distinct, True, f.dataType.simpleString()))
    return int(row["n"]), out


def read_direct(
    spark: Any, source: Source, cfg: DatasetConfig, split: SplitConfig, cv: CVConfig, seed: int
) -> SparkParts:
    """Read a Parquet input with Spark, validate it with aggregations, split it by a seeded row hash.

    Differences from the pandas path: parts from the row hash rather than a stratified split; id-like text
    columns found with an approximate distinct count; medians computed approximately by the backend.
    """
    from pyspark.sql import functions as F

    try:
        raw = spark.read.parquet(source.location.url)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise LrsweepError(f"Spark cannot read {source.location.text!r} as Parquet: {first}", "check the file") from exc
    if source.generated is not None:
        for name, expr in source.generated.derived.items():
            if name not in raw.columns:
                raw = raw.withColumn(name, F.expr(expr))
    check_named_columns(cfg, raw.columns, source.name)
    target = str(cfg.target)
    tgt = F.col(ident(target))
    present_rows = raw.where(_has_target(raw, target))
    labels = [r[0] for r in present_rows.select(tgt.cast("string")).distinct().limit(3).collect()]
    if len(labels) > 2 and cfg.positive is None:  # fitted as a multi-class problem
        return _read_direct_classes(spark, raw, source, cfg, split, cv, seed)
    positive = positive_label([str(v) for v in labels], target, None if cfg.positive is None else str(cfg.positive))
    classes: int | str | None = None  # set when more than two: fitted as one class against the rest
    if len(labels) > 2:  # one class against the rest: the classes' counts (one job, only for such targets)
        top = present_rows.groupBy(tgt.cast("string").alias("c")).count().orderBy(F.desc("count"))
        counts = {str(r["c"]): int(r["count"]) for r in top.limit(8).collect()}
        if positive not in counts:
            counts[positive] = raw.where(tgt.cast("string") == positive).count()
        classes = say_one_against_the_rest(target, positive, counts, more=len(counts) > 7)
    negative = rest_label(positive) if classes else next((str(v) for v in labels if str(v) != positive), "0")
    df, n, plan, base = _direct_base(raw, cfg, split, cv, seed, (tgt.cast("string") == positive).cast("double"))
    by_part: dict[tuple[int, int], int] = {
        (r[PART], int(r[LABEL])): r["count"] for r in base.groupBy(PART, LABEL).count().collect()
    }
    for p, name in PART_NAMES.items():
        check_both_classes(by_part.get((p, 0), 0), by_part.get((p, 1), 0), name)
    n_pos = sum(v for (_, y), v in by_part.items() if y == 1)
    fingerprint = _direct_fingerprint(raw, source, n) | {"positive_rate": n_pos / n, "labels": [negative, positive]}
    if classes:
        fingerprint["classes"] = classes
    return _direct_parts(base, raw, source, cfg, plan, by_part, fingerprint, (negative, positive))


def _has_target(raw: Any, target: str) -> Any:
    """Rows whose target is present: not null, and not NaN in a floating-point column (pandas reads NaN as missing,
    and a NaN label would be a class of its own)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    tgt = F.col(ident(target))
    if isinstance(raw.schema[target].dataType, T.FractionalType):
        return tgt.isNotNull() & ~F.isnan(tgt)
    return tgt.isNotNull()


def _direct_base(
    raw: Any, cfg: DatasetConfig, split: SplitConfig, cv: CVConfig, seed: int, label: Any
) -> tuple[Any, int, ColumnPlan, Any]:
    """The rows with a target, their count and column plan, and the cached frame of the planned columns with
    ``label`` as LABEL and each row's part and fold from the row hash."""
    from pyspark.sql import functions as F

    target = str(cfg.target)
    has = _has_target(raw, target)
    n_missing = raw.where(~has).count()
    if n_missing:
        log.warning("dropped %d rows whose target %r is missing", n_missing, target)
    df = raw.where(has)
    fields = [f for f in df.schema.fields if f.name != target and f.name not in set(cfg.drop + cfg.id_columns)]
    _check_names([f.name for f in fields])
    n, profiles = _profiles(df, fields)
    plan = plan_columns(profiles, n, cfg)
    part, fold = hash_parts([F.col(ident(c)) for c in raw.columns], split, cv, seed)
    base = df.select(
        *[F.col(ident(c)).cast("double").alias(c) for c in plan.numeric],
        *[F.col(ident(c)).cast("string").alias(c) for c in plan.categorical + plan.hashed],
        label.alias(LABEL),
        part.alias(PART),
        fold.alias(FOLD),
    ).cache()  # every check after this and the backend's setup read it
    return df, n, plan, base


def _direct_fingerprint(raw: Any, source: Source, n: int) -> dict[str, Any]:
    schema = [f"{f.name}:{f.dataType.simpleString()}" for f in raw.schema.fields]
    return {
        "sha256": uri.footer_sha256(source.location),
        "sha256_of": "parquet file names, sizes and footers",
        "source": source.shown,
        "rows": n,
        "columns": len(raw.columns),
        "schema_sha256": hashlib.sha256("\n".join(schema).encode()).hexdigest()[:16],
        "schema": schema,
    }


def _direct_parts(
    base: Any, raw: Any, source: Source, cfg: DatasetConfig, plan: ColumnPlan, counts: dict[tuple[int, int], int],
    fingerprint: dict[str, Any], labels: tuple[str, ...], classes: list[str] | None = None,
) -> SparkParts:  # fmt: skip
    """The SparkParts of a table Spark read itself (``counts``: rows per (part, label code))."""
    from pyspark.sql import functions as F

    rows = {
        short: sum(v for (q, _), v in counts.items() if q == p)
        for p, short in ((TRAIN, "train"), (VAL, "val"), (TEST, "test"))
    }
    if source.generated is not None:
        fingerprint["generated"] = source.generated.summary()
    example = base.where(F.col(PART) == TRAIN).select(*[F.col(ident(c)) for c in plan.features]).limit(5)
    return SparkParts(
        base, plan.numeric, plan.categorical, plan.hashed, cfg.hash_features, rows, False, fingerprint,
        plan.dropped, example.toPandas(), labels, list(classes or []),
    )  # fmt: skip


def _read_direct_classes(
    spark: Any, raw: Any, source: Source, cfg: DatasetConfig, split: SplitConfig, cv: CVConfig, seed: int
) -> SparkParts:
    """read_direct for a target fitted as a multi-class problem: LABEL holds the class codes 0..K-1, and every
    class must reach every part of the row-hash split (it is not stratified: a small class can miss one)."""
    from pyspark.sql import functions as F

    target = str(cfg.target)
    tgt = F.col(ident(target)).cast("string")
    top = raw.where(_has_target(raw, target)).groupBy(tgt.alias("c")).count().limit(cfg.max_classes + 1).collect()
    counts = {str(r["c"]): int(r["count"]) for r in top}
    classes = class_labels(counts, target, cfg.max_classes, more=len(counts) > cfg.max_classes)
    code = F.element_at(F.create_map(*[F.lit(x) for i, c in enumerate(classes) for x in (c, float(i))]), tgt)
    df, n, plan, base = _direct_base(raw, cfg, split, cv, seed, code)
    by_part = {(r[PART], int(r[LABEL])): r["count"] for r in base.groupBy(PART, LABEL).count().collect()}
    for p, name in PART_NAMES.items():
        check_every_class(np.array([by_part.get((p, k), 0) for k in range(len(classes))]), f"the {name} part", classes)
    fingerprint = _direct_fingerprint(raw, source, n)
    fingerprint |= {"labels": classes, "classes": len(classes), "class_rows": counts}
    return _direct_parts(base, raw, source, cfg, plan, by_part, fingerprint, tuple(classes), classes)
