"""The pandas path of the reader: a whole table in memory, validated by the shared column rules.

Every problem a user can cause with their data ends here as a LrsweepError naming the fix, before a study
or an MLflow run exists.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lrsweep.config import DatasetConfig
from lrsweep.data import uri
from lrsweep.data.columns import (
    ColumnProfile,
    check_named_columns,
    class_labels,
    plan_columns,
    positive_label,
    rest_label,
    say_one_against_the_rest,
)
from lrsweep.data.source import Source
from lrsweep.errors import LrsweepError

__all__ = ["Table", "read_table", "read_frame", "as_text", "profile_frame"]

log = logging.getLogger("lrsweep")


@dataclass
class Table:
    """Features and a 0/1 target (or class codes 0..K-1, see ``classes``), with what was detected about the
    columns."""

    X: pd.DataFrame
    y: np.ndarray
    target: str
    positive: str
    numeric: list[str]
    categorical: list[str]  # one-hot encoded
    dropped: dict[str, str] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    hashed: list[str] = field(default_factory=list)  # categorical too, hashed (dataset.hashed) instead of one-hot
    hash_features: int = 2**20
    negative: str = ""  # the target's other label
    # a multi-class target (more than two classes, no dataset.positive): the labels of y's codes 0..K-1; empty for
    # a binary one (y is 1 for ``positive``)
    classes: list[str] = field(default_factory=list)

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical + self.hashed


def as_text(s: pd.Series) -> pd.Series:
    """A categorical column as text (missing kept as NaN), converting each distinct value once.

    Integral floats (an int column with gaps, read by pandas) become "5", as Spark writes the int column.
    """
    from lrsweep.hashing import token_text

    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    texts = np.array([token_text(u) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(texts[codes], index=s.index, dtype=object, name=s.name)


def _read(source: Source, cfg: DatasetConfig) -> pd.DataFrame:
    try:
        return uri.read_pandas(source.location, source.format, sep=cfg.sep, encoding=cfg.encoding)
    except LrsweepError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise LrsweepError(
            f"data file {source.location.text!r} is empty", "give a file with a header row and data"
        ) from exc
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LrsweepError(
            f"cannot read {source.location.text!r} as {source.format}: {first}",
            "check the file, or set dataset.format=csv|parquet",
        ) from exc


def profile_frame(X: pd.DataFrame) -> list[ColumnProfile]:
    """Every column's profile, counted exactly."""
    out = []
    for col in X.columns:
        s = X[col]
        kind = "number" if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) else "text"
        out.append(
            ColumnProfile(str(col), kind, int(s.notna().sum()), int(s.nunique(dropna=True)), False, str(s.dtype))
        )
    return out


DIGEST_MAX_CELLS = 5_000_000  # ~0.4 s of hashing; a larger table's fingerprint says only that its values changed


def column_digests(df: pd.DataFrame) -> dict[str, str]:
    """Each column's values hashed (pandas' row hash, 16 hex digits): which column changed, not only that one did."""
    return {
        str(c): hashlib.sha256(pd.util.hash_pandas_object(df[c], index=False).to_numpy().tobytes()).hexdigest()[:16]
        for c in df.columns
    }


STRAY_SHARE = 0.02  # a text column whose values are all numbers but at most this share: numbers, the rest missing
STRAY_MIN_DISTINCT = 10  # ... and that has at least this many distinct numbers (not a coded category)


def numbers_with_stray_text(X: pd.DataFrame, cfg: DatasetConfig) -> dict[str, list[str]]:
    """Columns of numbers with a few stray text values (' ', '?', 'n/a') become numeric, the strays missing, with
    one warning each; without this they would silently become categoricals with a level per number. A column the
    config names (categorical, hashed, drop, id) is left as it is. Returns column -> its stray values."""
    named = set(cfg.categorical or []) | set(cfg.hashed) | set(cfg.drop) | set(cfg.id_columns)
    out: dict[str, list[str]] = {}
    for col in X.columns:
        values = X[col]
        if col in named or values.dtype != object:
            continue
        parsed = pd.to_numeric(values, errors="coerce")
        stray = values.notna() & parsed.isna()
        present = int(values.notna().sum())
        n_stray = int(stray.sum())
        if 0 < n_stray <= STRAY_SHARE * present and parsed.nunique() >= STRAY_MIN_DISTINCT:
            out[str(col)] = [str(v) for v in pd.unique(values[stray])[:3]]
            X[col] = parsed
            log.warning(
                "column %r is numeric but for %d value(s) like %s: read as missing (to keep it as text, list it in "
                "dataset.categorical)", col, n_stray, ", ".join(repr(v) for v in out[str(col)]),
            )  # fmt: skip
    return out


def infinite_as_missing(X: pd.DataFrame, numeric: list[str]) -> dict[str, int]:
    """inf and -inf in numeric columns become missing (imputed like NaN, as the Spark path reads them), with one
    warning naming the columns; returns column -> count."""
    counts: dict[str, int] = {}
    for col in numeric:
        values = X[col]
        if values.dtype.kind == "f":
            inf = np.isinf(values.to_numpy())
            if inf.any():
                counts[col] = int(inf.sum())
                X[col] = values.mask(inf)
    if counts:
        shown = ", ".join(f"{c!r} ({n})" for c, n in list(counts.items())[:5])
        more = f" and {len(counts) - 5} more" if len(counts) > 5 else ""
        log.warning("treated %d infinite value(s) as missing in %s%s", sum(counts.values()), shown, more)
    return counts


def read_frame(source: Source, cfg: DatasetConfig) -> pd.DataFrame:
    """The raw table of ``source`` as ``cfg`` reads it (separator, encoding), with a generator's derived columns."""
    df = _read(source, cfg)
    if source.generated is not None:
        for name, expr in source.generated.derived.items():
            if name not in df.columns:
                df[name] = df.eval(expr)
    return df


def read_table(source: Source, cfg: DatasetConfig) -> Table:
    """Read, validate and describe the table of ``source`` as ``cfg`` says."""
    df = read_frame(source, cfg)
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise LrsweepError(f"data file {source.location.text!r} has no rows", "give a file with data rows")
    check_named_columns(cfg, [str(c) for c in df.columns], source.name)
    target = df[cfg.target]
    n_missing = int(target.isna().sum())
    if n_missing == len(df):
        raise LrsweepError(f"target column {cfg.target!r} is empty", "choose another dataset.target")
    if n_missing:
        log.warning("dropped %d rows whose target %r is missing", n_missing, cfg.target)
        df = df.loc[target.notna()].reset_index(drop=True)
        target = df[cfg.target]
    labels = [str(v) for v in pd.unique(target)]
    text = target.astype(str)
    counts = {str(k): int(v) for k, v in text.value_counts().items()}
    classes = None  # set when more than two: fitted as one class against the rest
    class_list: list[str] = []  # set when fitted as a multi-class problem: the labels of codes 0..K-1
    if len(labels) > 2 and cfg.positive is None:
        class_list = class_labels(counts, str(cfg.target), cfg.max_classes)  # (said by the sweep, once checked)
        y = text.map({c: i for i, c in enumerate(class_list)}).to_numpy().astype(np.int16)
        positive = ""
    else:
        positive = positive_label(labels, str(cfg.target), None if cfg.positive is None else str(cfg.positive))
        y = (text.to_numpy() == positive).astype(np.int8)
        if len(labels) > 2:
            classes = say_one_against_the_rest(str(cfg.target), positive, counts)

    X = df.drop(columns=[cfg.target])
    numbers_with_stray_text(X, cfg)
    plan = plan_columns(profile_frame(X), len(X), cfg)
    X = X[plan.features].copy()
    for col in plan.categorical + plan.hashed:  # one text dtype, missing kept as NaN: consistent levels
        X[col] = as_text(X[col])
    infinite_as_missing(X, plan.numeric)

    schema = [f"{c}:{df[c].dtype}" for c in df.columns]
    negative = rest_label(positive) if classes else next((label for label in labels if label != positive), "")
    fingerprint: dict[str, Any] = {
        "sha256": uri.sha256(source.location),
        "source": source.shown,
        "rows": int(len(df)),
        "columns": int(df.shape[1]),
        "schema_sha256": hashlib.sha256("\n".join(schema).encode()).hexdigest()[:16],
    }
    if class_list:  # multi-class: the labels of codes 0..K-1 and each one's rows
        fingerprint |= {"labels": class_list, "classes": len(class_list), "class_rows": counts}
    else:
        fingerprint["positive_rate"] = float(y.mean())
        fingerprint["labels"] = [negative, positive]  # the target's (negative, positive) labels
        if classes:
            fingerprint["classes"] = classes
    fingerprint["schema"] = schema  # with the column digests: what `lrsweep reproduce` names when the data changed
    if df.size <= DIGEST_MAX_CELLS:
        fingerprint["column_sha256"] = column_digests(df)
    if source.generated is not None:
        fingerprint["generated"] = source.generated.summary()
    return Table(
        X, y, str(cfg.target), positive, plan.numeric, plan.categorical, plan.dropped, fingerprint, plan.hashed,
        cfg.hash_features, negative, class_list,
    )  # fmt: skip
