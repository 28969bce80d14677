"""Hashed features fitted on the buckets the rows use (lrsweep.backends.spark_buckets): the same rows, the same
model, in the hasher's whole space."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lrsweep.backends.spark import FEATURES, LABEL, SparkBackend, SparkConfig
from lrsweep.backends.spark_buckets import compact
from lrsweep.clusters import LocalCluster
from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
from lrsweep.data import open_data
from lrsweep.datasets.ctr import FEATURE_COLUMNS
from lrsweep.space import ModelParams
from tests.backends.tiers import plan_tiers

pytestmark = pytest.mark.spark

LOCAL2 = LocalCluster(master="local[2]")
HEAD, BUCKETS = 2, 1024
CTR_BUCKETS = 2**16  # the hasher's space of the CTR tests: wide enough that the rows use few of its buckets


def _rows() -> list[tuple[Any, float]]:
    """Vectors of HEAD real features then BUCKETS hashed counts (a collision counts 2), one of them dense."""
    from pyspark.ml.linalg import Vectors

    size = HEAD + BUCKETS
    rows = [
        (Vectors.sparse(size, {0: 0.5, 1: -1.0, 7: 1.0, 300: 2.0, 1025: 1.0}), 0.0),
        (Vectors.sparse(size, {1: 3.0, 7: 1.0, 512: 1.0}), 1.0),
        (Vectors.sparse(size, {0: -2.0, 40: 1.0, 300: 1.0, 999: 1.0}), 1.0),
        (Vectors.sparse(size, {}), 0.0),
    ]
    dense = np.zeros(size)
    dense[[0, 41, 512]] = [1.5, 1.0, 3.0]
    rows.append((Vectors.dense(dense), 0.0))
    return rows


def _arrays(df: Any) -> np.ndarray:
    return np.array([r[FEATURES].toArray() for r in df.orderBy("id").collect()])


def test_compact_keeps_the_head_and_each_rows_counts_at_its_buckets_place(spark: Any) -> None:
    rows = _rows()
    df = spark.createDataFrame([(i, v, y) for i, (v, y) in enumerate(rows)], ["id", FEATURES, LABEL])
    full = np.array([v.toArray() for v, _ in rows])
    out, space = compact(df, FEATURES, HEAD + BUCKETS, HEAD)
    assert space is not None
    used = np.flatnonzero(full[:, HEAD:].any(axis=0)) + HEAD
    np.testing.assert_array_equal(space.used, used)  # ascending: every row's features keep their order
    assert (space.head, space.size, space.width) == (HEAD, HEAD + BUCKETS, HEAD + len(used))
    assert out.columns == df.columns
    assert out.schema[FEATURES].metadata == {"ml_attr": {"num_attrs": space.width}}
    got = _arrays(out)
    np.testing.assert_array_equal(got[:, :HEAD], full[:, :HEAD])
    np.testing.assert_array_equal(got[:, HEAD:], full[:, used])  # counts (2 for the collision) where they were
    assert all(r[LABEL] == y for r, (_, y) in zip(out.orderBy("id").collect(), rows, strict=True))

    # a subset of the compacted rows (a halving rung) compacted again: its buckets in the hasher's space
    some = out.where("id IN (1, 2)")
    again, inner = compact(some, FEATURES, space.width, HEAD, base=space)
    assert inner is not None
    np.testing.assert_array_equal(inner.used, [7, 40, 300, 512, 999])
    assert inner.size == HEAD + BUCKETS
    np.testing.assert_array_equal(_arrays(again)[:, HEAD:], full[[1, 2]][:, inner.used])

    nothing = df.where("id = 3")  # no bucket used: the frame as it is
    same, none = compact(nothing, FEATURES, HEAD + BUCKETS, HEAD)
    assert none is None and same is nothing


def _ctr(rows: int = 3000) -> DatasetConfig:
    cols = list(FEATURE_COLUMNS)  # every column hashed, as conf/dataset/ctr.yaml
    return DatasetConfig(
        name="ctr", source="generated", generator="ctr", rows=rows, target="click", positive="1",
        drop=["hour"], categorical=cols, hashed=cols, hash_features=CTR_BUCKETS,
    )  # fmt: skip


def _both(dataset: DatasetConfig, cv: CVConfig | None = None) -> tuple[SparkBackend, SparkBackend]:
    out = []
    for compact_hashed in (True, False):
        backend = SparkBackend(SparkConfig(compact_hashed=compact_hashed), cluster=LOCAL2, seed=7)
        backend.prepare(open_data(dataset, SplitConfig(), cv or CVConfig(), 42))
        out.append(backend)
    return out[0], out[1]


@pytest.fixture(scope="module")
def ctr_pair(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    mp = pytest.MonkeyPatch()
    mp.setenv("LRSWEEP_CACHE", str(tmp_path_factory.mktemp("cache")))
    used, full = _both(_ctr())
    yield used, full
    used.close()
    full.close()
    mp.undo()


CONFIGS = [
    ModelParams(1.0, 0.0, "l2", None, "none", 200, 1e-8),
    ModelParams(0.05, 1.0, "l1", None, "none", 200, 1e-8),  # OWL-QN
    ModelParams(0.3, 0.5, "elasticnet", None, "balanced", 60, 1e-8),  # capped: the same 60 steps both ways (CI time)
    ModelParams(math.inf, 0.0, "none", None, "none", 30, 1e-8),
]


@pytest.mark.parametrize("params", CONFIGS, ids=lambda p: f"{p.penalty}-{p.class_weight}")
def test_a_fit_on_the_used_buckets_scores_as_the_fit_on_all_buckets(ctr_pair: Any, params: ModelParams) -> None:
    used, full = ctr_pair
    space = used._folds[0].space
    assert space is not None and full._folds[0].space is None
    assert 100 < len(space.used) < space.size // 10  # a few thousand rows use few of the hasher's buckets (7%)
    for fraction in (1.0, 1 / 3):
        a, b = used.evaluate(params, fraction=fraction), full.evaluate(params, fraction=fraction)
        assert a.fit.n_iter == b.fit.n_iter
        # the same optimum to the solver's precision (the same terms summed in another grouping: 5e-10 seen)
        assert a.log_loss == pytest.approx(b.log_loss, rel=0, abs=1e-9)
        assert a.scores is not None and b.scores is not None
        np.testing.assert_array_equal(a.scores[0], b.scores[0])
        np.testing.assert_allclose(a.scores[1], b.scores[1], rtol=0, atol=1e-9)


def test_the_model_is_written_back_at_its_buckets_and_a_rungs_buckets_are_its_own(ctr_pair: Any) -> None:
    used, full = ctr_pair
    fold, params = used._folds[0], CONFIGS[0]
    model, _ = used._fit_lr(params, fold.fit, fold.n_fit, fold.space)
    reference, _ = full._fit_lr(params, full._folds[0].fit, fold.n_fit)
    coef, ref = model.coefficients.toArray(), reference.coefficients.toArray()
    assert coef.shape == ref.shape == (CTR_BUCKETS,)
    unused = np.setdiff1d(np.arange(CTR_BUCKETS), fold.space.used)
    assert not coef[unused].any() and not ref[unused].any()  # no fitting row uses them: 0 either way
    assert np.count_nonzero(coef[fold.space.used]) > 0.9 * len(fold.space.used)
    # the same optimum to the solver's precision (L-BFGS adds the same terms in another grouping: 3e-10 seen)
    np.testing.assert_allclose(coef, ref, rtol=0, atol=1e-8)
    assert model.intercept == pytest.approx(reference.intercept, abs=1e-8)

    used.prepare_rungs([1 / 9, 1 / 3])
    small, middle = (used._rung(f, None) for f in (1 / 9, 1 / 3))
    assert set(small[3].used) < set(middle[3].used) < set(fold.space.used)  # nested rows, nested buckets
    for rows, n, _, space in (small, middle):
        width = rows.schema[FEATURES].metadata["ml_attr"]["num_attrs"]
        assert width == space.width == len(space.used) and rows.count() == n
    rows_full, n_full = full.fraction_rows(1 / 9)
    assert n_full == small[1]
    buckets = np.unique(np.concatenate([r[FEATURES].indices for r in rows_full.collect()]))
    np.testing.assert_array_equal(small[3].used, buckets)  # exactly the buckets the rung's rows use


def test_multi_class_fits_on_the_used_buckets_give_the_same_probabilities(spark: Any, tmp_path: Path) -> None:
    path = plan_tiers(tmp_path / "tiers.csv")
    frame = pd.read_csv(path)
    frame["site"] = [f"s{i % 397}" for i in range(len(frame))]  # many levels, hashed beside one-hot and numbers
    frame.to_csv(path, index=False)
    dataset = DatasetConfig(
        name="tiers", path=str(path), target="tier", positive=None, categorical=["region", "site"],
        hashed=["site"], hash_features=2**12,
    )  # fmt: skip
    used, full = _both(dataset)
    try:
        space = used._folds[0].space
        assert space is not None and space.head > 0 and len(space.used) <= 397
        for mode in ("multinomial", "ovr"):
            params = ModelParams(2.0, 0.0, "l2", None, "balanced", 500, 1e-9, None, mode)
            a, b = used.evaluate(params), full.evaluate(params)
            assert a.scores is not None and b.scores is not None
            # the same optimum to the solver's precision: K x width coefficients are summed in another grouping,
            # and a softmax line search near the optimum amplifies last bits (4e-8 seen)
            np.testing.assert_allclose(a.scores[1], b.scores[1], rtol=0, atol=1e-6)
            assert a.log_loss == pytest.approx(b.log_loss, abs=1e-8)
    finally:
        used.close()
        full.close()


def test_the_refit_on_the_used_buckets_logs_the_same_model_in_the_hashers_space(ctr_pair: Any) -> None:
    used, full = ctr_pair
    a, b = (backend.refit(CONFIGS[2], 0.3) for backend in (used, full))
    lr_a, lr_b = a.model.stages[-2], b.model.stages[-2]
    assert lr_a.numFeatures == lr_b.numFeatures == CTR_BUCKETS  # the logged model reads the hasher's features
    np.testing.assert_allclose(lr_a.coefficients.toArray(), lr_b.coefficients.toArray(), rtol=0, atol=1e-8)
    assert a.test.log_loss == pytest.approx(b.test.log_loss, abs=1e-9)
    assert a.test.scores is not None and b.test.scores is not None
    np.testing.assert_allclose(a.test.scores[1], b.test.scores[1], rtol=0, atol=1e-9)
    named = ["feature", "level", "scale"]  # the same rows of the coefficient table, in the same order
    pd.testing.assert_frame_equal(a.coefficients[named], b.coefficients[named])
    np.testing.assert_allclose(a.coefficients["coefficient"], b.coefficients["coefficient"], rtol=0, atol=1e-8)
    assert list(a.example_predictions) == list(b.example_predictions)  # raw rows through the logged pipeline
