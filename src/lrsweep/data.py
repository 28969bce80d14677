"""Read a CSV/Parquet table, validate it, fingerprint it and split it (pandas; shared by backends).

Every problem a user can cause with their data ends here as a LrsweepError naming the fix, before
a study or an MLflow run exists.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
from lrsweep.errors import LrsweepError

__all__ = [
    "Table",
    "Split",
    "load_table",
    "positive_label",
    "resolve_source",
    "split_table",
    "cv_folds",
    "bundled_path",
    "generated_meta",
    "as_text",
]

log = logging.getLogger("lrsweep")

# Labels read as "the positive one" when dataset.positive is not given (case-insensitive).
_POSITIVE_WORDS = ("1", "1.0", "true", "yes", "y", "positive", "pos")
_NEGATIVE_WORDS = ("0", "0.0", "false", "no", "n", "negative", "neg")


@dataclass
class Table:
    """Features and a 0/1 target, with what was detected about the columns."""

    X: pd.DataFrame
    y: np.ndarray
    target: str
    positive: str
    numeric: list[str]
    categorical: list[str]  # one-hot encoded
    dropped: dict[str, str] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    hashed: list[str] = field(default_factory=list)  # categorical too, hashed (dataset.hashed) instead of one-hot
    # for a generated table (lrsweep.datasets.ctr): its sidecar, with the true model's seed and Bayes figures
    generated: dict[str, Any] | None = None

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical + self.hashed


@dataclass
class Split:
    """Row positions of each part; ``folds`` are (fit, score) positions within train+validation."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def trainval(self) -> np.ndarray:
        return np.concatenate([self.train, self.val])


def bundled_path(name: str) -> Path:
    """The packaged copy of a bundled dataset (``lrsweep/datasets/<name>.csv.gz``)."""
    ref = resources.files("lrsweep.datasets") / f"{name}.csv.gz"
    return Path(str(ref))


def resolve_source(cfg: DatasetConfig) -> Path:
    if cfg.rows is not None and not (cfg.name == "ctr" and cfg.path is None):
        raise LrsweepError(
            "dataset.rows only applies to a generated table (dataset=ctr without dataset.path)",
            "use dataset=ctr dataset.rows=N, or remove dataset.rows",
        )
    if cfg.path is None and cfg.name == "ctr":
        from lrsweep.datasets.ctr import ensure_ctr_table

        return ensure_ctr_table(cfg.rows or 100_000, cfg.seed)
    if cfg.path is None:
        path = bundled_path(cfg.label)
        if not path.is_file():
            raise LrsweepError(
                f"no bundled dataset named {cfg.name!r}",
                "use dataset=telco_churn, or dataset=csv dataset.path=FILE dataset.target=COLUMN",
            )
        return path
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise LrsweepError(
            f"data file {str(path)!r} does not exist", "check dataset.path (relative to the working directory)"
        )
    if path.is_dir() and not any(path.glob("*.parquet")):
        raise LrsweepError(
            f"{str(path)!r} is a folder with no Parquet files", "point dataset.path at a CSV or Parquet file"
        )
    return path


def generated_meta(path: Path) -> dict[str, Any] | None:
    """The sidecar of a table written by ``lrsweep.datasets.ctr`` (true model's seed, Bayes figures), else None."""
    from lrsweep.datasets.ctr import meta_path

    sidecar = meta_path(path)
    if path.is_dir() or not sidecar.is_file():
        return None
    import json

    try:
        meta = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    if not str(meta.get("created_by", "")).startswith("lrsweep.datasets.ctr") or meta.get("file") != path.name:
        return None
    return meta


def as_text(s: pd.Series) -> pd.Series:
    """A categorical column as text (missing kept as NaN), converting each distinct value once.

    Integral floats (an int column with gaps, read by pandas) become "5", as Spark writes the int column.
    """
    from lrsweep.hashing import token_text

    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    texts = np.array([token_text(u) for u in uniques] + [np.nan], dtype=object)
    return pd.Series(texts[codes], index=s.index, dtype=object, name=s.name)


def _read(path: Path, fmt: str) -> pd.DataFrame:
    name = path.name.lower()
    if fmt == "auto":
        fmt = "parquet" if (name.endswith((".parquet", ".pq")) or path.is_dir()) else "csv"
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError as exc:
        raise LrsweepError(f"data file {str(path)!r} is empty", "give a file with a header row and data") from exc
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LrsweepError(
            f"cannot read {str(path)!r} as {fmt}: {first}",
            "check the file, or set dataset.format=csv|parquet",
        ) from exc


def _sha256(path: Path) -> str:
    """SHA-256 of the data's bytes; for a bundled .csv.gz, of the CSV inside (as shipped in shared/)."""
    h = hashlib.sha256()
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    for f in files:
        opener = gzip.open if f.name.endswith(".gz") else open
        with opener(f, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def positive_label(values: pd.Series, target: str, positive: str | None) -> str:
    labels = [str(v) for v in pd.unique(values)]
    shown = ", ".join(repr(v) for v in sorted(labels)[:6]) + (" ..." if len(labels) > 6 else "")
    if len(labels) < 2:
        raise LrsweepError(
            f"target {target!r} has a single class ({shown})",
            "a binary target needs two classes: check dataset.target and the file",
        )
    if len(labels) > 2:
        raise LrsweepError(
            f"target {target!r} has {len(labels)} classes ({shown}), not 2",
            f"pick another column with dataset.target=, or make it binary (e.g. dataset.positive={sorted(labels)[0]!r} "
            "is not enough: lrsweep fits binary targets only)",
        )
    if positive is not None:
        if positive in labels:
            return positive
        # numeric labels written differently ("1" vs "1.0")
        for lab in labels:
            try:
                if float(lab) == float(positive):
                    return lab
            except ValueError:
                pass
        raise LrsweepError(
            f"positive label {positive!r} is not a value of target {target!r} (values: {shown})",
            f"set dataset.positive to one of them, e.g. dataset.positive={sorted(labels)[-1]}",
        )
    lower = {lab.lower(): lab for lab in labels}
    pos = [lower[w] for w in _POSITIVE_WORDS if w in lower]
    neg = [lower[w] for w in _NEGATIVE_WORDS if w in lower]
    if len(pos) == 1 and len(neg) == 1:
        return pos[0]
    raise LrsweepError(
        f"cannot tell which label of target {target!r} is positive (values: {shown})",
        f"say it with dataset.positive={sorted(labels)[-1]}",
    )


def load_table(cfg: DatasetConfig) -> Table:
    """Read, validate and describe the table named by ``cfg``."""
    path = resolve_source(cfg)
    df = _read(path, cfg.format)
    generated = generated_meta(path)
    if generated is not None:
        from lrsweep.datasets.ctr import with_hour_of_day

        df = with_hour_of_day(df)  # the true model's hour-of-day feature
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise LrsweepError(f"data file {str(path)!r} has no rows", "give a file with data rows")
    if cfg.target not in df.columns:
        cols = ", ".join(map(str, df.columns[:12])) + (" ..." if df.shape[1] > 12 else "")
        raise LrsweepError(
            f"target column {cfg.target!r} is not in {path.name} (columns: {cols})",
            "set dataset.target=COLUMN",
        )
    target = df[cfg.target]
    n_missing = int(target.isna().sum())
    if n_missing == len(df):
        raise LrsweepError(f"target column {cfg.target!r} is empty", "choose another dataset.target")
    if n_missing:
        log.warning("dropped %d rows whose target %r is missing", n_missing, cfg.target)
        df = df.loc[target.notna()].reset_index(drop=True)
        target = df[cfg.target]
    positive = positive_label(target, cfg.target, None if cfg.positive is None else str(cfg.positive))
    y = (target.astype(str).to_numpy() == positive).astype(np.int8)

    unknown = [c for c in [*cfg.drop, *cfg.id_columns, *(cfg.categorical or []), *cfg.hashed] if c not in df.columns]
    if unknown:
        raise LrsweepError(
            f"column(s) {', '.join(map(repr, unknown))} named in dataset.drop/id_columns/categorical/hashed "
            "are not in the data",
            "check the spelling against the file's header",
        )
    dropped: dict[str, str] = {c: "dropped by dataset.drop" for c in cfg.drop}
    dropped.update({c: "id column (dataset.id_columns)" for c in cfg.id_columns})
    X = df.drop(columns=[cfg.target, *dropped])
    hashed_set = set(cfg.hashed)
    categorical_set = set(cfg.categorical or []) | hashed_set
    numeric: list[str] = []
    categorical: list[str] = []
    for col in X.columns:
        s = X[col]
        nunique = s.nunique(dropna=True)
        if nunique == 0:
            dropped[col] = "all values missing"
        elif nunique == 1:
            dropped[col] = "constant"
        elif col in hashed_set:
            categorical.append(col)
        elif cfg.categorical is not None:
            (categorical if col in categorical_set else numeric).append(col)
            if col not in categorical_set and not pd.api.types.is_numeric_dtype(s):
                raise LrsweepError(
                    f"column {col!r} is not numeric but is missing from dataset.categorical",
                    "add it to dataset.categorical or to dataset.drop",
                )
        elif pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            numeric.append(col)
        elif nunique == len(s) and len(s) > 50:
            dropped[col] = "looks like an id (a distinct value on every row)"
        else:
            categorical.append(col)
    for col, why in dropped.items():
        if why in ("all values missing", "constant") or why.startswith("looks like"):
            log.warning("dropped column %r: %s (keep it with dataset.categorical or fix the data)", col, why)
    hashed = [c for c in categorical if c in hashed_set]
    categorical = [c for c in categorical if c not in hashed_set]
    X = X[numeric + categorical + hashed].copy()
    for col in categorical + hashed:  # one text dtype, missing kept as NaN, so encoders see consistent levels
        X[col] = as_text(X[col])
    if not numeric and not categorical and not hashed:
        raise LrsweepError("no usable feature columns remain", "check dataset.drop and the file")

    schema = [f"{c}:{df[c].dtype}" for c in df.columns]
    fingerprint = {
        "sha256": _sha256(path),
        "source": "bundled" if cfg.path is None else str(path),
        "rows": int(len(df)),
        "columns": int(df.shape[1]),
        "schema_sha256": hashlib.sha256("\n".join(schema).encode()).hexdigest()[:16],
        "positive_rate": float(y.mean()),
    }
    if generated is not None:
        fingerprint["generated"] = generated_summary(generated)
    return Table(X, y, cfg.target, positive, numeric, categorical, dropped, fingerprint, hashed, generated)


def generated_summary(meta: dict[str, Any]) -> dict[str, Any]:
    """What data.json records of a generated table: its parameters and the whole table's Bayes-optimal figures."""
    keys = ("params", "click_rate", "bayes_log_loss", "bayes_roc_auc", "bayes_roc_auc_max_binning_error", "sha256")
    return {k: meta[k] for k in keys if k in meta}


def _check_both_classes(y: np.ndarray, part: str, hint: str) -> None:
    if y.size == 0 or y.min() == y.max():
        raise LrsweepError(f"the {part} part has {'no rows' if y.size == 0 else 'only one class'}", hint)


def split_table(y: np.ndarray, split: SplitConfig, cv: CVConfig, seed: int) -> Split:
    """Seeded stratified train/validation/test positions, and K folds on train+validation when cv.folds > 1."""
    idx = np.arange(len(y))
    hint = "use a larger data set or larger split.val_size/split.test_size"
    counts = np.bincount(y, minlength=2)
    if counts.min() < 3:
        raise LrsweepError(f"the minority class has {counts.min()} row(s): too few to split three ways", hint)
    try:
        rest, test = train_test_split(idx, test_size=split.test_size, stratify=y, random_state=seed)
        val_share = split.val_size / (1.0 - split.test_size)
        train, val = train_test_split(rest, test_size=val_share, stratify=y[rest], random_state=seed)
    except ValueError as exc:
        raise LrsweepError(f"cannot split the data as asked: {exc}", hint) from exc
    for part, pos in (("train", train), ("validation", val), ("test", test)):
        _check_both_classes(y[pos], part, hint)
    out = Split(np.sort(train), np.sort(val), np.sort(test))
    if cv.folds > 1:
        out.folds = cv_folds(y, out.trainval, cv.folds, seed)
    return out


def cv_folds(y: np.ndarray, positions: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    yk = y[positions]
    if np.bincount(yk, minlength=2).min() < k:
        raise LrsweepError(f"cv.folds={k} is more than the minority class has rows", "lower cv.folds")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(positions[a], positions[b]) for a, b in skf.split(positions, yk)]
