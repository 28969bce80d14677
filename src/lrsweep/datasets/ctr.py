"""Synthetic Avazu-like click-through-rate tables with a known true model (hence known Bayes-optimal metrics).

The table has Avazu's columns (``click``, ``hour``, ``C1``, ``banner_pos``, ``site_*``, ``app_*``, ``device_*``,
``C14``..``C21``; no ``id``). Categorical ids are 8-hex-digit strings ("1fbe01fe"), the small integer-coded fields
are ints, ``hour`` is ``YYMMDDHH`` over 2014-10-21..30 with a daily traffic cycle, sorted by time as in Avazu.

How a table is made (all of it a function of ``(rows, seed)`` only):

* Randomness is counter-based: the k-th uniform of a named stream is ``splitmix64(key(seed, stream) + k * gamma)``,
  so row ``i`` gets the same values whatever the chunk size, and no NumPy ``Generator`` stream (not stable across
  NumPy versions) is involved.
* Each categorical column draws a level *index* per row from a fixed Zipf-like law (a discretised power law
  ``P(j) ~ (j + q) ** -s`` over ``1..K``, optionally with a heavy level 0 such as the anonymous ``device_id``);
  site and app columns are mutually exclusive as in Avazu (app traffic has the "null" site level 0 and vice versa).
  The string id of index ``j`` is ``fmix32(j ^ crc32(column))`` in hex: a bijection, so distinct levels get
  distinct ids and the same level the same id in every chunk, table and seed.
* The true model is a logistic regression on hashed features (see :func:`hashed_feature_spec`): every
  ``"column=value"`` token is hashed with MurmurHash3 x86_32, seed 42, into ``2**20`` buckets (exactly what Spark
  ML's ``FeatureHasher`` does); bucket ``b`` has weight ``w[b] ~ N(0, WEIGHT_SD**2)`` (seeded), and
  ``logit = intercept + sum of the weights of the row's 22 tokens`` (``hour_of_day = hour % 100`` is one of them).
  The intercept is solved so that the mean click probability over a 2**18-row calibration sample is 0.17.
  ``click ~ Bernoulli(sigmoid(logit))``.
* While writing, the true ``p_i`` and the drawn labels give the Bayes-optimal log loss (exact, accumulated in
  fixed point so it does not depend on the chunking) and ROC AUC (from a 2**20-bin histogram of the logit; the
  largest possible binning error is computed and stored). They go, with the parameters, click rate, distinct
  level counts and the file's SHA-256, into ``<table>.meta.json``.

Reproducibility: the same ``(rows, seed)`` gives the same bytes with the same NumPy/pyarrow versions. The hashing
and the level/id mapping are integer arithmetic, hence identical on every platform; a few steps use float
``pow``/``exp``/``log``, which may differ in the last bit across CPUs/libm, changing a drawn value only when a
uniform falls within ~1e-16 of a threshold.

Command line: ``python -m lrsweep.datasets.ctr --rows 1000000 --seed 0 --out ctr.parquet`` (without ``--out`` the
table goes to the cache, see :func:`ensure_ctr_table`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.utils import murmurhash3_32

from lrsweep.datasets import cache as table_cache
from lrsweep.datasets.cache import sha256_file, temp_name
from lrsweep.errors import LrsweepError
from lrsweep.hashing import hash_columns

__all__ = [
    "COLUMNS",
    "FEATURE_COLUMNS",
    "CATEGORICAL_COLUMNS",
    "TARGET",
    "HASH_BITS",
    "HASH_SEED",
    "TARGET_CTR",
    "WEIGHT_SD",
    "DEFAULT_CHUNK_ROWS",
    "MIN_ROWS",
    "TrueModel",
    "default_cache_dir",
    "ensure_ctr_table",
    "generate_ctr_frame",
    "generate_ctr_table",
    "hash_features",
    "hashed_feature_spec",
    "generation_params",
    "meta_path",
    "read_meta",
    "true_model",
    "true_probabilities",
    "with_hour_of_day",
    "TrueReference",
    "DERIVED",
    "DEFAULT_ROWS",
    "ensure_table",
    "reference",
    "main",
]

GENERATOR_VERSION = 1
TARGET = "click"
HASH_BITS = 20  # 2**20 buckets: the true model's feature space
HASH_SEED = 42  # Spark ML FeatureHasher's murmur3 seed
TARGET_CTR = 0.17  # Avazu's click rate is 0.1698
WEIGHT_SD = 0.4  # standard deviation of the per-bucket weights
P_APP = 0.36  # share of app (vs site) traffic, as in Avazu
DEFAULT_CHUNK_ROWS = 250_000
MIN_ROWS = 100
MAX_ROWS = 2**40
CALIBRATION_ROWS = 2**18
AUC_BINS = 2**20
AUC_LOGIT_RANGE = (-16.0, 16.0)  # logits outside fall in the end bins (counted by the stored error bound)
_FIXED_POINT = 2**32  # per-row losses summed as integers of 2**-32: exact and chunking-independent
_M64 = (1 << 64) - 1

# hour: 2014-10-21 00h .. 2014-10-30 23h, relative traffic per hour of day (a daily cycle, peak around noon)
_FIRST_DAY = 21
_DAYS = 10
_DIURNAL = (2.4, 1.9, 1.8, 2.0, 2.6, 3.2, 3.8, 4.3, 4.7, 5.0, 5.2, 5.1,
            5.3, 5.3, 5.2, 5.0, 4.8, 4.7, 4.6, 4.4, 4.0, 3.6, 3.1, 2.7)  # fmt: skip


@dataclass(frozen=True)
class _Col:
    """One categorical column: how its level indices are drawn and how an index becomes a value.

    Levels are ``0..K``. With ``probs``: level ``j`` has probability ``probs[j]``. Otherwise levels ``1..K`` follow
    the power law ``(j + q) ** -s`` and level 0 gets probability ``head`` (or, with ``group``, is the "null" level of
    the other traffic type). Hex columns render level ``j`` as 8 hex digits; int columns as ``values[j]`` for the
    listed values and ``lo + (j * 1000003) % span`` (distinct for ``j < span``) beyond them.
    """

    name: str
    kind: str  # "hex" | "int"
    K: int = 0
    s: float = 1.1
    q: float = 0.0
    head: float = 0.0
    group: str | None = None  # "site" | "app"
    probs: tuple[float, ...] | None = None
    values: tuple[int, ...] = ()
    lo: int = 0
    span: int = 0

    @property
    def levels(self) -> int:
        return len(self.probs) if self.probs is not None else self.K + 1


# Cardinalities K and shares follow Avazu's 40.4M-row training set (distinct levels there: site_id 4737,
# site_domain 7745, app_id 8552, device_id 2.69M, device_ip 6.73M, device_model 8251, C14 2626, ...);
# a power law over a large K makes the number of distinct levels grow with the row count.
_COLS: tuple[_Col, ...] = (
    _Col("C1", "int", probs=(0.9188, 0.0550, 0.0224, 0.0028, 0.0007, 0.0002, 0.0001),
         values=(1005, 1002, 1010, 1012, 1007, 1001, 1008)),
    _Col("banner_pos", "int", probs=(0.7201, 0.2783, 0.0010, 0.0003, 0.0002, 0.0001, 0.00005),
         values=(0, 1, 7, 2, 4, 5, 3)),
    _Col("site_id", "hex", K=4737, s=1.35, group="site"),
    _Col("site_domain", "hex", K=7745, s=1.35, group="site"),
    _Col("site_category", "hex", K=25, s=1.8, group="site"),
    _Col("app_id", "hex", K=8552, s=1.15, group="app"),
    _Col("app_domain", "hex", K=559, s=1.6, group="app"),
    _Col("app_category", "hex", K=35, s=2.0, group="app"),
    _Col("device_id", "hex", K=2**22, s=0.6, head=0.825),  # level 0: the anonymous device ("a99f214a" in Avazu)
    _Col("device_ip", "hex", K=2**23, s=0.8),
    _Col("device_model", "hex", K=8251, s=1.05, q=1.0),
    _Col("device_type", "int", probs=(0.9231, 0.0549, 0.0191, 0.0028, 0.0001), values=(1, 0, 4, 5, 2)),
    _Col("device_conn_type", "int", probs=(0.8628, 0.0825, 0.0536, 0.0011), values=(0, 2, 3, 5)),
    _Col("C14", "int", K=2626, s=1.05, q=3.0, lo=375, span=24000),
    _Col("C15", "int", probs=(0.9327, 0.0568, 0.0073, 0.0018, 0.0008, 0.0003, 0.0002, 0.0001),
         values=(320, 300, 216, 728, 120, 1024, 480, 768)),
    _Col("C16", "int", probs=(0.9433, 0.0442, 0.0073, 0.0029, 0.0018, 0.0002, 0.0001, 0.0001, 0.0001),
         values=(50, 250, 36, 480, 90, 20, 768, 1024, 320)),
    _Col("C17", "int", K=435, s=1.2, q=1.0, lo=112, span=2700),
    _Col("C18", "int", probs=(0.4189, 0.3378, 0.1735, 0.0698), values=(0, 3, 2, 1)),
    _Col("C19", "int", K=68, s=1.3, lo=33, span=1930),
    _Col("C20", "int", K=171, s=1.1, head=0.47, values=(-1,), lo=100000, span=260),
    _Col("C21", "int", K=60, s=1.2, lo=1, span=220),
)  # fmt: skip
_COL_BY_NAME = {c.name: c for c in _COLS}

COLUMNS: tuple[str, ...] = (TARGET, "hour", *(c.name for c in _COLS))
# The tokens of the true model: every categorical column, and the hour of day derived from ``hour``.
FEATURE_COLUMNS: tuple[str, ...] = (*(c.name for c in _COLS), "hour_of_day")
# What a backend should treat as categorical (all but the label; ``hour`` through ``hour_of_day``).
CATEGORICAL_COLUMNS: tuple[str, ...] = tuple(c.name for c in _COLS)
_SCHEMA = pa.schema(
    [(TARGET, pa.int8()), ("hour", pa.int32())]
    + [(c.name, pa.string() if c.kind == "hex" else pa.int32()) for c in _COLS]
)
_TABLE_HASH_MAX_LEVELS = 2**17  # columns with more levels are hashed row by row instead of through a table


# --------------------------------------------------------------------------------------------------------------
# counter-based random numbers and integer mixing


def _mix64_int(z: int) -> int:
    z &= _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _stream_key(seed: int, stream: str) -> int:
    return _mix64_int(_mix64_int(seed ^ 0x6C72737765657021) ^ (zlib.crc32(stream.encode()) * 0x9E3779B97F4A7C15))


def _uniform(seed: int, stream: str, start: int, n: int) -> np.ndarray:
    """Uniforms in [0, 1) at positions ``start..start+n-1`` of a named stream (splitmix64, 53 bits)."""
    k = np.arange(start, start + n, dtype=np.uint64)
    z = _mix64(k * np.uint64(0x9E3779B97F4A7C15) + np.uint64(_stream_key(seed, stream)))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _rotl32(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _murmur3_rows(prefix: bytes, suffix: np.ndarray, seed: int = HASH_SEED) -> np.ndarray:
    """MurmurHash3 x86_32 of ``prefix + suffix[i]`` for each row of the (n, S) uint8 array ``suffix``.

    Vectorised; equal to ``sklearn.utils.murmurhash3_32(bytes, seed, positive=True)`` (tested).
    """
    n = suffix.shape[0]
    c1, c2 = np.uint32(0xCC9E2D51), np.uint32(0x1B873593)
    full = len(prefix) // 4 * 4
    key = np.empty((n, len(prefix) - full + suffix.shape[1]), dtype=np.uint8)
    key[:, : len(prefix) - full] = np.frombuffer(prefix[full:], dtype=np.uint8)
    key[:, len(prefix) - full :] = suffix
    h = np.full(n, seed, dtype=np.uint32)
    blocks = [np.frombuffer(prefix[:full], dtype="<u4").astype(np.uint32)[[i]] for i in range(full // 4)]
    nb = key.shape[1] // 4
    if nb:
        tail_blocks = np.ascontiguousarray(key[:, : nb * 4]).view("<u4").astype(np.uint32)
        blocks += [tail_blocks[:, i] for i in range(nb)]
    for k in blocks:
        k = _rotl32(k * c1, 15) * c2
        h = _rotl32(h ^ k, 13) * np.uint32(5) + np.uint32(0xE6546B64)
    rest = key.shape[1] - nb * 4
    if rest:
        k = np.zeros(n, dtype=np.uint32)
        for t in range(rest - 1, -1, -1):
            k ^= key[:, nb * 4 + t].astype(np.uint32) << np.uint32(8 * t)
        h ^= _rotl32(k * c1, 15) * c2
    h ^= np.uint32(len(prefix) + suffix.shape[1])
    return _fmix32(h)


# --------------------------------------------------------------------------------------------------------------
# levels, values and hashed buckets


def _draw_levels(col: _Col, u: np.ndarray) -> np.ndarray:
    if col.probs is not None:
        cdf = np.cumsum(np.asarray(col.probs, dtype=np.float64))
        return np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), len(cdf) - 1).astype(np.int64)
    head = col.head
    v = (u - head) / (1.0 - head) if head else u
    a = 1.0 - col.s
    lo, hi = (1.0 + col.q) ** a, (col.K + 1.0 + col.q) ** a
    x = np.power(lo + np.clip(v, 0.0, 1.0) * (hi - lo), 1.0 / a) - col.q
    lev = np.clip(np.floor(x), 1, col.K).astype(np.int64)
    if head:
        lev[u < head] = 0
    return lev


def _hex_codes(name: str, levels: np.ndarray) -> np.ndarray:
    return _fmix32(levels.astype(np.uint32) ^ np.uint32(zlib.crc32(name.encode())))


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE_SHIFTS = np.arange(28, -1, -4, dtype=np.uint32)


def _hex_chars(name: str, levels: np.ndarray) -> np.ndarray:
    """The (n, 8) ASCII bytes of the hex ids of ``levels`` of column ``name``."""
    codes = _hex_codes(name, levels)
    return _HEX_DIGITS[(codes[:, None] >> _NIBBLE_SHIFTS) & np.uint32(15)]


@cache
def _int_values(name: str) -> np.ndarray:
    col = _COL_BY_NAME[name]
    n = col.levels
    j = np.arange(n, dtype=np.int64)
    out = col.lo + (j * 1000003) % max(col.span, 1) if col.span else j.copy()
    out[: len(col.values)] = col.values
    if col.span:
        assert col.span >= n and math.gcd(1000003, col.span) == 1
    assert len(np.unique(out)) == n, f"{name}: values must be distinct"
    return out.astype(np.int32)


def _bucket_of(token: str, mask: int) -> int:
    return int(murmurhash3_32(token, seed=HASH_SEED, positive=True)) & mask


@cache
def _bucket_table(name: str) -> np.ndarray:
    """Bucket of every level of a column with few levels (int columns: sklearn's murmurhash3_32 per token)."""
    mask = 2**HASH_BITS - 1
    if name == "hour_of_day":
        return np.array([_bucket_of(f"hour_of_day={h}", mask) for h in range(24)], dtype=np.int64)
    col = _COL_BY_NAME[name]
    if col.kind == "int":
        return np.array([_bucket_of(f"{name}={v}", mask) for v in _int_values(name)], dtype=np.int64)
    levels = np.arange(col.levels, dtype=np.int64)
    return (_murmur3_rows(f"{name}=".encode(), _hex_chars(name, levels)) & np.uint32(mask)).astype(np.int64)


def _buckets(col: _Col, levels: np.ndarray, chars: np.ndarray | None) -> np.ndarray:
    if col.levels <= _TABLE_HASH_MAX_LEVELS:
        return _bucket_table(col.name)[levels]
    assert chars is not None
    return (_murmur3_rows(f"{col.name}=".encode(), chars) & np.uint32(2**HASH_BITS - 1)).astype(np.int64)


def _hour_index(start: int, n: int, rows: int) -> np.ndarray:
    """Hour slot (0..239) of rows ``start..start+n-1``: time-ordered quantiles of the traffic profile."""
    weights = np.tile(np.asarray(_DIURNAL, dtype=np.float64), _DAYS)
    cdf = np.cumsum(weights) / weights.sum()
    q = (np.arange(start, start + n, dtype=np.float64) + 0.5) / rows
    return np.minimum(np.searchsorted(cdf, q, side="right"), len(cdf) - 1)


def _hour_value(slot: np.ndarray) -> np.ndarray:
    return (14_100_000 + (_FIRST_DAY + slot // 24) * 100 + slot % 24).astype(np.int32)


def _draw_rows(seed: int, start: int, n: int, prefix: str = "") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Level indices of every column for rows ``start..``, and the is-app flag."""
    is_app = _uniform(seed, prefix + "is_app", start, n) < P_APP
    levels: dict[str, np.ndarray] = {}
    for col in _COLS:
        lev = _draw_levels(col, _uniform(seed, prefix + col.name, start, n))
        if col.group == "site":
            lev[is_app] = 0
        elif col.group == "app":
            lev[~is_app] = 0
        levels[col.name] = lev
    return levels, is_app


# --------------------------------------------------------------------------------------------------------------
# the true model


@dataclass(frozen=True, eq=False)
class TrueModel:
    """``p = sigmoid(intercept + X @ weights)`` with ``X = hash_features(df)`` (2**HASH_BITS columns)."""

    seed: int
    weights: np.ndarray
    intercept: float

    def logit(self, X: sp.spmatrix | sp.sparray) -> np.ndarray:
        return np.asarray(X @ self.weights, dtype=np.float64).ravel() + self.intercept

    def proba(self, X: sp.spmatrix | sp.sparray) -> np.ndarray:
        return expit(self.logit(X))


def _token_buckets(levels: dict[str, np.ndarray], hour_of_day: np.ndarray) -> list[np.ndarray]:
    out = []
    for col in _COLS:
        lev = levels[col.name]
        chars = _hex_chars(col.name, lev) if col.kind == "hex" and col.levels > _TABLE_HASH_MAX_LEVELS else None
        out.append(_buckets(col, lev, chars))
    out.append(_bucket_table("hour_of_day")[hour_of_day])
    return out


@lru_cache(maxsize=4)
def true_model(seed: int = 0) -> TrueModel:
    """The seeded weights and calibrated intercept of the model that generates ``click``."""
    _check_seed(seed)
    m = 2**HASH_BITS
    u1 = _uniform(seed, "weights:r", 0, m)
    u2 = _uniform(seed, "weights:theta", 0, m)
    weights = WEIGHT_SD * np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)  # Box-Muller
    weights.setflags(write=False)
    # calibration sample from the same distribution (its own streams), hour of day drawn from the daily profile
    levels, _ = _draw_rows(seed, 0, CALIBRATION_ROWS, prefix="calibration:")
    diurnal = np.cumsum(_DIURNAL) / np.sum(_DIURNAL)
    hod = np.searchsorted(diurnal, _uniform(seed, "calibration:hour", 0, CALIBRATION_ROWS), side="right")
    score = np.zeros(CALIBRATION_ROWS)
    for b in _token_buckets(levels, np.minimum(hod, 23)):
        score += weights[b]
    intercept = brentq(lambda c: float(np.mean(expit(c + score))) - TARGET_CTR, -40.0, 40.0, xtol=1e-13)
    return TrueModel(seed, weights, float(intercept))


# --------------------------------------------------------------------------------------------------------------
# hashing raw columns (what a backend applies to the table)


def hashed_feature_spec() -> dict[str, Any]:
    """How raw columns map to the true model's feature space, for backends that hash the table themselves."""
    n = 2**HASH_BITS
    return {
        "n_features": n,
        "hash_bits": HASH_BITS,
        "hash": "MurmurHash3_x86_32",
        "hash_seed": HASH_SEED,
        "token": "{column}={value} (UTF-8; ints in decimal, ids as stored)",
        "index": f"unsigned 32-bit hash mod {n} (= Spark Utils.nonNegativeMod of the signed hash)",
        "value": "1.0 per token, summed when tokens of one row collide; no alternating sign",
        "columns": list(FEATURE_COLUMNS),
        "derived": {"hour_of_day": "hour % 100 (hour is YYMMDDHH)"},
        "not_features": [TARGET, "hour"],
        "spark": (
            "df.withColumn('hour_of_day', F.col('hour') % 100); "
            f"FeatureHasher(numFeatures={n}, inputCols=columns, categoricalCols=columns) "
            "(Spark >= 3 hashes '{column}={value}' with murmur3 seed 42: the same buckets)"
        ),
        "sklearn": (
            "lrsweep.datasets.ctr.hash_features(df). sklearn's FeatureHasher is not used: its murmur3 seed is "
            "fixed at 0 and its index is abs(h) % n with an alternating sign, so it cannot match Spark"
        ),
    }


# Columns a reader derives from the table (an expression both pandas' eval and Spark SQL evaluate): the true
# model sees the hour of the day, not the YYMMDDHH timestamp.
DERIVED = {"hour_of_day": "hour % 100"}


@dataclass(frozen=True)
class TrueReference:
    """The generating model of a table made with ``seed``, as ``lrsweep.datasets.Reference``."""

    seed: int
    columns: tuple[str, ...] = FEATURE_COLUMNS

    def probabilities(self, frame: pd.DataFrame) -> np.ndarray:
        return true_probabilities(frame[list(self.columns)], seed=self.seed)


def reference(meta: dict[str, Any]) -> TrueReference:
    """The true model of the table a sidecar describes."""
    return TrueReference(int(meta["params"]["seed"]))


def with_hour_of_day(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the true model's ``hour_of_day`` (``hour % 100``; ``hour`` is YYMMDDHH) when it is absent."""
    if "hour_of_day" in df.columns or "hour" not in df.columns:
        return df
    return df.assign(hour_of_day=pd.to_numeric(df["hour"]) % 100)


def hash_features(df: pd.DataFrame, n_features: int = 2**HASH_BITS) -> sp.csr_matrix:
    """Map raw columns to the true model's hashed space: an (n, 2**20) CSR matrix of token counts.

    Needs the columns of :data:`FEATURE_COLUMNS` (``hour_of_day`` may be given or is derived from ``hour``);
    other columns (``click``, ...) are ignored; missing values make no token. With the default ``n_features``,
    ``true_model(seed).proba(hash_features(df))`` is the true click probability of every row. The buckets are
    :func:`lrsweep.hashing.hash_columns`' (Spark FeatureHasher's), as both backends compute them.
    """
    if n_features < 1 or n_features & (n_features - 1):
        raise ValueError(f"n_features must be a power of two, got {n_features}")
    need = [c for c in FEATURE_COLUMNS if c != "hour_of_day"]
    if "hour_of_day" not in df.columns:
        need.append("hour")
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise LrsweepError(
            f"hash_features: column(s) {', '.join(missing)} missing", "pass a table generated by lrsweep.datasets.ctr"
        )
    return hash_columns(with_hour_of_day(df), FEATURE_COLUMNS, n_features)


def true_probabilities(df: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """The true click probability of every row of a table generated with ``seed`` (recomputed from its columns)."""
    return true_model(seed).proba(hash_features(df))


# --------------------------------------------------------------------------------------------------------------
# generation


class _Stats:
    """Streaming totals for the Bayes-optimal figures; integer arithmetic, so independent of the chunking."""

    def __init__(self) -> None:
        self.rows = 0
        self.clicks = 0
        self.loss = 0  # sum of per-row log loss, fixed point
        self.entropy = 0  # sum of the binary entropy of p, fixed point
        self.p = 0  # sum of p, fixed point
        self.pos = np.zeros(AUC_BINS, dtype=np.int64)
        self.neg = np.zeros(AUC_BINS, dtype=np.int64)
        self.seen = {c.name: np.zeros(c.levels, dtype=bool) for c in _COLS}

    @staticmethod
    def _fixed(x: np.ndarray) -> int:
        return int(np.rint(x * _FIXED_POINT).astype(np.int64).sum(dtype=np.int64))

    def add(self, z: np.ndarray, p: np.ndarray, y: np.ndarray, levels: dict[str, np.ndarray]) -> None:
        self.rows += len(y)
        self.clicks += int(y.sum())
        loss_pos, loss_neg = np.logaddexp(0.0, -z), np.logaddexp(0.0, z)  # -log p, -log(1-p)
        self.loss += self._fixed(np.where(y == 1, loss_pos, loss_neg))
        self.entropy += self._fixed(p * loss_pos + (1.0 - p) * loss_neg)
        self.p += self._fixed(p)
        lo, hi = AUC_LOGIT_RANGE
        b = np.clip(((z - lo) * (AUC_BINS / (hi - lo))).astype(np.int64), 0, AUC_BINS - 1)
        self.pos += np.bincount(b[y == 1], minlength=AUC_BINS)
        self.neg += np.bincount(b[y == 0], minlength=AUC_BINS)
        for name, lev in levels.items():
            self.seen[name][lev] = True

    def summary(self) -> dict[str, Any]:
        n, npos = self.rows, self.clicks
        nneg = n - npos
        pairs = npos * nneg
        below = np.cumsum(self.neg) - self.neg  # negatives in lower bins
        wins = int((self.pos * below).sum(dtype=np.int64))
        ties = int((self.pos * self.neg).sum(dtype=np.int64))
        auc = (wins + 0.5 * ties) / pairs if pairs else float("nan")
        return {
            "rows": n,
            "clicks": npos,
            "click_rate": npos / n,
            "mean_p": self.p / _FIXED_POINT / n,
            "bayes_log_loss": self.loss / _FIXED_POINT / n,
            "bayes_expected_log_loss": self.entropy / _FIXED_POINT / n,
            "bayes_roc_auc": auc,
            "bayes_roc_auc_max_binning_error": 0.5 * ties / pairs if pairs else float("nan"),
            "distinct_levels": {name: int(seen.sum()) for name, seen in self.seen.items()},
        }


def _check_rows(rows: int) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or not MIN_ROWS <= rows <= MAX_ROWS:
        raise LrsweepError(f"rows={rows!r} must be an integer in [{MIN_ROWS}, 2**40]", "e.g. rows=1000000")


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise LrsweepError(f"seed={seed!r} must be an integer in [0, 2**63)", "e.g. seed=0")


def _check_chunk(chunk_rows: int) -> None:
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int | np.integer) or chunk_rows < 1:
        raise LrsweepError(f"chunk_rows={chunk_rows!r} must be a positive integer", f"e.g. {DEFAULT_CHUNK_ROWS}")


def _iter_chunks(rows: int, seed: int, chunk_rows: int, stats: _Stats | None = None) -> Iterator[pa.Table]:
    model = true_model(seed)
    for start in range(0, rows, chunk_rows):
        n = min(chunk_rows, rows - start)
        levels, _ = _draw_rows(seed, start, n)
        slot = _hour_index(start, n, rows)
        arrays: dict[str, pa.Array] = {}
        z = np.full(n, model.intercept)
        chars_cache: dict[str, np.ndarray] = {}
        for col in _COLS:
            lev = levels[col.name]
            if col.kind == "hex":
                chars = chars_cache[col.name] = _hex_chars(col.name, lev)
                offsets = np.arange(0, 8 * (n + 1), 8, dtype=np.int32)
                arrays[col.name] = pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(chars))
            else:
                arrays[col.name] = pa.array(_int_values(col.name)[lev], type=pa.int32())
            z += model.weights[_buckets(col, lev, chars_cache.get(col.name))]
        z += model.weights[_bucket_table("hour_of_day")[slot % 24]]
        p = expit(z)
        y = (_uniform(seed, "click", start, n) < p).astype(np.int8)
        if stats is not None:
            stats.add(z, p, y, levels)
        arrays[TARGET] = pa.array(y, type=pa.int8())
        arrays["hour"] = pa.array(_hour_value(slot), type=pa.int32())
        yield pa.Table.from_arrays([arrays[f.name] for f in _SCHEMA], schema=_SCHEMA)


def generate_ctr_frame(
    rows: int, seed: int = 0, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, with_truth: bool = False
) -> pd.DataFrame:
    """The table in memory (small sizes); ``with_truth`` adds the true probability as column ``p_true``."""
    _check_rows(rows)
    _check_seed(seed)
    _check_chunk(chunk_rows)
    df = pa.concat_tables(_iter_chunks(rows, seed, chunk_rows)).to_pandas()
    if with_truth:
        df["p_true"] = true_probabilities(df, seed)
    return df


def generation_params(rows: int, seed: int = 0) -> dict[str, Any]:
    """Everything the table's content depends on (the cache key)."""
    spec = json.dumps(
        [c.__dict__ for c in _COLS] + [_DIURNAL, _FIRST_DAY, _DAYS, P_APP, CALIBRATION_ROWS], sort_keys=True
    )
    return {
        "generator": "lrsweep.datasets.ctr",
        "version": GENERATOR_VERSION,
        "rows": int(rows),
        "seed": int(seed),
        "hash_bits": HASH_BITS,
        "hash_seed": HASH_SEED,
        "target_ctr": TARGET_CTR,
        "weight_sd": WEIGHT_SD,
        "spec_sha256": hashlib.sha256(spec.encode()).hexdigest()[:16],
    }


meta_path = table_cache.meta_path  # ``<table>.meta.json``, beside the table


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The sidecar of a generated table (see ``lrsweep.datasets.cache``)."""
    return table_cache.read_meta(path, "lrsweep.datasets.ctr")


def generate_ctr_table(
    out: str | os.PathLike[str], rows: int, seed: int = 0, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> dict[str, Any]:
    """Write the table to ``out`` (one Parquet file, a row group per chunk) and ``out.meta.json``; return the meta.

    Written under temporary names and renamed (data first, sidecar last), so a file with its sidecar is complete.
    Memory does not grow with ``rows`` (it is set by the chunk size).
    """
    _check_rows(rows)
    _check_seed(seed)
    _check_chunk(chunk_rows)
    final = Path(out)
    if final.is_dir():
        raise LrsweepError(f"{str(final)!r} is a directory", "give a file name such as ctr.parquet")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(final)
    t0 = time.perf_counter()
    stats = _Stats()
    try:
        with pq.ParquetWriter(tmp, _SCHEMA, compression="zstd") as writer:
            for table in _iter_chunks(int(rows), int(seed), int(chunk_rows), stats):
                writer.write_table(table)
        model = true_model(seed)
        meta = {
            "file": final.name,
            "params": generation_params(rows, seed),
            **stats.summary(),
            "intercept": model.intercept,
            "auc_method": (
                f"histogram of the true logit in {AUC_BINS} bins on {list(AUC_LOGIT_RANGE)} (ends open), pairs in one "
                "bin counted 1/2; the exact AUC is within bayes_roc_auc_max_binning_error of bayes_roc_auc"
            ),
            "log_loss_method": "exact: mean of -[y log p + (1-y) log(1-p)] over all rows (fixed point 2**-32)",
            "columns": {f.name: str(f.type) for f in _SCHEMA},
            "categorical_columns": list(CATEGORICAL_COLUMNS),
            "hashing": hashed_feature_spec(),
            "chunk_rows": int(chunk_rows),
            "seconds": round(time.perf_counter() - t0, 3),
            "bytes": tmp.stat().st_size,
            "sha256": sha256_file(tmp),
            "created_by": f"lrsweep.datasets.ctr v{GENERATOR_VERSION}",
            "versions": {"pyarrow": pa.__version__, "numpy": np.__version__},
        }
        table_cache.publish(tmp, final, meta)
    finally:
        tmp.unlink(missing_ok=True)
    return meta


# --------------------------------------------------------------------------------------------------------------
# cache


def default_cache_dir() -> Path:
    """``$LRSWEEP_CACHE/ctr`` if set, else ``$XDG_CACHE_HOME/lrsweep/ctr`` (``~/.cache/lrsweep/ctr``)."""
    return table_cache.cache_dir("ctr")


DEFAULT_ROWS = 100_000


def ensure_table(rows: int, seed: int = 0) -> Path:
    """The generator interface of ``lrsweep.datasets``: :func:`ensure_ctr_table` in the default cache."""
    return ensure_ctr_table(rows, seed)


def ensure_ctr_table(rows: int, seed: int = 0, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The cached table for ``(rows, seed)``, generated on first use; returns the Parquet path.

    The file name carries a digest of :func:`generation_params`, so a change of generator invalidates it. A table
    counts as present only with its sidecar and the size recorded there (temporary files are never looked at).
    """
    _check_rows(rows)
    _check_seed(seed)
    return table_cache.cached_table(
        "ctr", generation_params(rows, seed), cache_dir, lambda path: generate_ctr_table(path, rows, seed)
    )


# --------------------------------------------------------------------------------------------------------------
# command line


def _build_parser() -> argparse.ArgumentParser:
    p = table_cache.LineParser(
        prog="python -m lrsweep.datasets.ctr",
        description="Write a synthetic Avazu-like CTR table with known Bayes-optimal log loss and ROC AUC.",
    )
    p.add_argument("--rows", type=int, required=True, help=f"number of rows (>= {MIN_ROWS})")
    p.add_argument("--seed", type=int, default=0, help="seed of the true model and of the draws (default 0)")
    dest = p.add_mutually_exclusive_group()
    dest.add_argument("--out", type=Path, help="Parquet file to write (its sidecar is OUT.meta.json)")
    dest.add_argument("--cache-dir", type=Path, help="without --out: the cache folder (default: see --help)")
    p.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="rows per chunk (memory, not content)")
    p.add_argument("--json", action="store_true", help="print the whole sidecar as JSON after the path")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.rows < MIN_ROWS or args.rows > MAX_ROWS:
        parser.error(f"--rows must be between {MIN_ROWS} and 2**40 (got {args.rows})")
    if not 0 <= args.seed < 2**63:
        parser.error(f"--seed must be in [0, 2**63) (got {args.seed})")
    if args.chunk_rows < 1:
        parser.error(f"--chunk-rows must be at least 1 (got {args.chunk_rows})")

    def summary(meta: dict[str, Any]) -> str:
        return (
            f"rows={meta['rows']} click_rate={meta['click_rate']:.4f} bayes_log_loss={meta['bayes_log_loss']:.5f} "
            f"bayes_roc_auc={meta['bayes_roc_auc']:.5f} (binning error <= "
            f"{meta['bayes_roc_auc_max_binning_error']:.1e})"
        )

    return table_cache.run_cli(
        parser, args, lambda out: generate_ctr_table(out, args.rows, args.seed, chunk_rows=args.chunk_rows),
        lambda: ensure_ctr_table(args.rows, args.seed, args.cache_dir), read_meta, summary,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
