"""Feature hashing that gives Spark ML's buckets on both backends.

Spark's ``FeatureHasher`` maps a categorical value ``v`` of column ``c`` to the token ``"c=v"``, hashes its
UTF-8 bytes with MurmurHash3 x86_32 (seed 42) and puts a 1.0 in bucket ``nonNegativeMod(hash, n)``; tokens of
one row that collide are summed and a missing value makes no token. :func:`hash_columns` computes exactly that
with scikit-learn's ``murmurhash3_32``, once per distinct value, so a table hashed by the scikit-learn backend
and by the Spark backend has the same columns (tests/test_hashing.py checks it against Spark itself).

scikit-learn's own ``FeatureHasher`` is not used: its seed is fixed at 0, its index is ``abs(h) % n`` and it
alternates signs, so it cannot reproduce Spark's buckets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import murmurhash3_32

__all__ = ["HASH_SEED", "DEFAULT_N_FEATURES", "SparkFeatureHasher", "bucket_of", "hash_columns", "token_text"]

HASH_SEED = 42  # org.apache.spark.ml.feature.FeatureHasher.seed
DEFAULT_N_FEATURES = 2**20  # lrsweep's default (Spark's own default is 2**18)


def bucket_of(token: str, n_features: int) -> int:
    """Spark's bucket of one token: ``Utils.nonNegativeMod(murmur3_x86_32(utf8(token), 42), n_features)``."""
    return int(murmurhash3_32(token, seed=HASH_SEED, positive=False)) % n_features  # Python's % is non-negative


def token_text(value: Any) -> str:
    """A value as Spark writes it in a token: ints in decimal (an integral float read from a gappy int column
    too), text as it is."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Codes per row (-1 for missing) and the token text of each distinct value."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    return np.asarray(codes), [token_text(v) for v in uniques]


def hash_columns(df: pd.DataFrame, columns: Sequence[str], n_features: int = DEFAULT_N_FEATURES) -> sp.csr_matrix:
    """An ``(len(df), n_features)`` CSR matrix of token counts: Spark FeatureHasher's output for ``columns``."""
    if n_features < 1:
        raise ValueError(f"n_features must be positive, got {n_features}")
    n = len(df)
    per_column = []
    for name in columns:
        codes, texts = _codes(df[name])
        table = np.array([bucket_of(f"{name}={t}", n_features) for t in texts] + [-1], dtype=np.int64)
        per_column.append(table[codes])  # code -1 picks the trailing -1: no token
    idx = np.stack(per_column, axis=1) if per_column else np.empty((n, 0), dtype=np.int64)
    present = idx >= 0
    indptr = np.concatenate([[0], np.cumsum(present.sum(axis=1))])
    index_dtype = np.int32 if n_features <= np.iinfo(np.int32).max else np.int64
    X = sp.csr_matrix(
        (np.ones(int(indptr[-1])), idx[present].astype(index_dtype), indptr.astype(np.int64)), shape=(n, n_features)
    )
    X.sum_duplicates()
    return X


class SparkFeatureHasher(TransformerMixin, BaseEstimator):
    """A scikit-learn transformer with Spark FeatureHasher's buckets (for a ColumnTransformer's hashed columns).

    Stateless: ``fit`` only records the column names. Missing values make no token (no imputation), as in Spark.
    """

    def __init__(self, n_features: int = DEFAULT_N_FEATURES) -> None:
        self.n_features = n_features

    def fit(self, X: pd.DataFrame, y: Any = None) -> SparkFeatureHasher:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("SparkFeatureHasher needs a DataFrame: the column names are part of every token")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> sp.csr_matrix:
        return hash_columns(X, list(self.feature_names_in_), self.n_features)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.array([f"hash_{i}" for i in range(self.n_features)], dtype=object)
