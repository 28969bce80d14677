"""Fitting hashed features on the buckets the fitting rows use, the model placed back in the hasher's space.

A FeatureHasher writes ``2**20`` buckets, and Spark's LogisticRegression pays for every one of them on every
L-BFGS pass: each task builds a dense gradient of that size, ships it back, the driver sums them and steps
coefficient vectors of that size. The rows of a fitting part use far fewer (generated CTR, 10**6 rows: 423,299 of
1,048,576 by the 600,000 training rows, 34,972 by a 1/27 halving rung). A bucket that no fitting row uses gets
the coefficient 0 exactly, under any penalty: its gradient is 0 at 0 (no row touches it; the L2 term is 0 there,
OWL-QN keeps an L1 coordinate at 0 while its gradient lies inside the penalty), and L-BFGS' directions, built
from gradients and steps, never touch it. So fitting the same rows on the used buckets only, then writing each
coefficient back at its bucket, gives the same model; the buckets are kept in ascending order, so every row's
features are summed in the same order as before (held-out probabilities equal to 1e-9 in the tests).

:func:`compact` rewrites a frame's FEATURES over the buckets its rows use (Spark built-ins only: the vector read
as its SQL struct, each used bucket's count written as that many tokens, a CountVectorizerModel holding the
used buckets as its vocabulary); :func:`expand` makes a model fitted there a model of the hasher's whole space,
which scores, logs and explains exactly as one fitted there. Features before the hashed block (numerics and
one-hot levels, assembled first) are kept as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lrsweep.data.spark import PREFIX, ident

__all__ = ["UsedBuckets", "compact", "expand", "vector_struct_sql"]

# a vector column's SQL form (Spark SQL has no vector functions: to_json of a vector writes this struct)
VECTOR_SQL = "struct<type:tinyint,size:int,indices:array<int>,values:array<double>>"


def vector_struct_sql(col: str) -> str:
    """SQL reading the vector column ``col`` as its struct (type, size, indices, values; a dense vector: type 1,
    no size or indices)."""
    return f"from_json(to_json(named_struct('v', {ident(col)})), 'v {VECTOR_SQL}').v"


@dataclass(frozen=True)
class UsedBuckets:
    """Where a compacted frame's features sit in the hasher's space."""

    head: int  # features before the hashed block, the same in both spaces
    used: np.ndarray  # the full-space index of each compacted hashed feature, ascending (all >= head)
    size: int  # the full space's width (head + the hasher's buckets)

    @property
    def width(self) -> int:
        return self.head + len(self.used)


def _entries(v: Any, head: int) -> Any:
    """(index, value) pairs of the vector struct ``v`` at index >= ``head`` (a dense vector: every index)."""
    from pyspark.sql import functions as F

    idx = F.coalesce(v.getField("indices"), F.sequence(F.lit(0), F.size(v.getField("values")) - 1))
    pairs = F.arrays_zip(idx.alias("i"), v.getField("values").alias("x"))
    return F.filter(pairs, lambda e: (e.getField("i") >= head) & (e.getField("x") != 0))


def compact(
    df: Any, features: str, size: int, head: int, base: UsedBuckets | None = None
) -> tuple[Any, UsedBuckets | None]:
    """``df`` with its vector column ``features`` (``size`` wide: ``head`` features, then hashed buckets) rewritten
    over the buckets its rows use, and where they sit. ``base``: ``df``'s features are already compacted there
    (a halving rung of a compacted fold): the result's buckets are placed in ``base``'s full space.

    The hashed block's values must be counts (a categorical token adds 1 to its bucket), as lrsweep's hasher
    writes them. Two passes over ``df``: the used buckets, then the rewrite (lazy: the caller caches it).
    """
    from pyspark import SparkContext
    from pyspark.ml.feature import CountVectorizerModel, VectorAssembler, VectorSlicer
    from pyspark.ml.stat import Summarizer
    from pyspark.sql import functions as F

    # the buckets the rows use: one aggregation (Spark's Summarizer counts each feature's nonzero rows)
    nonzero = df.select(Summarizer.metrics("numNonZeros").summary(F.col(features)).alias("s")).first()[0]
    used = np.flatnonzero(nonzero.numNonZeros.toArray()[head:]) + head
    if not len(used):  # no row uses a bucket: nothing to compact
        return df, None
    jvm: Any = SparkContext._jvm
    # the vocabulary as one string split in the JVM: a Python list would cross py4j an element at a time
    vocabulary = jvm.java.util.regex.Pattern.compile(" ").split(" ".join(map(str, used)))
    model = CountVectorizerModel(jvm.org.apache.spark.ml.feature.CountVectorizerModel(vocabulary))
    tokens, counted = PREFIX + "tokens", PREFIX + "counted"
    model.setInputCol(tokens).setOutputCol(counted)
    # a bucket's count as that many tokens: the vectorizer counts them back into the bucket's compacted index
    repeated = F.transform(
        _entries(F.expr(vector_struct_sql(features)), head),
        lambda e: F.array_repeat(e.getField("i").cast("string"), e.getField("x").cast("int")),
    )
    out = model.transform(df.withColumn(tokens, F.flatten(repeated))).drop(tokens)
    if head:
        kept, both = PREFIX + "head", PREFIX + "assembled"
        out = VectorSlicer(inputCol=features, outputCol=kept, indices=list(range(head))).transform(out)
        out = VectorAssembler(inputCols=[kept, counted], outputCol=both).transform(out)
        out = out.drop(kept, counted).withColumnRenamed(both, counted)
    space = UsedBuckets(head, used, size)
    if base is not None:  # indices of base's compacted space -> base's full space
        space = UsedBuckets(head, base.used[used - head], base.size)
    columns = [F.col(counted).alias(features, metadata={"ml_attr": {"num_attrs": space.width}}) if c == features
               else F.col(c) for c in df.columns]  # fmt: skip
    return out.select(*columns), space


def expand(lr_model: Any, space: UsedBuckets) -> Any:
    """A LogisticRegressionModel of the hasher's whole space predicting exactly as ``lr_model``, fitted on
    ``space``'s compacted features: each coefficient written at its bucket, 0 elsewhere (held dense: scoring
    walks a row's few features, not the model's nonzero coefficients). Every param as set on ``lr_model``."""
    from pyspark import SparkContext
    from pyspark.ml.classification import LogisticRegressionModel
    from pyspark.ml.common import _py2java
    from pyspark.ml.linalg import DenseMatrix

    j = lr_model._java_obj
    matrix = lr_model.coefficientMatrix.toArray()  # classes (1 when binomial) x width
    full = np.zeros((matrix.shape[0], space.size))
    full[:, : space.head] = matrix[:, : space.head]
    full[:, space.used] = matrix[:, space.head :]
    sc: Any = SparkContext._active_spark_context  # set while a session is up, as it is for any fitted model
    jvm: Any = SparkContext._jvm
    # (row major, as Spark's own binomial models are)
    dense = _py2java(sc, DenseMatrix(full.shape[0], full.shape[1], full.ravel(), True))
    cls = jvm.org.apache.spark.ml.classification.LogisticRegressionModel
    multinomial = full.shape[0] > 1  # a binomial model holds one row (the JVM keeps the flag private)
    out = LogisticRegressionModel(cls(j.uid(), dense, j.interceptVector(), j.numClasses(), multinomial))
    lr_model._copyValues(out)
    return out
