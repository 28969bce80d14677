"""Synthetic K-class "plan tier" tables with a known softmax model (hence known Bayes-optimal figures).

One row per customer: the target ``plan`` (``basic``, ``plus``, ``pro``, ``team``; this order is the sorted text
order, and a class's code is its position in it), six numeric columns and two categorical text columns:

* ``tenure_months`` ~ Gamma(1.5, scale 16), ``monthly_usage_hours`` ~ LogNormal(log 20, 0.6),
  ``seats`` ~ 1 + Poisson(2.5), ``support_tickets`` ~ Poisson(1.5), ``logins_per_week`` ~ Gamma(2, scale 2.5),
  ``storage_gb`` ~ LogNormal(log 40, 0.7): float64, independent, no missing values;
* ``region`` (north_america 40%, europe 30%, asia_pacific 20%, latin_america 10%) and ``signup_channel``
  (organic 50%, paid_ads 30%, referral 20%).

The true model (:data:`TRUE_MODEL`, written into the sidecar as ``model``) is a multinomial logistic regression
on exactly these columns: class ``k`` has the score ``z_k = intercept_k + sum_j w_kj * x_j + region_k[region] +
channel_k[signup_channel]`` on the *raw* numeric values (no scaling), and ``P(plan = k | x) = softmax(z)_k``.
``basic`` is the reference class (all zero); ``plus``, ``pro`` and ``team`` rise with usage, storage and tenure,
``team`` above all with ``seats``, so the classes overlap: the Bayes log loss is about 0.86 nats (the class shares
alone give about 1.34), the macro one-vs-rest ROC AUC about 0.86, and every class holds at least 18% of the rows
(about 31/30/20/18%). ``plan`` is drawn from ``softmax(z)``.

How a table is made (a function of ``(rows, seed)`` only): rows come in blocks of :data:`BLOCK_ROWS`; block ``b``
draws all its values, for a full block, from ``numpy.random.default_rng([seed, STREAM, b])`` in a fixed order,
and keeps the rows it needs. So a table is a prefix of any larger one with the same seed, and the rows are made
and written a block at a time. The probabilities are computed by :class:`SoftmaxReference` (elementwise arithmetic, no
BLAS), the same code that recomputes them from a table read back, so both agree to the last bit.

While writing, the true probabilities and the drawn labels give the Bayes-optimal log loss
(``sklearn.metrics.log_loss``, summed block by block) and the macro one-vs-rest ROC AUC
(``sklearn.metrics.roc_auc_score`` of each class against the rest over the whole table, averaged: what
``roc_auc_score(y, P, multi_class="ovr", average="macro")`` computes, one class at a time so that only one
column of probabilities is in memory; the columns wait in a temporary file). They go, with the parameters, class
shares, model and the file's SHA-256, into ``<table>.meta.json``.

Reproducibility: the same ``(rows, seed)`` gives the same bytes with the same NumPy/pyarrow versions (NumPy
documents that ``Generator`` streams may change between versions).

Command line: ``python -m lrsweep.datasets.softmax --rows 1000000 --seed 0 --out plans.parquet`` (without
``--out`` the table goes to the cache, see :func:`ensure_softmax_table`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.special import softmax
from sklearn.metrics import log_loss, roc_auc_score

from lrsweep.datasets import cache
from lrsweep.datasets.cache import sha256_file, temp_name
from lrsweep.errors import LrsweepError

__all__ = [
    "BLOCK_ROWS",
    "CATEGORICAL_COLUMNS",
    "CLASSES",
    "COLUMNS",
    "DEFAULT_ROWS",
    "DERIVED",
    "MAX_ROWS",
    "MIN_ROWS",
    "NUMERIC_COLUMNS",
    "TARGET",
    "TRUE_MODEL",
    "SoftmaxReference",
    "default_cache_dir",
    "ensure_softmax_table",
    "ensure_table",
    "generate_softmax_frame",
    "generate_softmax_table",
    "generation_params",
    "main",
    "meta_path",
    "read_meta",
    "reference",
]

GENERATOR_VERSION = 1
TARGET = "plan"
CLASSES: tuple[str, ...] = ("basic", "plus", "pro", "team")
BLOCK_ROWS = 2**16  # rows drawn per RNG block (and per Parquet row group)
STREAM = 0x736F66746D6178  # "softmax": keeps these draws apart from other uses of the same seed
MIN_ROWS = 100
# Generation holds the labels and (in a temporary file, memory-mapped) the probabilities of all rows, and the
# whole-table ROC AUC sorts one class's column at a time: ~120 bytes a row at the peak (~1.2 GB for 10**7 rows).
MAX_ROWS = 2**24
DEFAULT_ROWS = 100_000

# Numeric features: name -> (law, parameters), drawn in this order (see _draw_numeric).
NUMERIC_FEATURES: dict[str, tuple[str, tuple[float, ...]]] = {
    "tenure_months": ("gamma", (1.5, 16.0)),  # shape, scale
    "monthly_usage_hours": ("lognormal", (math.log(20.0), 0.6)),  # mean and sd of the log
    "seats": ("one_plus_poisson", (2.5,)),
    "support_tickets": ("poisson", (1.5,)),
    "logins_per_week": ("gamma", (2.0, 2.5)),
    "storage_gb": ("lognormal", (math.log(40.0), 0.7)),
}
# Categorical features: name -> (level, probability), drawn after the numeric ones, in this order.
CATEGORICAL_FEATURES: dict[str, tuple[tuple[str, float], ...]] = {
    "region": (("north_america", 0.40), ("europe", 0.30), ("asia_pacific", 0.20), ("latin_america", 0.10)),
    "signup_channel": (("organic", 0.50), ("paid_ads", 0.30), ("referral", 0.20)),
}
NUMERIC_COLUMNS: tuple[str, ...] = tuple(NUMERIC_FEATURES)
CATEGORICAL_COLUMNS: tuple[str, ...] = tuple(CATEGORICAL_FEATURES)
COLUMNS: tuple[str, ...] = (TARGET, *NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS)

# The true model: per class an intercept, a weight per unit of each raw numeric value, and an effect per level.
# "basic" is the reference class (zero everywhere). The intercepts put the class shares near 31/30/20/18%.
_INTERCEPTS = {"basic": 0.0, "plus": -4.9, "pro": -11.4, "team": -15.2}
_WEIGHTS = {
    "plus": {"tenure_months": 0.025, "monthly_usage_hours": 0.075, "seats": 0.25, "support_tickets": 0.25,
             "logins_per_week": 0.15, "storage_gb": 0.02},
    "pro": {"tenure_months": 0.05, "monthly_usage_hours": 0.14, "seats": 0.5, "support_tickets": 0.5,
            "logins_per_week": 0.25, "storage_gb": 0.05},
    "team": {"tenure_months": 0.04, "monthly_usage_hours": 0.1, "seats": 1.9, "support_tickets": 0.6,
             "logins_per_week": 0.18, "storage_gb": 0.04},
}  # fmt: skip
_EFFECTS = {
    "region": {
        "plus": {"north_america": 0.5, "europe": 0.0, "asia_pacific": -0.5, "latin_america": -1.0},
        "pro": {"north_america": 0.75, "europe": 0.25, "asia_pacific": -0.25, "latin_america": -1.25},
        "team": {"north_america": 0.25, "europe": 0.75, "asia_pacific": 0.0, "latin_america": -1.5},
    },
    "signup_channel": {
        "plus": {"organic": 0.0, "paid_ads": 0.75, "referral": 0.0},
        "pro": {"organic": 0.0, "paid_ads": 0.25, "referral": 0.5},
        "team": {"organic": 0.0, "paid_ads": -0.5, "referral": 1.25},
    },
}

_SCHEMA = pa.schema(
    [(TARGET, pa.string())]
    + [(c, pa.float64()) for c in NUMERIC_COLUMNS]
    + [(c, pa.string()) for c in CATEGORICAL_COLUMNS]
)

# A reader derives no columns: the true model reads the raw ones.
DERIVED: dict[str, str] = {}


# --------------------------------------------------------------------------------------------------------------
# the true model


@dataclass(frozen=True)
class SoftmaxReference:
    """A softmax model over raw columns, as ``lrsweep.datasets.Reference``: (n, K) probabilities, classes in
    sorted label order. Plain tuples only, so it pickles small (it is sent to Spark executors)."""

    classes: tuple[str, ...]
    numeric: tuple[str, ...]
    levels: tuple[tuple[str, tuple[str, ...]], ...]  # (categorical column, its levels)
    intercepts: tuple[float, ...]  # per class
    weights: tuple[tuple[float, ...], ...]  # [class][numeric column]
    effects: tuple[tuple[tuple[float, ...], ...], ...]  # [categorical column][class][level]
    columns: tuple[str, ...] = field(init=False)  # the raw columns it reads

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", (*self.numeric, *(name for name, _ in self.levels)))
        k = len(self.classes)
        if list(self.classes) != sorted(self.classes) or len(set(self.classes)) != k:
            raise ValueError(f"classes must be distinct and sorted, got {self.classes}")
        if (
            len(self.intercepts) != k
            or len(self.weights) != k
            or any(len(w) != len(self.numeric) for w in self.weights)
        ):
            raise ValueError("intercepts and weights need one entry per class (and weights one per numeric column)")
        for (name, levels), eff in zip(self.levels, self.effects, strict=True):
            if len(eff) != k or any(len(e) != len(levels) for e in eff):
                raise ValueError(f"{name}: effects need one entry per class and level")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> SoftmaxReference:
        """The model a :meth:`spec` (as stored in a sidecar's ``model``) describes."""
        classes = tuple(spec["classes"])
        numeric = tuple(spec["numeric"])
        levels = tuple((name, tuple(lv)) for name, lv in spec["levels"].items())
        zero: dict[str, Any] = {}
        return cls(
            classes=classes,
            numeric=numeric,
            levels=levels,
            intercepts=tuple(float(spec["intercepts"].get(c, 0.0)) for c in classes),
            weights=tuple(tuple(float(spec["weights"].get(c, zero).get(x, 0.0)) for x in numeric) for c in classes),
            effects=tuple(
                tuple(
                    tuple(float(spec["effects"].get(name, zero).get(c, zero).get(v, 0.0)) for v in lv) for c in classes
                )
                for name, lv in levels
            ),
        )

    def spec(self) -> dict[str, Any]:
        """The model as plain JSON (class -> column -> weight, column -> class -> level -> effect)."""
        return {
            "form": "P(class k | x) = softmax_k(intercept_k + sum_j weights[k][j] * x_j + sum_c effects[c][k][x_c])",
            "classes": list(self.classes),
            "numeric": list(self.numeric),
            "levels": {name: list(lv) for name, lv in self.levels},
            "intercepts": dict(zip(self.classes, self.intercepts, strict=True)),
            "weights": {
                c: dict(zip(self.numeric, w, strict=True)) for c, w in zip(self.classes, self.weights, strict=True)
            },
            "effects": {
                name: {c: dict(zip(lv, e, strict=True)) for c, e in zip(self.classes, eff, strict=True)}
                for (name, lv), eff in zip(self.levels, self.effects, strict=True)
            },
        }

    def scores(self, frame: pd.DataFrame) -> np.ndarray:
        """The (n, K) class scores ``z`` of raw rows (elementwise arithmetic: the same bits whatever the row count)."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            raise LrsweepError(
                f"softmax reference: column(s) {', '.join(missing)} missing",
                "pass a table generated by lrsweep.datasets.softmax",
            )
        n = len(frame)
        z = np.tile(np.asarray(self.intercepts, dtype=np.float64), (n, 1))
        w = np.asarray(self.weights, dtype=np.float64)  # (K, numeric)
        for j, name in enumerate(self.numeric):
            x = pd.to_numeric(frame[name]).to_numpy(dtype=np.float64)
            z += x[:, None] * w[:, j]
        for (name, levels), eff in zip(self.levels, self.effects, strict=True):
            codes = pd.Categorical(frame[name].astype(str), categories=list(levels)).codes
            if (codes < 0).any():
                bad = sorted(set(frame[name].astype(str)[codes < 0]))[:5]
                raise LrsweepError(
                    f"softmax reference: column {name!r} has level(s) {bad} the model does not know",
                    f"its levels are {list(levels)}",
                )
            z += np.asarray(eff, dtype=np.float64).T[codes]
        return z

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        """The true (n, K) class probabilities of raw rows, columns in sorted label order."""
        return np.asarray(softmax(self.scores(frame), axis=1))


def _true_model() -> SoftmaxReference:
    spec = {
        "classes": list(CLASSES),
        "numeric": list(NUMERIC_COLUMNS),
        "levels": {name: [v for v, _ in lv] for name, lv in CATEGORICAL_FEATURES.items()},
        "intercepts": _INTERCEPTS,
        "weights": _WEIGHTS,
        "effects": _EFFECTS,
    }
    return SoftmaxReference.from_spec(spec)


TRUE_MODEL = _true_model()


def reference(meta: dict[str, Any]) -> SoftmaxReference:
    """The true model of the table a sidecar describes (its ``model``; tables of version 1 all share it)."""
    return SoftmaxReference.from_spec(meta["model"]) if "model" in meta else TRUE_MODEL


# --------------------------------------------------------------------------------------------------------------
# drawing rows


def _draw_numeric(rng: np.random.Generator, law: str, params: tuple[float, ...], n: int) -> np.ndarray:
    if law == "gamma":
        return rng.gamma(params[0], params[1], n)
    if law == "lognormal":
        return rng.lognormal(params[0], params[1], n)
    if law == "poisson":
        return rng.poisson(params[0], n).astype(np.float64)
    if law == "one_plus_poisson":
        return 1.0 + rng.poisson(params[0], n)
    raise ValueError(f"unknown law {law!r}")


def _draw_level(rng: np.random.Generator, levels: tuple[tuple[str, float], ...], n: int) -> np.ndarray:
    cdf = np.cumsum([p for _, p in levels])
    codes = np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"), len(levels) - 1)
    return np.asarray([v for v, _ in levels])[codes]


def _block(seed: int, b: int, n: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The first ``n`` rows of block ``b``: features, true probabilities (n, K) and class codes (drawn in full)."""
    rng = np.random.default_rng([seed, STREAM, b])
    features: dict[str, np.ndarray] = {}
    for name, (law, params) in NUMERIC_FEATURES.items():
        features[name] = _draw_numeric(rng, law, params, BLOCK_ROWS)[:n]
    for name, levels in CATEGORICAL_FEATURES.items():
        features[name] = _draw_level(rng, levels, BLOCK_ROWS)[:n]
    u = rng.random(BLOCK_ROWS)[:n]
    frame = pd.DataFrame(features)
    p = TRUE_MODEL.probabilities(frame)
    y = (u[:, None] >= np.cumsum(p, axis=1)[:, :-1]).sum(axis=1).astype(np.int64)  # inverse CDF
    return frame, p, y


def _iter_blocks(rows: int, seed: int) -> Iterator[tuple[pa.Table, np.ndarray, np.ndarray]]:
    """Per block: the Arrow table, its true probabilities and its class codes."""
    labels = np.asarray(CLASSES)
    for b, start in enumerate(range(0, rows, BLOCK_ROWS)):
        frame, p, y = _block(seed, b, min(BLOCK_ROWS, rows - start))
        arrays = {TARGET: pa.array(labels[y], type=pa.string())}
        arrays.update({c: pa.array(frame[c].to_numpy(), type=_SCHEMA.field(c).type) for c in frame.columns})
        yield pa.Table.from_arrays([arrays[f.name] for f in _SCHEMA], schema=_SCHEMA), p, y


def _check_int(name: str, value: int, lo: int, hi: int, hint: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise LrsweepError(f"{name}={value!r} must be an integer in [{lo}, {hi}]", hint)


def _check(rows: int, seed: int) -> None:
    _check_int("rows", rows, MIN_ROWS, MAX_ROWS, "e.g. rows=100000")
    _check_int("seed", seed, 0, 2**63 - 1, "e.g. seed=0")


def generate_softmax_frame(rows: int, seed: int = 0, *, with_truth: bool = False) -> pd.DataFrame:
    """The table in memory (small sizes); ``with_truth`` adds the true probabilities as ``p_<class>`` columns."""
    _check(rows, seed)
    df = pa.concat_tables(t for t, _, _ in _iter_blocks(int(rows), int(seed))).to_pandas()
    if with_truth:
        p = TRUE_MODEL.probabilities(df)
        for k, c in enumerate(CLASSES):
            df[f"p_{c}"] = p[:, k]
    return df


# --------------------------------------------------------------------------------------------------------------
# writing a table


def generation_params(rows: int, seed: int = 0) -> dict[str, Any]:
    """Everything the table's content depends on (the cache key)."""
    spec = json.dumps(
        [NUMERIC_FEATURES, CATEGORICAL_FEATURES, TRUE_MODEL.spec(), BLOCK_ROWS, STREAM, list(_SCHEMA.names)],
        sort_keys=True,
    )
    return {
        "generator": "lrsweep.datasets.softmax",
        "version": GENERATOR_VERSION,
        "rows": int(rows),
        "seed": int(seed),
        "classes": list(CLASSES),
        "target": TARGET,
        "block_rows": BLOCK_ROWS,
        "spec_sha256": hashlib.sha256(spec.encode()).hexdigest()[:16],
    }


meta_path = cache.meta_path  # ``<table>.meta.json``, beside the table


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The sidecar of a generated table (see ``lrsweep.datasets.cache``)."""
    return cache.read_meta(path, "lrsweep.datasets.softmax")


def generate_softmax_table(out: str | os.PathLike[str], rows: int, seed: int = 0) -> dict[str, Any]:
    """Write the table to ``out`` (one Parquet file, a row group per block) and ``out.meta.json``; return the meta.

    Written under temporary names and renamed (data first, sidecar last), so a file with its sidecar is complete.
    Memory grows with ``rows`` only for the labels, the memory-mapped probabilities and the ROC AUC's sort of one
    column at a time (see :data:`MAX_ROWS`).
    """
    _check(rows, seed)
    rows, seed = int(rows), int(seed)
    final = Path(out)
    if final.is_dir():
        raise LrsweepError(f"{str(final)!r} is a directory", "give a file name such as plans.parquet")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp, tmp_p = temp_name(final), temp_name(final, "proba.tmp")
    k = len(CLASSES)
    t0 = time.perf_counter()
    try:
        y = np.empty(rows, dtype=np.int8)
        probs = np.lib.format.open_memmap(tmp_p, mode="w+", dtype=np.float64, shape=(k, rows))  # class-major
        loss = 0.0
        start = 0
        with pq.ParquetWriter(tmp, _SCHEMA, compression="zstd") as writer:
            for table, p, yb in _iter_blocks(rows, seed):
                writer.write_table(table)
                n = len(yb)
                y[start : start + n] = yb
                probs[:, start : start + n] = p.T
                loss += float(log_loss(yb, p, labels=list(range(k)), normalize=False))
                start += n
        probs.flush()
        counts = np.bincount(y, minlength=k)
        # roc_auc_score(y, P, multi_class="ovr", average="macro") is the mean of these (one column in memory)
        auc = [float(roc_auc_score(y == c, np.asarray(probs[c]))) for c in range(k)]
        mean_p = [float(np.mean(probs[c])) for c in range(k)]
        del probs
        meta = {
            "file": final.name,
            "params": generation_params(rows, seed),
            "rows": rows,
            "target": TARGET,
            "classes": list(CLASSES),
            "class_counts": dict(zip(CLASSES, counts.tolist(), strict=True)),
            "class_shares": dict(zip(CLASSES, (counts / rows).tolist(), strict=True)),
            "mean_probabilities": dict(zip(CLASSES, mean_p, strict=True)),
            "bayes_log_loss": loss / rows,
            "bayes_roc_auc": float(np.mean(auc)),
            "bayes_roc_auc_per_class": dict(zip(CLASSES, auc, strict=True)),
            "log_loss_method": "exact: mean of -log p(plan | x) over all rows (sklearn.metrics.log_loss, per block)",
            "auc_method": (
                "exact: macro one-vs-rest, the mean over classes of sklearn.metrics.roc_auc_score(plan == class, "
                "p_class) over all rows (= roc_auc_score(y, P, multi_class='ovr', average='macro'))"
            ),
            "columns": {f.name: str(f.type) for f in _SCHEMA},
            "numeric_columns": list(NUMERIC_COLUMNS),
            "categorical_columns": list(CATEGORICAL_COLUMNS),
            "features": {
                "numeric": {name: {"law": law, "params": list(ps)} for name, (law, ps) in NUMERIC_FEATURES.items()},
                "categorical": {name: dict(lv) for name, lv in CATEGORICAL_FEATURES.items()},
            },
            "model": TRUE_MODEL.spec(),
            "seconds": round(time.perf_counter() - t0, 3),
            "bytes": tmp.stat().st_size,
            "sha256": sha256_file(tmp),
            "created_by": f"lrsweep.datasets.softmax v{GENERATOR_VERSION}",
            "versions": {"pyarrow": pa.__version__, "numpy": np.__version__},
        }
        cache.publish(tmp, final, meta)
    finally:
        for t in (tmp, tmp_p):
            t.unlink(missing_ok=True)
    return meta


# --------------------------------------------------------------------------------------------------------------
# cache


def default_cache_dir() -> Path:
    """``$LRSWEEP_CACHE/softmax`` if set, else ``$XDG_CACHE_HOME/lrsweep/softmax`` (``~/.cache/lrsweep/softmax``)."""
    return cache.cache_dir("softmax")


def ensure_table(rows: int, seed: int = 0) -> Path:
    """The generator interface of ``lrsweep.datasets``: :func:`ensure_softmax_table` in the default cache."""
    return ensure_softmax_table(rows, seed)


def ensure_softmax_table(rows: int, seed: int = 0, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cached table for ``(rows, seed)``, generated on first use; returns the Parquet path.

    The file name carries a digest of :func:`generation_params`, so a change of generator invalidates it. A table
    counts as present only with its sidecar and the size recorded there (temporary files are never looked at).
    """
    _check(rows, seed)
    return cache.cached_table(
        "softmax", generation_params(rows, seed), cache_dir, lambda path: generate_softmax_table(path, rows, seed)
    )


# --------------------------------------------------------------------------------------------------------------
# command line


def _build_parser() -> argparse.ArgumentParser:
    p = cache.LineParser(
        prog="python -m lrsweep.datasets.softmax",
        description="Write a synthetic 4-class plan-tier table with a known softmax model and Bayes-optimal figures.",
    )
    p.add_argument("--rows", type=int, required=True, help=f"number of rows ({MIN_ROWS} .. 2**24)")
    p.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    dest = p.add_mutually_exclusive_group()
    dest.add_argument("--out", type=Path, help="Parquet file to write (its sidecar is OUT.meta.json)")
    dest.add_argument("--cache-dir", type=Path, help="without --out: the cache folder (default: see --help)")
    p.add_argument("--json", action="store_true", help="print the whole sidecar as JSON after the path")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not MIN_ROWS <= args.rows <= MAX_ROWS:
        parser.error(f"--rows must be between {MIN_ROWS} and 2**24 (got {args.rows})")
    if not 0 <= args.seed < 2**63:
        parser.error(f"--seed must be in [0, 2**63) (got {args.seed})")

    def summary(meta: dict[str, Any]) -> str:
        shares = " ".join(f"{c}={s:.3f}" for c, s in meta["class_shares"].items())
        return (
            f"rows={meta['rows']} shares: {shares} bayes_log_loss={meta['bayes_log_loss']:.5f} "
            f"bayes_roc_auc={meta['bayes_roc_auc']:.5f}"
        )

    return cache.run_cli(
        parser, args, lambda out: generate_softmax_table(out, args.rows, args.seed),
        lambda: ensure_softmax_table(args.rows, args.seed, args.cache_dir), read_meta, summary,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
