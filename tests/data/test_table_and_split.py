"""lrsweep.data: reading, validating and splitting tables; every bad input is a LrsweepError."""

from __future__ import annotations

import gzip
import hashlib
import logging

import numpy as np
import pandas as pd
import pytest

from lrsweep.config import CVConfig, DatasetConfig, SplitConfig
from lrsweep.data import bundled_path, cv_folds, load_table, open_data, split_table
from lrsweep.errors import LrsweepError

SEED = 5
N = 200
TELCO_SHA256 = "863e369c3a03cea2bd20d696e572eb5fb064e04657744504deb7b6249b92f66e"


def make_frame(n: int = N, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    income = np.round(rng.normal(50, 15, n), 2)
    plan = rng.choice(["basic", "plus", "pro"], n)
    logit = 0.04 * (age - 50) + 0.8 * (plan == "pro") - 1.0
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "age": age,
            "income": income,
            "plan": plan,
            "region": rng.choice(["north", "south", None], n),
            "outcome": np.where(y, "yes", "no"),
        }
    )


def ds(path, **kw) -> DatasetConfig:
    base = {"name": None, "path": str(path), "target": "outcome", "positive": None}
    return DatasetConfig(**(base | kw))


def write_csv(tmp_path, df: pd.DataFrame, name: str = "data.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def raises(cfg: DatasetConfig, *needles: str) -> LrsweepError:
    with pytest.raises(LrsweepError) as info:
        load_table(cfg)
    text = str(info.value)
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text!r}"
    return info.value


# -- reading ----------------------------------------------------------------------------------------------
def test_csv_loads_with_detected_columns_and_fingerprint(tmp_path):
    df = make_frame()
    p = write_csv(tmp_path, df)
    t = load_table(ds(p))
    np.testing.assert_array_equal(t.y, (df["outcome"] == "yes").to_numpy().astype(int))
    assert t.positive == "yes" and t.target == "outcome"
    assert t.numeric == ["age", "income"] and t.categorical == ["plan", "region"]
    assert list(t.X.columns) == t.features and len(t.X) == N
    assert t.dropped == {}
    np.testing.assert_allclose(t.X["income"], df["income"])
    # categorical levels as text, missing kept missing
    assert t.X["region"].isna().sum() == df["region"].isna().sum() > 0
    assert set(t.X["region"].dropna()) == {"north", "south"}
    fp = t.fingerprint
    assert fp["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert fp["rows"] == N and fp["columns"] == df.shape[1] and fp["source"] == str(p)
    assert fp["positive_rate"] == pytest.approx((df["outcome"] == "yes").mean())


def test_parquet_file_and_folder_load_the_same_table(tmp_path):
    df = make_frame()
    csv = load_table(ds(write_csv(tmp_path, df)))
    one = tmp_path / "data.parquet"
    df.to_parquet(one, index=False)
    t1 = load_table(ds(one))
    folder = tmp_path / "parts"
    folder.mkdir()
    df.iloc[:120].to_parquet(folder / "part-0.parquet", index=False)
    df.iloc[120:].to_parquet(folder / "part-1.parquet", index=False)
    t2 = load_table(ds(folder))
    for t in (t1, t2):
        np.testing.assert_array_equal(t.y, csv.y)
        assert t.numeric == csv.numeric and t.categorical == csv.categorical
        pd.testing.assert_frame_equal(t.X.reset_index(drop=True), csv.X, check_dtype=False)
    want = hashlib.sha256((folder / "part-0.parquet").read_bytes() + (folder / "part-1.parquet").read_bytes())
    assert t2.fingerprint["sha256"] == want.hexdigest()


def test_format_override_reads_a_csv_with_another_extension(tmp_path):
    p = write_csv(tmp_path, make_frame(), "data.txt")
    assert len(load_table(ds(p, format="csv")).X) == N
    raises(ds(p, format="parquet"), "cannot read", "parquet")


def test_missing_file(tmp_path):
    raises(ds(tmp_path / "nope.csv"), "nope.csv", "does not exist", "dataset.path")


def test_folder_without_parquet_files(tmp_path):
    (tmp_path / "empty_dir").mkdir()
    raises(ds(tmp_path / "empty_dir"), "no Parquet files")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_bytes(b"")
    raises(ds(p), "empty")


def test_header_only_file(tmp_path):
    p = tmp_path / "header.csv"
    p.write_text("age,outcome\n")
    raises(ds(p), "no rows")


def test_binary_garbage_as_parquet(tmp_path):
    p = tmp_path / "garbage.parquet"
    p.write_bytes(np.random.default_rng(SEED).bytes(2048))
    raises(ds(p), "cannot read", "garbage.parquet", "parquet")


def test_binary_garbage_as_csv(tmp_path):
    p = tmp_path / "garbage.csv"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + np.random.default_rng(SEED).bytes(2048))
    raises(ds(p), "cannot read", "garbage.csv")


# -- the target -------------------------------------------------------------------------------------------
def test_target_column_missing(tmp_path):
    p = write_csv(tmp_path, make_frame())
    err = raises(ds(p, target="churned"), "'churned'", "dataset.target")
    assert "age" in str(err)  # the columns that exist are listed


def test_one_class_target(tmp_path):
    df = make_frame()
    df["outcome"] = "no"
    raises(ds(write_csv(tmp_path, df)), "single class", "'no'")


def test_a_multi_class_target_without_a_positive_class_is_read_as_class_codes(tmp_path):
    """Issue 14: more than two classes and no dataset.positive: y holds the codes 0..K-1 of the sorted labels,
    the fingerprint records them (with each class's rows)."""
    df = make_frame()
    df.loc[:20, "outcome"] = "maybe"
    table, _ = open_data(ds(write_csv(tmp_path, df)), SplitConfig(), CVConfig(), 3).pandas()
    assert table.classes == ["maybe", "no", "yes"]
    assert np.array_equal(np.asarray(table.classes, dtype=object)[table.y], df["outcome"].to_numpy())
    counts = df["outcome"].value_counts().to_dict()
    assert table.fingerprint["labels"] == ["maybe", "no", "yes"] and table.fingerprint["classes"] == 3
    assert table.fingerprint["class_rows"] == counts and "positive_rate" not in table.fingerprint


def test_numeric_class_labels_are_ordered_by_value(tmp_path):
    df = make_frame()
    df["outcome"] = np.resize([1, 2, 10], len(df))
    assert load_table(ds(write_csv(tmp_path, df))).classes == ["1", "2", "10"]


def test_more_classes_than_the_limit_or_a_class_too_small_to_split_is_one_clear_error(tmp_path):
    df = make_frame()
    df["outcome"] = np.resize(list("abcde"), len(df))
    path = write_csv(tmp_path, df)
    err = raises(ds(path, max_classes=4), "has 5 classes", "more than dataset.max_classes=4")
    assert "dataset.positive=LEVEL" in err.fix
    assert load_table(ds(path, max_classes=5)).classes == list("abcde")
    df.loc[0, "outcome"] = "lonely"
    raises(ds(write_csv(tmp_path, df)), "class 'lonely'", "has 1 row(s)", "too few for train, validation and test")


def test_every_class_must_reach_every_part_of_the_split():
    y = np.array([0, 1] * 28 + [2] * 3)  # three rows of class 2 in 59: stratification leaves test without one
    with pytest.raises(LrsweepError, match="class 'r' has no rows in the test part"):
        split_table(y, SplitConfig(), CVConfig(), 42, ["p", "q", "r"])
    y = np.array([0, 1] * 28 + [2] * 5)
    s = split_table(y, SplitConfig(), CVConfig(), 42, ["p", "q", "r"])
    assert all(set(y[part]) == {0, 1, 2} for part in (s.train, s.val, s.test))
    only_in_test = np.array([0, 1, 0, 1, 2, 2])
    from lrsweep.data.split import check_every_class

    with pytest.raises(LrsweepError, match="class 'r' has no rows in the train part"):
        check_every_class(np.bincount(only_in_test[:4], minlength=3), "the train part", ["p", "q", "r"])


def test_a_positive_class_of_a_multi_class_target_is_fitted_against_the_rest(tmp_path, caplog):
    """Issue 14: dataset.positive=LEVEL on a target of more than two classes: LEVEL is 1, every other class 0,
    the negative label reads 'not LEVEL', and one line names the rest with their counts (so a stray value in a
    yes/no column is seen, not silently counted as a no)."""
    df = make_frame()
    df["tier"] = np.array(["gold", "silver", "bronze", "silver"])[np.arange(len(df)) % 4]
    df.loc[:2, "tier"] = "maybe"
    caplog.set_level(logging.WARNING, logger="lrsweep")
    t = load_table(ds(write_csv(tmp_path, df.drop(columns="outcome")), target="tier", positive="silver"))
    np.testing.assert_array_equal(t.y, (df["tier"] == "silver").to_numpy().astype(int))
    assert (t.negative, t.positive) == ("not silver", "silver")
    assert t.fingerprint["labels"] == ["not silver", "silver"] and t.fingerprint["classes"] == 4
    (line,) = [r.getMessage() for r in caplog.records if "against the rest" in r.getMessage()]
    n = df["tier"].value_counts()
    assert f"target 'tier' has 4 classes: fitting 'silver' ({n['silver']:,} rows) against the rest" in line
    assert f"'bronze' {n['bronze']:,}" in line and "'maybe' 3" in line and "'gold'" in line
    binary = load_table(ds(write_csv(tmp_path, make_frame(), "two.csv"), positive="yes"))
    assert "classes" not in binary.fingerprint and binary.negative == "no"  # two classes: as before


def test_positive_label_not_present(tmp_path):
    err = raises(ds(write_csv(tmp_path, make_frame()), positive="Yes"), "'Yes'", "dataset.positive")
    assert "'yes'" in str(err) and "'no'" in str(err)


def test_positive_label_inferred_or_refused(tmp_path):
    df = make_frame()
    df["outcome"] = np.where(df["outcome"] == "yes", "cat", "dog")
    raises(ds(write_csv(tmp_path, df)), "cannot tell", "dataset.positive")
    t = load_table(ds(write_csv(tmp_path, df, "b.csv"), positive="cat"))
    np.testing.assert_array_equal(t.y, (df["outcome"] == "cat").to_numpy().astype(int))


def test_numeric_target_with_missing_values(tmp_path, caplog):
    df = make_frame()
    y = (df["outcome"] == "yes").astype(float)
    y[[3, 10, 50]] = np.nan  # a float column: labels read back as "0.0" / "1.0"
    df["outcome"] = y
    p = write_csv(tmp_path, df)
    with caplog.at_level(logging.WARNING, logger="lrsweep"):
        t = load_table(ds(p, positive="1"))
    assert "dropped 3 rows" in caplog.text
    assert len(t.y) == N - 3
    np.testing.assert_array_equal(t.y, y.dropna().to_numpy().astype(int))
    # inferred too: 0/1 is a known pair
    np.testing.assert_array_equal(load_table(ds(p)).y, t.y)


def test_empty_target_column(tmp_path):
    df = make_frame()
    df["outcome"] = np.nan
    raises(ds(write_csv(tmp_path, df)), "'outcome'", "empty")


# -- feature columns --------------------------------------------------------------------------------------
def test_all_missing_and_constant_columns_are_dropped_with_a_warning(tmp_path, caplog):
    df = make_frame()
    df["blank"] = np.nan
    df["same"] = 3
    df["same_text"] = "x"
    with caplog.at_level(logging.WARNING, logger="lrsweep"):
        t = load_table(ds(write_csv(tmp_path, df)))
    assert t.dropped == {"blank": "all values missing", "same": "constant", "same_text": "constant"}
    assert not {"blank", "same", "same_text"} & set(t.X.columns)
    for col in ("blank", "same", "same_text"):
        assert any(col in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records), col


def test_infinite_numbers_are_missing_values_with_one_warning_naming_the_columns(tmp_path, caplog):
    """inf / -inf in a numeric feature (a CSV's 'inf') is imputed like NaN, not a traceback (issue 12)."""
    df = make_frame().astype({"age": float})
    df.loc[[1, 4], "income"] = [np.inf, -np.inf]
    df.loc[7, "age"] = np.inf
    with caplog.at_level(logging.WARNING, logger="lrsweep"):
        t = load_table(ds(write_csv(tmp_path, df)))
    assert not np.isinf(t.X[["income", "age"]].to_numpy()).any()
    assert (t.X["income"].isna().sum(), t.X["age"].isna().sum()) == (2, 1)
    (line,) = [r.getMessage() for r in caplog.records if "infinite" in r.getMessage()]
    assert line == "treated 3 infinite value(s) as missing in 'age' (1), 'income' (2)"


def test_a_numeric_column_with_a_few_stray_text_values_stays_numeric_with_one_warning(tmp_path, caplog):
    """One '?' and two blanks in 400 numbers: not a categorical with a level per number (issue 12)."""
    df = make_frame().astype({"income": object})
    df.loc[[3, 9], "income"] = " "
    df.loc[20, "income"] = "?"
    with caplog.at_level(logging.WARNING, logger="lrsweep"):
        t = load_table(ds(write_csv(tmp_path, df)))
    assert "income" in t.numeric and t.X["income"].isna().sum() == 3
    (line,) = [r.getMessage() for r in caplog.records if "'income'" in r.getMessage()]
    assert line.startswith("column 'income' is numeric but for 3 value(s) like ' ', '?': read as missing")
    kept = load_table(ds(write_csv(tmp_path, df), categorical=["income", "plan", "region"]))
    assert "income" in kept.categorical  # named by the config: left as it is


def test_a_coded_text_column_is_not_taken_for_numbers(tmp_path):
    df = make_frame()
    df["grade"] = np.where(np.arange(len(df)) % 50 == 0, "x", np.arange(len(df)) % 3).astype(str)  # 3 codes
    t = load_table(ds(write_csv(tmp_path, df)))
    assert "grade" in t.categorical  # few distinct numbers: a category, not a measurement


@pytest.mark.parametrize(("sep", "name"), [(";", "eu.csv"), ("\t", "data.tsv"), ("|", "pipes.csv.gz")])
def test_a_csv_with_another_separator_is_sniffed(tmp_path, sep, name):
    """Not comma-separated (issue 12): the separator is sniffed from the first lines, compressed files too."""
    df = make_frame()
    path = tmp_path / name
    df.to_csv(path, index=False, sep=sep)
    t = load_table(ds(path))
    assert t.numeric == ["age", "income"] and t.categorical == ["plan", "region"] and len(t.X) == len(df)
    assert t.X["income"].tolist() == pytest.approx(df["income"].tolist())


def test_dataset_sep_is_used_as_given(tmp_path):
    path = tmp_path / "odd.csv"
    make_frame().to_csv(path, index=False, sep=";")
    with pytest.raises(LrsweepError, match="target column 'outcome' is not in"):
        load_table(ds(path, sep=","))  # told to split on commas: one column
    assert len(load_table(ds(path, sep=";")).X.columns) == 4


def test_a_csv_that_is_not_utf8_names_dataset_encoding_and_reads_with_it(tmp_path):
    df = make_frame()
    df["plan"] = df["plan"].map({"basic": "basique", "plus": "forfait élevé", "pro": "pro"})
    path = tmp_path / "latin.csv"
    df.to_csv(path, index=False, encoding="latin-1")
    err = raises(ds(path), "is not utf-8 text", "dataset.encoding=latin-1")
    assert "\n" not in err.line()
    t = load_table(ds(path, encoding="latin-1"))
    assert "forfait élevé" in set(t.X["plan"])


def test_a_byte_order_mark_does_not_reach_the_first_column_name(tmp_path):
    path = tmp_path / "bom.csv"
    make_frame().to_csv(path, index=False, encoding="utf-8-sig")
    assert load_table(ds(path)).numeric == ["age", "income"]  # not '\ufeffage'


@pytest.mark.parametrize(
    ("kw", "said"), [({"sep": ";;"}, "must be one character"), ({"encoding": "utf-99"}, "not an encoding Python knows")]
)
def test_impossible_sep_or_encoding_is_refused(tmp_path, kw, said):
    with pytest.raises(LrsweepError, match=said):
        ds(tmp_path / "x.csv", **kw).check()


def test_a_header_that_names_a_column_twice_is_refused(tmp_path):
    path = tmp_path / "dup.csv"
    make_frame().rename(columns={"region": "age"}).to_csv(path, index=False)
    raises(ds(path), "names column 'age' 2 times (columns [1, 4])", "give every column its own name")
    legit = tmp_path / "dots.csv"  # a name that only looks renamed ('x.1' without an 'x' ... and with one)
    make_frame().rename(columns={"region": "age.1"}).to_csv(legit, index=False)
    assert "age.1" in load_table(ds(legit)).categorical


def test_a_categorical_with_thousands_of_levels_gets_a_warning_offering_the_hashed_fix(tmp_path, caplog):
    df = make_frame(3000)
    df["street"] = [f"s{i % 1500}" for i in range(len(df))]  # 1,500 levels, each twice: not an id
    with caplog.at_level(logging.WARNING, logger="lrsweep"):
        t = load_table(ds(write_csv(tmp_path, df)))
    assert "street" in t.categorical
    (line,) = [r.getMessage() for r in caplog.records if "one-hot" in r.getMessage()]
    assert line.startswith("one-hot encoding 'street' (1,500 levels)") and "dataset.hashed=[street]" in line
    with caplog.at_level(logging.WARNING, logger="lrsweep"):
        caplog.clear()
        load_table(ds(write_csv(tmp_path, df), hashed=["street"]))
    assert not [r for r in caplog.records if "one-hot" in r.getMessage()]


def test_many_constant_columns_are_one_warning_line(tmp_path, caplog):
    df = make_frame()
    for i in range(50):
        df[f"c{i:02d}"] = 7
    with caplog.at_level(logging.WARNING, logger="lrsweep"):
        load_table(ds(write_csv(tmp_path, df)))
    (line,) = [r.getMessage() for r in caplog.records if "constant" in r.getMessage()]
    assert line.startswith("dropped 50 columns 'c00', 'c01'") and "and 42 more: constant" in line


def test_id_like_text_column_is_dropped_with_a_warning(tmp_path, caplog):
    df = make_frame()
    df.insert(0, "customer", [f"C-{i:05d}" for i in range(N)])
    with caplog.at_level(logging.WARNING, logger="lrsweep"):
        t = load_table(ds(write_csv(tmp_path, df)))
    assert "customer" in t.dropped and "id" in t.dropped["customer"]
    assert "customer" not in t.X.columns
    assert "customer" in caplog.text


def test_declared_drop_and_id_columns(tmp_path):
    df = make_frame()
    df["row"] = np.arange(N)
    t = load_table(ds(write_csv(tmp_path, df), drop=["income"], id_columns=["row"]))
    assert "income" not in t.X.columns and "row" not in t.X.columns
    assert set(t.dropped) == {"income", "row"}
    raises(ds(write_csv(tmp_path, df, "b.csv"), drop=["incom"]), "'incom'", "dataset.drop")


def test_explicit_categorical_list(tmp_path):
    df = make_frame()
    p = write_csv(tmp_path, df)
    t = load_table(ds(p, categorical=["age", "plan", "region"]))
    assert t.numeric == ["income"]
    assert t.categorical == ["age", "plan", "region"]
    assert set(t.X["age"]) == {str(v) for v in df["age"]}  # numbers become levels
    # a text column left out of the list cannot be used as a number
    raises(ds(p, categorical=["age"]), "'plan'", "dataset.categorical")
    raises(ds(p, categorical=["nope"]), "'nope'")


def test_nothing_left_to_fit(tmp_path):
    df = make_frame()[["outcome"]].assign(k=1)
    raises(ds(write_csv(tmp_path, df)), "no usable feature")


# -- the bundled data -------------------------------------------------------------------------------------
def test_bundled_telco_churn():
    t = load_table(DatasetConfig())
    assert len(t.y) == len(t.X) == 7043
    assert t.y.mean() == pytest.approx(0.265, abs=0.001)
    assert t.fingerprint["sha256"] == TELCO_SHA256
    # the fingerprint is the SHA-256 of the CSV inside the archive
    with gzip.open(bundled_path("telco_churn"), "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == TELCO_SHA256
    assert t.fingerprint["source"] == "bundled" and t.positive == "Yes"


def test_unknown_bundled_dataset():
    with pytest.raises(LrsweepError, match="no bundled dataset"):
        load_table(DatasetConfig(name="nope"))


# -- splits -----------------------------------------------------------------------------------------------
def _labels(n_pos: int, n: int = N, seed: int = SEED) -> np.ndarray:
    y = np.zeros(n, dtype=np.int8)
    y[np.random.default_rng(seed).choice(n, n_pos, replace=False)] = 1
    return y


@pytest.mark.parametrize(("val", "test"), [(0.2, 0.2), (0.1, 0.3), (0.25, 0.15)])
def test_split_is_stratified_disjoint_and_complete(val, test):
    y = _labels(60)
    s = split_table(y, SplitConfig(val_size=val, test_size=test), CVConfig(), seed=SEED)
    parts = {"train": s.train, "val": s.val, "test": s.test}
    allpos = np.concatenate(list(parts.values()))
    assert len(allpos) == len(set(allpos.tolist())) == N  # disjoint and complete
    np.testing.assert_array_equal(np.sort(allpos), np.arange(N))
    assert len(s.test) == pytest.approx(test * N, abs=1)
    assert len(s.val) == pytest.approx(val * N, abs=1)
    for name, pos in parts.items():
        # stratified: each part's positives are its share of all positives, to within a row
        assert y[pos].sum() == pytest.approx(len(pos) * y.mean(), abs=1), name
    assert s.folds == []
    np.testing.assert_array_equal(np.sort(s.trainval), np.sort(np.concatenate([s.train, s.val])))


def test_split_is_reproducible_with_the_same_seed():
    y = _labels(60)
    a = split_table(y, SplitConfig(), CVConfig(folds=3), seed=SEED)
    b = split_table(y, SplitConfig(), CVConfig(folds=3), seed=SEED)
    c = split_table(y, SplitConfig(), CVConfig(), seed=SEED + 1)
    for x, z in ((a.train, b.train), (a.val, b.val), (a.test, b.test)):
        np.testing.assert_array_equal(x, z)
    for (f1, s1), (f2, s2) in zip(a.folds, b.folds, strict=True):
        np.testing.assert_array_equal(f1, f2)
        np.testing.assert_array_equal(s1, s2)
    assert not np.array_equal(a.test, c.test)


@pytest.mark.parametrize("k", [2, 5])
def test_cv_folds_partition_train_and_validation(k):
    y = _labels(60)
    s = split_table(y, SplitConfig(), CVConfig(folds=k), seed=SEED)
    assert len(s.folds) == k
    tv = set(s.trainval.tolist())
    scored = []
    for fit, score in s.folds:
        assert not set(fit.tolist()) & set(score.tolist())
        assert set(fit.tolist()) | set(score.tolist()) == tv
        assert not set(score.tolist()) & set(s.test.tolist())
        assert y[score].sum() == pytest.approx(len(score) * y[s.trainval].mean(), abs=1)
        scored += score.tolist()
    assert sorted(scored) == sorted(tv)  # each row scored exactly once


def test_tiny_minority_cannot_be_split():
    with pytest.raises(LrsweepError, match="minority class has 2 row"):
        split_table(_labels(2), SplitConfig(), CVConfig(), seed=SEED)
    # three positives over 80/10/10: the smaller parts expect 0.3 positives each, one of them gets none
    for seed in range(3):
        with pytest.raises(LrsweepError, match=r"(validation|test) part has only one class"):
            split_table(_labels(3, seed=seed), SplitConfig(val_size=0.1, test_size=0.1), CVConfig(), seed=seed)


def test_split_leaves_every_part_with_both_classes_when_it_succeeds():
    for n_pos in range(4, 12):
        for seed in range(3):
            y = _labels(n_pos, seed=seed)
            try:
                s = split_table(y, SplitConfig(), CVConfig(), seed=seed)
            except LrsweepError as exc:
                assert "class" in str(exc) or "cannot split" in str(exc)
                continue
            for pos in (s.train, s.val, s.test):
                assert 0 < y[pos].sum() < len(pos)


def test_more_folds_than_minority_rows():
    y = _labels(8)
    with pytest.raises(LrsweepError, match="cv.folds"):
        cv_folds(y, np.arange(N), 10, SEED)
    with pytest.raises(LrsweepError, match="cv.folds"):
        split_table(y, SplitConfig(), CVConfig(folds=7), seed=SEED)


# -- generated CTR tables and hashed columns ----------------------------------------------------------------
def ctr_config(**kw) -> DatasetConfig:
    from lrsweep.datasets.ctr import FEATURE_COLUMNS

    cols = list(FEATURE_COLUMNS)
    base = dict(
        name="ctr", source="generated", generator="ctr", rows=500, target="click", positive="1", drop=["hour"],
        categorical=cols, hashed=cols,
    )  # fmt: skip
    return DatasetConfig(**(base | kw))


def test_dataset_ctr_generates_once_and_reads_hour_of_day(tmp_path, monkeypatch):
    from lrsweep.datasets.ctr import CATEGORICAL_COLUMNS, read_meta

    monkeypatch.setenv("LRSWEEP_CACHE", str(tmp_path))
    table = load_table(ctr_config())
    files = list((tmp_path / "ctr").glob("ctr-r500-s0-*.parquet"))
    assert len(files) == 1  # cached under the cache dir, keyed by (rows, seed)
    meta = read_meta(files[0])
    assert len(table.y) == 500 and table.hashed == [*CATEGORICAL_COLUMNS, "hour_of_day"]
    assert table.categorical == [] and table.numeric == [] and "hour" not in table.X.columns
    raw = pd.read_parquet(files[0])
    assert (table.X["hour_of_day"] == (raw["hour"] % 100).astype(str)).all()  # derived, as text like the others
    assert (table.X["C1"] == raw["C1"].astype(str)).all()
    generated = table.fingerprint["generated"]
    assert generated["params"]["seed"] == 0 and generated["bayes_log_loss"] == pytest.approx(meta["bayes_log_loss"])
    again = load_table(ctr_config())  # the second read does not generate
    assert files[0].stat().st_mtime_ns == next((tmp_path / "ctr").glob("*.parquet")).stat().st_mtime_ns
    pd.testing.assert_frame_equal(again.X, table.X)


def test_rows_only_apply_to_generated_tables(tmp_path):
    path = tmp_path / "t.csv"
    make_frame().to_csv(path, index=False)
    with pytest.raises(LrsweepError, match=r"dataset.rows only applies to a generated table"):
        load_table(ds(path, rows=1000))


def test_hashed_columns_are_categorical_text_kept_apart(tmp_path):
    path = tmp_path / "t.csv"
    df = make_frame()
    df.to_csv(path, index=False)
    table = load_table(ds(path, hashed=["plan", "age"]))
    assert table.hashed == ["age", "plan"] and "plan" not in table.categorical and "age" not in table.numeric
    assert table.X["age"].map(type).eq(str).all()  # ints as their decimal text, as Spark casts them
    with pytest.raises(LrsweepError, match=r"'nope'.*not in the data"):
        load_table(ds(path, hashed=["nope"]))
