"""The synthetic CTR generator: determinism, schema, skew, chunking, known Bayes figures, cache and CLI."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.utils import murmurhash3_32
from threadpoolctl import threadpool_limits

from lrsweep.datasets import ctr
from lrsweep.errors import LrsweepError

ROWS = 20_000
HEX = r"^[0-9a-f]{8}$"


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, dict]:
    path = tmp_path_factory.mktemp("ctr") / "ctr.parquet"
    meta = ctr.generate_ctr_table(path, ROWS, seed=0, chunk_rows=6_000)
    return path, pd.read_parquet(path), meta


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------------- hashing


@pytest.mark.parametrize("prefix", [b"", b"C1=", b"device_ip=", b"device_model="])
def test_vectorised_murmur3_matches_sklearn(prefix: bytes) -> None:
    rng = np.random.default_rng(0)
    for length in range(0, 11):
        suffix = rng.integers(32, 127, size=(40, length)).astype(np.uint8)
        expected = [murmurhash3_32(prefix + bytes(row), seed=ctr.HASH_SEED, positive=True) for row in suffix]
        assert ctr._murmur3_rows(prefix, suffix).tolist() == expected


def test_hash_features_reproduces_the_generators_probabilities() -> None:
    df = ctr.generate_ctr_frame(3_000, seed=3, with_truth=True)
    X = ctr.hash_features(df)
    assert X.shape == (3_000, 2**ctr.HASH_BITS)
    assert np.all(X.sum(axis=1) == len(ctr.FEATURE_COLUMNS))  # one token per feature column
    z = ctr.true_model(3).logit(X)
    p_gen = ctr.generate_ctr_frame(3_000, seed=3, chunk_rows=1_000, with_truth=True)["p_true"]
    np.testing.assert_allclose(1 / (1 + np.exp(-z)), p_gen, rtol=0, atol=1e-12)
    # text values (as data.load_table makes categorical columns) and a given hour_of_day hash the same
    as_text = df.drop(columns="hour").astype({c: str for c in ctr.CATEGORICAL_COLUMNS})
    as_text["hour_of_day"] = df["hour"] % 100
    assert (ctr.hash_features(as_text) != X).nnz == 0


def test_hash_features_skips_missing_values_and_needs_the_columns() -> None:
    df = ctr.generate_ctr_frame(200, seed=0)
    df.loc[:9, "site_id"] = None
    df["C14"] = df["C14"].astype(float)
    df.loc[:4, "C14"] = np.nan  # ints read as floats because of NaN still hash as ints
    X = ctr.hash_features(df)
    counts = np.asarray(X.sum(axis=1)).ravel()
    n = len(ctr.FEATURE_COLUMNS)
    assert counts[:5].tolist() == [n - 2] * 5 and counts[5:10].tolist() == [n - 1] * 5 and set(counts[10:]) == {n}
    full = ctr.hash_features(ctr.generate_ctr_frame(200, seed=0))
    assert (X[10:] != full[10:]).nnz == 0
    with pytest.raises(LrsweepError, match="device_ip"):
        ctr.hash_features(df.drop(columns="device_ip"))


def test_hashed_feature_spec_documents_the_space() -> None:
    spec = ctr.hashed_feature_spec()
    assert spec["n_features"] == 2**20 and spec["hash_seed"] == 42
    assert spec["columns"] == list(ctr.FEATURE_COLUMNS) and "hour_of_day" in spec["derived"]
    assert json.loads(json.dumps(spec)) == spec


# ---------------------------------------------------------------------------------------------------- the table


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{n}.parquet" for n in "abc")
    ctr.generate_ctr_table(a, 3_000, seed=5)
    ctr.generate_ctr_table(b, 3_000, seed=5)
    ctr.generate_ctr_table(c, 3_000, seed=6)
    assert _sha(a) == _sha(b) == ctr.read_meta(a)["sha256"]
    assert _sha(c) != _sha(a)
    fa, fc = pd.read_parquet(a), pd.read_parquet(c)
    assert (fa["device_ip"] != fc["device_ip"]).mean() > 0.9
    assert not fa["click"].equals(fc["click"])


def test_schema_and_dtypes(table: tuple[Path, pd.DataFrame, dict]) -> None:
    _, df, meta = table
    assert list(df.columns) == list(ctr.COLUMNS) and len(df) == ROWS
    assert df.isna().sum().sum() == 0
    assert df["click"].dtype == np.int8 and set(df["click"].unique()) == {0, 1}
    hex_cols = [c for c in ctr.CATEGORICAL_COLUMNS if df[c].dtype == object]
    assert hex_cols == ["site_id", "site_domain", "site_category", "app_id", "app_domain", "app_category"] + [
        "device_id",
        "device_ip",
        "device_model",
    ]
    for col in hex_cols:
        assert df[col].str.fullmatch(HEX).all(), col
    for col in set(ctr.COLUMNS) - set(hex_cols) - {"click"}:
        assert df[col].dtype == np.int32, col
    # hour is YYMMDDHH over 2014-10-21..30, in time order, busier at noon than at 3 am
    hour = df["hour"]
    assert hour.is_monotonic_increasing and hour.min() == 14102100 and hour.max() == 14103023
    hod = (hour % 100).value_counts()
    assert set(hod.index) == set(range(24)) and hod[12] > 2 * hod[3]
    # Avazu's site/app split: a row has the "null" site or the "null" app
    null_site, null_app = df["site_id"].mode()[0], df["app_id"].mode()[0]
    assert ((df["site_id"] == null_site) ^ (df["app_id"] == null_app)).mean() > 0.99
    assert meta["columns"]["click"] == "int8" and meta["columns"]["device_ip"] == "string"


@pytest.mark.parametrize("seed", [0, 1])
def test_click_rate_near_target(seed: int) -> None:
    df = ctr.generate_ctr_frame(ROWS, seed=seed, with_truth=True)
    assert abs(df["click"].mean() - ctr.TARGET_CTR) < 0.02
    assert abs(df["p_true"].mean() - ctr.TARGET_CTR) < 0.01


def test_skewed_cardinalities(table: tuple[Path, pd.DataFrame, dict]) -> None:
    _, df, meta = table
    for col in ["site_id", "site_domain", "app_id", "device_model", "device_ip", "C14", "C17"]:
        counts = df[col].value_counts()
        assert counts.iloc[0] >= 20 * counts.median(), col
    nunique = df.nunique()
    assert nunique["device_ip"] > 10_000 and nunique["device_model"] > 2_000  # many levels ...
    assert nunique["C15"] <= 8 and nunique["device_conn_type"] <= 4  # ... and few
    assert df["device_id"].value_counts(normalize=True).iloc[0] > 0.75  # the anonymous device
    assert {k: v for k, v in meta["distinct_levels"].items() if k in nunique} == {
        k: int(nunique[k]) for k in meta["distinct_levels"]
    }


def test_more_rows_extend_the_same_draws() -> None:
    small = ctr.generate_ctr_frame(2_000, seed=0)
    large = ctr.generate_ctr_frame(8_000, seed=0)
    # row i is drawn from counter i: a larger table starts with the smaller one, except for hour (spread over the
    # 10 days whatever the size) and hence click, whose probability depends on the hour of day
    keep = list(ctr.CATEGORICAL_COLUMNS)
    pd.testing.assert_frame_equal(small[keep], large.head(2_000)[keep])
    assert large["device_ip"].nunique() > 3 * small["device_ip"].nunique()
    # ids are a function of (column, level), not of the seed: the "null" site/app and the anonymous device agree
    other = ctr.generate_ctr_frame(2_000, seed=9)
    for col in ["site_id", "app_id", "device_id", "C15"]:
        assert small[col].mode()[0] == other[col].mode()[0], col


def test_chunking_does_not_change_the_data(tmp_path: Path) -> None:
    one = ctr.generate_ctr_frame(5_000, seed=2, chunk_rows=5_000)
    many = ctr.generate_ctr_frame(5_000, seed=2, chunk_rows=777)
    pd.testing.assert_frame_equal(one, many)
    m1 = ctr.generate_ctr_table(tmp_path / "a.parquet", 5_000, seed=2, chunk_rows=5_000)
    m2 = ctr.generate_ctr_table(tmp_path / "b.parquet", 5_000, seed=2, chunk_rows=1_000)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a.parquet"), one)
    for key in ["bayes_log_loss", "bayes_roc_auc", "click_rate", "mean_p", "distinct_levels"]:
        assert m1[key] == m2[key], key


# ---------------------------------------------------------------------------------------------------- Bayes figures


def test_meta_has_the_bayes_figures_of_the_stored_table(table: tuple[Path, pd.DataFrame, dict]) -> None:
    path, df, meta = table
    assert ctr.read_meta(path) == meta
    assert ctr.meta_path(path).name == "ctr.parquet.meta.json"
    assert meta["params"] == ctr.generation_params(ROWS, 0) and meta["rows"] == ROWS
    assert meta["sha256"] == _sha(path) and meta["bytes"] == path.stat().st_size
    assert meta["hashing"] == ctr.hashed_feature_spec()
    y = df["click"].to_numpy()
    p = ctr.true_probabilities(df, seed=0)  # recomputed from the raw columns
    assert meta["click_rate"] == y.mean() and meta["clicks"] == y.sum()
    assert meta["mean_p"] == pytest.approx(p.mean(), abs=1e-9)
    assert meta["bayes_log_loss"] == pytest.approx(log_loss(y, p), abs=1e-9)
    err = meta["bayes_roc_auc_max_binning_error"]
    assert 0 <= err < 1e-4
    assert abs(meta["bayes_roc_auc"] - roc_auc_score(y, p)) <= err + 1e-12
    assert 0.75 < meta["bayes_roc_auc"] < 0.87 and 0.3 < meta["bayes_log_loss"] < 0.42


def test_logistic_regression_does_not_beat_the_bayes_rate(table: tuple[Path, pd.DataFrame, dict]) -> None:
    _, df, _ = table
    y = df["click"].to_numpy()
    X = ctr.hash_features(df)
    p = ctr.true_probabilities(df, seed=0)
    rng = np.random.default_rng(0)
    test = rng.permutation(ROWS)[: ROWS // 4]
    train = np.setdiff1d(np.arange(ROWS), test)
    bayes_ll, bayes_auc = log_loss(y[test], p[test]), roc_auc_score(y[test], p[test])
    base_ll = log_loss(y[test], np.full(len(test), y[train].mean()))
    # the buckets no training row uses get a zero weight anyway: leaving them out keeps lbfgs fast (2**20 -> ~25k)
    X = X[:, np.unique(X[train].indices)]
    fitted = {}
    with threadpool_limits(1):  # tiny BLAS calls: threads only cost time
        for C in (0.1, 10.0):
            lr = LogisticRegression(C=C, max_iter=500).fit(X[train], y[train])
            q = fitted[C] = lr.predict_proba(X[test])[:, 1]
            assert log_loss(y[test], q) >= bayes_ll - 0.005
            assert roc_auc_score(y[test], q) <= bayes_auc + 0.005
    # ... while the hashed features do carry the signal (C=0.1 is near the best at this size)
    assert log_loss(y[test], fitted[0.1]) < base_ll - 0.02 and roc_auc_score(y[test], fitted[0.1]) > 0.7


# ---------------------------------------------------------------------------------------------------- cache


def test_cache_generates_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ctr.ensure_ctr_table(2_000, seed=4, cache_dir=tmp_path)
    assert path.parent == tmp_path and path.suffix == ".parquet" and ctr.meta_path(path).is_file()
    assert ctr.read_meta(path)["params"] == ctr.generation_params(2_000, 4)
    mtime = path.stat().st_mtime_ns

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("regenerated a cached table")

    monkeypatch.setattr(ctr, "generate_ctr_table", fail)
    assert ctr.ensure_ctr_table(2_000, seed=4, cache_dir=tmp_path) == path
    assert path.stat().st_mtime_ns == mtime
    # other parameters are another table
    monkeypatch.undo()
    other = ctr.ensure_ctr_table(2_000, seed=5, cache_dir=tmp_path)
    assert other != path and sorted(p.name for p in tmp_path.glob("*.parquet")) == sorted([path.name, other.name])


def test_cache_default_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRSWEEP_CACHE", str(tmp_path))
    assert ctr.default_cache_dir() == tmp_path / "ctr"
    assert ctr.ensure_ctr_table(500, seed=0).parent == tmp_path / "ctr"


def test_cache_ignores_partial_files(tmp_path: Path) -> None:
    path = ctr.ensure_ctr_table(1_000, seed=0, cache_dir=tmp_path)
    good = _sha(path)
    # a generation killed while writing leaves only a temporary file: not taken as complete
    shutil.rmtree(tmp_path)
    tmp_path.mkdir()
    (tmp_path / f".{path.name}.999-deadbeef.tmp").write_bytes(b"PAR1 half a file")
    assert not path.exists()
    assert ctr.ensure_ctr_table(1_000, seed=0, cache_dir=tmp_path) == path and _sha(path) == good
    # killed between the two renames: data without its sidecar is regenerated
    ctr.meta_path(path).unlink()
    path.write_bytes(b"PAR1 truncated")
    assert ctr.ensure_ctr_table(1_000, seed=0, cache_dir=tmp_path) == path and _sha(path) == good
    # a sidecar whose recorded size does not match the data is not trusted either
    path.write_bytes(path.read_bytes()[:100])
    assert ctr.ensure_ctr_table(1_000, seed=0, cache_dir=tmp_path) == path and _sha(path) == good


def test_failed_generation_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = ctr._iter_chunks

    def dying(*args: object, **kwargs: object):
        chunks = real(*args, **kwargs)
        yield next(chunks)
        raise KeyboardInterrupt

    monkeypatch.setattr(ctr, "_iter_chunks", dying)
    with pytest.raises(KeyboardInterrupt):
        ctr.generate_ctr_table(tmp_path / "t.parquet", 2_000, chunk_rows=500)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_of_the_api(tmp_path: Path) -> None:
    with pytest.raises(LrsweepError, match="rows"):
        ctr.ensure_ctr_table(99, cache_dir=tmp_path)
    with pytest.raises(LrsweepError, match="seed"):
        ctr.generate_ctr_frame(1_000, seed=-1)
    with pytest.raises(LrsweepError, match="chunk_rows"):
        ctr.generate_ctr_table(tmp_path / "x.parquet", 1_000, chunk_rows=0)
    with pytest.raises(LrsweepError, match="directory"):
        ctr.generate_ctr_table(tmp_path, 1_000)
    with pytest.raises(LrsweepError, match="does not exist"):
        ctr.read_meta(tmp_path / "nothing.parquet")


# ---------------------------------------------------------------------------------------------------- CLI


def test_cli_writes_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "ctr.parquet"
    assert ctr.main(["--rows", "1500", "--seed", "7", "--out", str(out), "--chunk-rows", "400"]) == 0
    lines = capsys.readouterr().out.splitlines()
    meta = ctr.read_meta(out)
    assert lines[0] == str(out) and f"bayes_log_loss={meta['bayes_log_loss']:.5f}" in lines[1]
    assert "bayes_roc_auc=" in lines[1] and meta["params"]["seed"] == 7 and meta["rows"] == 1500


def test_cli_uses_the_cache_without_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctr.main(["--rows", "300", "--cache-dir", str(tmp_path), "--json"]) == 0
    out = capsys.readouterr().out
    path = Path(out.splitlines()[0])
    assert path.parent == tmp_path and json.loads(out.split("\n", 2)[2])["sha256"] == _sha(path)


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--rows", "99"], "--rows"),
        (["--rows", "abc"], "--rows"),
        ([], "--rows"),
        (["--rows", "1000", "--seed", "-1"], "--seed"),
        (["--rows", "1000", "--chunk-rows", "0"], "--chunk-rows"),
        (["--rows", "1000", "--out", "."], "directory"),
        (["--rows", "1000", "--out", "a.parquet", "--cache-dir", "c"], "--cache-dir"),
        (["--rows", "1000", "--colour"], "--colour"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(args: list[str], word: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        ctr.main(args)
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and word in captured.err and "error" in captured.err


def test_cli_as_module(tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "lrsweep.datasets.ctr", "--rows", "5", "--out", str(tmp_path / "t.parquet")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "python -m lrsweep.datasets.ctr: error: --rows must be between 100 and 2**40 (got 5)"
    ]
    assert list(tmp_path.iterdir()) == []
