"""The synthetic 4-class softmax generator: determinism, the true model and its Bayes figures, learnability by a
multinomial logistic regression, the datasets interface (generated_table), the cache, atomic writes and the CLI."""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

import lrsweep
from lrsweep.datasets import GENERATORS, generate, generated_table
from lrsweep.datasets import softmax as sm
from lrsweep.errors import LrsweepError

ROWS = 2_000


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LRSWEEP_CACHE", str(tmp_path))
    return tmp_path / "softmax"


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, dict]:
    path = tmp_path_factory.mktemp("softmax") / "plans.parquet"
    meta = sm.generate_softmax_table(path, ROWS, seed=0)
    return path, pd.read_parquet(path), meta


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------- the table


def test_same_seed_same_bytes_other_seed_differs(cache: Path) -> None:
    a = sm.ensure_table(ROWS, seed=3)
    first = _sha(a)
    assert a.parent == cache and first == sm.read_meta(a)["sha256"]
    b = sm.generate_softmax_table(cache.parent / "again.parquet", ROWS, seed=3)
    assert b["sha256"] == first == _sha(cache.parent / "again.parquet")
    c = sm.ensure_table(ROWS, seed=4)
    assert c != a and _sha(c) != first
    fa, fc = pd.read_parquet(a), pd.read_parquet(c)
    assert (fa["tenure_months"] != fc["tenure_months"]).all() and not fa["plan"].equals(fc["plan"])


def test_schema_and_distributions(table: tuple[Path, pd.DataFrame, dict]) -> None:
    _, df, meta = table
    assert list(df.columns) == list(sm.COLUMNS) and len(df) == ROWS and df.isna().sum().sum() == 0
    for col in sm.NUMERIC_COLUMNS:
        assert df[col].dtype == np.float64, col
    assert (df[list(sm.NUMERIC_COLUMNS)] >= 0).all().all() and (df["seats"] >= 1).all()
    assert set(df["plan"]) == set(sm.CLASSES) and list(sm.CLASSES) == sorted(sm.CLASSES)
    assert set(df["region"]) == {"north_america", "europe", "asia_pacific", "latin_america"}
    assert set(df["signup_channel"]) == {"organic", "paid_ads", "referral"}
    assert abs(df["tenure_months"].mean() - 24) < 2 and abs(df["seats"].mean() - 3.5) < 0.2
    assert meta["columns"]["plan"] == "string" and meta["columns"]["seats"] == "double"


def test_a_larger_table_starts_with_the_smaller_one() -> None:
    small = sm.generate_softmax_frame(300, seed=1)
    large = sm.generate_softmax_frame(sm.BLOCK_ROWS + 500, seed=1)  # two blocks
    pd.testing.assert_frame_equal(small, large.head(300))
    assert large.iloc[sm.BLOCK_ROWS :]["tenure_months"].nunique() == 500  # the second block has its own draws


# ---------------------------------------------------------------------------------------------------- the true model


def test_probabilities_are_distributions_and_give_the_stored_bayes_figures(
    table: tuple[Path, pd.DataFrame, dict],
) -> None:
    path, df, meta = table
    assert sm.read_meta(path) == meta and meta["sha256"] == _sha(path) and meta["bytes"] == path.stat().st_size
    assert meta["classes"] == list(sm.CLASSES) == meta["params"]["classes"]
    ref = sm.reference(meta)
    assert ref == sm.TRUE_MODEL and ref.columns == (*sm.NUMERIC_COLUMNS, *sm.CATEGORICAL_COLUMNS)
    p = ref.probabilities(df)  # recomputed from the columns read back
    assert p.shape == (ROWS, 4) and (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    y = df["plan"].to_numpy()
    assert meta["bayes_log_loss"] == pytest.approx(log_loss(y, p, labels=list(sm.CLASSES)), abs=1e-12)
    auc = roc_auc_score(y, p, multi_class="ovr", average="macro", labels=list(sm.CLASSES))
    assert meta["bayes_roc_auc"] == pytest.approx(auc, abs=1e-12)
    shares = df["plan"].value_counts(normalize=True)
    assert meta["class_shares"] == pytest.approx(shares.to_dict(), abs=1e-12)
    assert min(meta["class_shares"].values()) >= 0.05
    assert 0.7 < meta["bayes_log_loss"] < 1.0 and 0.75 < meta["bayes_roc_auc"] < 0.95
    # the labels follow the probabilities: the mean probability of a class is near its share
    for k, c in enumerate(sm.CLASSES):
        assert abs(p[:, k].mean() - shares[c]) < 0.03, c


def test_reference_is_plain_and_picklable(table: tuple[Path, pd.DataFrame, dict]) -> None:
    _, df, meta = table
    ref = sm.reference(json.loads(json.dumps(meta)))
    blob = pickle.dumps(ref)
    assert len(blob) < 4_000 and pickle.loads(blob) == ref
    assert np.array_equal(pickle.loads(blob).probabilities(df.head(50)), ref.probabilities(df.head(50)))
    # it reads only its columns, in any order and type the loaders give (categoricals as pandas categories)
    mixed = df[list(reversed(ref.columns))].astype({"region": "category"}).head(50)
    assert np.array_equal(ref.probabilities(mixed), ref.probabilities(df.head(50)))
    with pytest.raises(LrsweepError, match="seats"):
        ref.probabilities(df.drop(columns="seats"))
    with pytest.raises(LrsweepError, match="mars"):
        ref.probabilities(df.head(3).assign(region="mars"))


def test_multinomial_logistic_regression_learns_the_true_model() -> None:
    df = sm.generate_softmax_frame(25_000, seed=2)
    train, test = df.iloc[:20_000], df.iloc[20_000:]
    enc = OneHotEncoder(drop="first", sparse_output=False).fit(train[list(sm.CATEGORICAL_COLUMNS)])

    def features(frame: pd.DataFrame) -> np.ndarray:
        num = frame[list(sm.NUMERIC_COLUMNS)].to_numpy()
        return np.hstack([num, enc.transform(frame[list(sm.CATEGORICAL_COLUMNS)])])

    x_train, x_test = features(train), features(test)
    mu, sd = x_train.mean(axis=0), x_train.std(axis=0)  # scaling only helps lbfgs: the model family is the same
    with threadpool_limits(1):
        lr = LogisticRegression(C=1e4, max_iter=2_000).fit((x_train - mu) / sd, train["plan"])
    assert list(lr.classes_) == list(sm.CLASSES)
    fitted = log_loss(test["plan"], lr.predict_proba((x_test - mu) / sd), labels=list(sm.CLASSES))
    bayes = log_loss(test["plan"], sm.TRUE_MODEL.probabilities(test), labels=list(sm.CLASSES))
    prior = log_loss(
        test["plan"], np.tile(train["plan"].value_counts(normalize=True)[list(sm.CLASSES)].to_numpy(), (5_000, 1))
    )
    assert abs(fitted - bayes) < 0.02 and prior - bayes > 0.3


# ---------------------------------------------------------------------------------------------------- lrsweep.datasets


def test_generated_table_recognises_the_table(cache: Path) -> None:
    assert GENERATORS["softmax"] == "lrsweep.datasets.softmax"
    path = generate("softmax", 500, 6)
    assert path.parent == cache and path.name.startswith("softmax-r500-s6-")
    gen = generated_table(path)
    assert gen is not None and gen.derived == {} and gen.meta["created_by"].startswith("lrsweep.datasets.softmax ")
    p = gen.reference.probabilities(pd.read_parquet(path))
    assert p.shape == (500, 4)
    summary = gen.summary()
    assert summary["classes"] == list(sm.CLASSES) and set(summary["class_shares"]) == set(sm.CLASSES)
    assert {"params", "bayes_log_loss", "bayes_roc_auc", "sha256"} <= set(summary)
    assert generate("softmax", None, 0).name.startswith(f"softmax-r{sm.DEFAULT_ROWS}-s0-")


def test_dataset_config_composes() -> None:
    from lrsweep.cli import register_configs, to_config

    register_configs()
    conf = Path(lrsweep.__file__).parent / "conf"
    with initialize_config_dir(version_base="1.3", config_dir=str(conf.resolve())):
        ds = to_config(compose("config", overrides=["dataset=softmax"])).dataset
    assert (ds.name, ds.source, ds.generator, ds.path, ds.rows, ds.seed) == ("softmax", "generated", "softmax", None,
                                                                            100_000, 0)  # fmt: skip
    assert (ds.target, ds.positive, ds.categorical, ds.hashed) == ("plan", None, ["region", "signup_channel"], [])


# ---------------------------------------------------------------------------------------------------- cache and writes


def test_cache_generates_once_and_leaves_no_temporary_file(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = sm.ensure_table(ROWS, seed=0)
    mtime = path.stat().st_mtime_ns

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated a cached table")

    monkeypatch.setattr(sm, "generate_softmax_table", fail)
    assert sm.ensure_table(ROWS, seed=0) == path and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in cache.iterdir()) == sorted([path.name, sm.meta_path(path).name, f".{path.name}.lock"])


def test_cache_ignores_partial_files(tmp_path: Path) -> None:
    path = sm.ensure_softmax_table(500, seed=0, cache_dir=tmp_path)
    good = _sha(path)
    # killed while writing: only a temporary file, never taken as the table
    for p in [path, sm.meta_path(path)]:
        p.unlink()
    (tmp_path / f".{path.name}.999-deadbeef.tmp").write_bytes(b"PAR1 half a file")
    assert sm.ensure_softmax_table(500, seed=0, cache_dir=tmp_path) == path and _sha(path) == good
    # killed between the two renames: data without its sidecar is regenerated
    sm.meta_path(path).unlink()
    path.write_bytes(b"PAR1 truncated")
    assert sm.ensure_softmax_table(500, seed=0, cache_dir=tmp_path) == path and _sha(path) == good
    # a sidecar whose recorded size does not match the data is not trusted either
    path.write_bytes(path.read_bytes()[:100])
    assert sm.ensure_softmax_table(500, seed=0, cache_dir=tmp_path) == path and _sha(path) == good


def test_failed_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = sm._iter_blocks

    def dying(*args: object, **kwargs: object):
        blocks = real(*args, **kwargs)
        yield next(blocks)
        raise KeyboardInterrupt

    monkeypatch.setattr(sm, "_iter_blocks", dying)
    with pytest.raises(KeyboardInterrupt):
        sm.generate_softmax_table(tmp_path / "t.parquet", ROWS)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_of_the_api(tmp_path: Path) -> None:
    with pytest.raises(LrsweepError, match="rows"):
        sm.ensure_softmax_table(99, cache_dir=tmp_path)
    with pytest.raises(LrsweepError, match="seed"):
        sm.generate_softmax_frame(1_000, seed=-1)
    with pytest.raises(LrsweepError, match="directory"):
        sm.generate_softmax_table(tmp_path, 1_000)
    with pytest.raises(LrsweepError, match="does not exist"):
        sm.read_meta(tmp_path / "nothing.parquet")


# ---------------------------------------------------------------------------------------------------- CLI


def test_cli_writes_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "plans.parquet"
    assert sm.main(["--rows", "1500", "--seed", "7", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    meta = sm.read_meta(out)
    assert lines[0] == str(out) and f"bayes_log_loss={meta['bayes_log_loss']:.5f}" in lines[1]
    assert "basic=" in lines[1] and meta["params"]["seed"] == 7 and meta["rows"] == 1500


def test_cli_as_module(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "lrsweep.datasets.softmax", "--rows", "5", "--out", str(tmp_path / "t.parquet")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "python -m lrsweep.datasets.softmax: error: --rows must be between 100 and 2**24 (got 5)"
    ]
    assert list(tmp_path.iterdir()) == []
