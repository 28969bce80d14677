"""lrsweep.hashing: Spark FeatureHasher's buckets in scikit-learn (checked against Spark in tests/backends)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.utils import murmurhash3_32

from lrsweep.hashing import SparkFeatureHasher, bucket_of, hash_columns, token_text


def test_bucket_is_the_non_negative_mod_of_the_signed_seed_42_hash():
    for token in ["site_id=1fbe01fe", "C1=1005", "city=Zürich", ""]:
        h = int(murmurhash3_32(token, seed=42, positive=False))
        for n in (2**20, 1000, 7):
            b = bucket_of(token, n)
            assert 0 <= b < n and b == ((h % n) + n) % n
        # a power of two: the unsigned hash's low bits, as the CTR generator computes them
        assert bucket_of(token, 2**20) == int(murmurhash3_32(token, seed=42, positive=True)) & (2**20 - 1)


def test_each_value_is_one_token_missing_is_none_and_collisions_add():
    df = pd.DataFrame({"a": ["x", None, "y", "x"], "b": [1, 2, 2, 1]})
    X = hash_columns(df, ["a", "b"], 2**16)
    assert X.shape == (4, 2**16) and sp.isspmatrix_csr(X)
    np.testing.assert_array_equal(np.asarray(X.sum(axis=1)).ravel(), [2, 1, 2, 2])  # the missing a makes no token
    assert X[0, bucket_of("a=x", 2**16)] == 1 and X[0, bucket_of("b=1", 2**16)] == 1
    assert (X[0] != X[3]).nnz == 0  # same values, same row
    one = hash_columns(pd.DataFrame({"a": ["x"], "c": ["x"]}), ["a", "c"], 1)  # everything collides in 1 bucket
    assert one[0, 0] == 2


def test_integral_floats_are_written_as_ints_and_text_stays_text():
    assert token_text(5.0) == "5" and token_text(np.float64(-3.0)) == "-3" and token_text(2.5) == "2.5"
    assert token_text("05") == "05" and token_text(7) == "7"
    gappy = pd.DataFrame({"c": [5.0, np.nan, 7.0]})  # an int column with a gap, as pandas reads it
    ints = pd.DataFrame({"c": [5, 6, 7]})
    a, b = hash_columns(gappy, ["c"], 64), hash_columns(ints, ["c"], 64)
    assert (a[0] != b[0]).nnz == 0 and a[1].nnz == 0


def test_transformer_is_stateless_and_sparse_inside_a_column_transformer():
    train = pd.DataFrame({"id": ["u1", "u2"], "n": [1.0, 2.0]})
    new = pd.DataFrame({"id": ["never-seen", None], "n": [3.0, 4.0]})
    ct = ColumnTransformer([("hash", SparkFeatureHasher(2**10), ["id"])], sparse_threshold=1.0).fit(train)
    out = ct.transform(new)
    assert sp.issparse(out) and out.shape == (2, 2**10)
    assert out[0, bucket_of("id=never-seen", 2**10)] == 1 and out[1].nnz == 0
    with pytest.raises(TypeError, match="DataFrame"):
        SparkFeatureHasher().fit(np.zeros((2, 1)))
