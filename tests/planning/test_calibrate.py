"""Calibration: the cache (a second call reads it and starts no Spark; other data misses it), what the runs
are asked to measure, the identity of data and hardware, and one real small calibration on telco churn."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lrsweep.backends.spark import SparkConfig
from lrsweep.config import Config, DatasetConfig, FloatRange, SearchConfig
from lrsweep.data.source import bundled_path
from lrsweep.errors import LrsweepError
from lrsweep.planning import calibrate as calmod
from lrsweep.planning.calibrate import (
    Calibration,
    CalibrationConfig,
    _setup_seconds,
    cache_key,
    calibrate,
    calibration_configs,
    fingerprint,
    full_rows,
    hardware,
    parts_of,
)
from lrsweep.space import ModelParams
from tests.planning import synthetic_calibration

CTR = DatasetConfig(
    name="ctr", source="generated", generator="ctr", rows=1_000_000, target="click", positive="1", drop=["hour"],
    categorical=["site_id", "C1"], hashed=["site_id", "C1"],
)  # fmt: skip


def spark_cfg(tmp_path: Path, dataset: DatasetConfig | None = None, **knobs: Any) -> Config:
    cfg = Config(backend=SparkConfig(), dataset=dataset or DatasetConfig())
    cfg.plan.calibration = CalibrationConfig(cache_dir=str(tmp_path / "cache"), **knobs)
    return cfg


@pytest.fixture
def no_spark(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Calibration runs refused: any attempt to measure is recorded and fails the call."""
    attempts: list[dict[str, Any]] = []

    def refuse(spec: dict[str, Any], *_: object) -> dict[str, Any]:
        attempts.append(spec)
        raise RuntimeError("a calibration run was started")

    monkeypatch.setattr(calmod, "_spawn", refuse)
    return attempts


def seed_cache(cfg: Config) -> Path:
    """Write a calibration where calibrate() looks for cfg's."""
    cal = synthetic_calibration(rows=full_rows(cfg))
    key = cache_key(cfg, fingerprint(cfg.dataset), hardware())
    path = Path(cfg.plan.calibration.cache_dir) / f"{cfg.dataset.label}-{key}.json"
    path.parent.mkdir(parents=True)
    cal.key = key
    path.write_text(json.dumps(cal.to_dict()))
    return path


def test_a_second_call_hits_the_cache_without_starting_spark(tmp_path: Path, no_spark: list[Any]) -> None:
    cfg = spark_cfg(tmp_path, CTR)
    path = seed_cache(cfg)
    cal = calibrate(cfg)
    assert cal.cache_hit and cal.cache_file == str(path)
    assert no_spark == []
    assert any("cache hit" in line and str(path) in line for line in cal.evidence())
    p = ModelParams(1.0, 0.0, "l2", None, "none", 300, 1e-4)
    assert cal.trial(p, rows=cal.rows, cores=4).mid > 0


def test_other_data_misses_the_cache(tmp_path: Path, no_spark: list[Any]) -> None:
    cfg = spark_cfg(tmp_path, CTR)
    seed_cache(cfg)
    other = spark_cfg(tmp_path, dataclasses.replace(CTR, rows=2_000_000))
    assert fingerprint(other.dataset) != fingerprint(cfg.dataset)
    with pytest.raises(RuntimeError, match="calibration run was started"):
        calibrate(other)
    assert no_spark and no_spark[0]["cores"] == 1  # it went on to measure, one core first


def test_knobs_that_change_measurements_change_the_key_others_do_not(tmp_path: Path) -> None:
    cfg = spark_cfg(tmp_path, CTR)
    key = cache_key(cfg, "data", {"cpu": "x"})
    assert cache_key(cfg, "other data", {"cpu": "x"}) != key
    assert cache_key(cfg, "data", {"cpu": "y"}) != key
    more = spark_cfg(tmp_path, CTR, configs=9)
    assert cache_key(more, "data", {"cpu": "x"}) != key
    elsewhere = spark_cfg(tmp_path / "elsewhere", CTR)
    assert cache_key(elsewhere, "data", {"cpu": "x"}) == key  # where the cache lives is not what it measured
    trials = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, n_trials=999))
    assert cache_key(trials, "data", {"cpu": "x"}) == key
    # a sweep with successive halving or several trials at once is predicted from the same measurements
    halving = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, fidelity="halving", eta=4, n_jobs=2))
    assert cache_key(halving, "data", {"cpu": "x"}) == key
    weaker = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, max_iter=30))
    assert cache_key(weaker, "data", {"cpu": "x"}) != key  # the fits' iteration cap is measured


def test_a_changed_file_changes_the_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": [1, 2, 3, 4], "y": ["a", "b", "a", "b"]}).to_csv(path, index=False)
    ds = DatasetConfig(name="t", path=str(path), target="y", positive="a")
    before = fingerprint(ds)
    pd.DataFrame({"x": [1, 2, 3, 5], "y": ["a", "b", "a", "b"]}).to_csv(path, index=False)
    assert fingerprint(ds) != before
    assert fingerprint(dataclasses.replace(ds, drop=["x"])) != fingerprint(ds)  # other features, other runs


def test_full_rows_cheaply(tmp_path: Path) -> None:
    cfg = Config(backend=SparkConfig())
    assert full_rows(cfg) == len(pd.read_csv(bundled_path("telco_churn")))
    frame = pd.DataFrame({"x": range(1234), "y": [i % 2 for i in range(1234)]})
    frame.to_parquet(tmp_path / "t.parquet")
    frame.to_csv(tmp_path / "t.csv", index=False)
    for name in ("t.parquet", "t.csv"):
        ds = DatasetConfig(name="t", path=str(tmp_path / name), target="y", positive="1")
        assert full_rows(Config(backend=SparkConfig(), dataset=ds)) == 1234
    assert full_rows(Config(backend=SparkConfig(), dataset=CTR)) == 1_000_000  # not generated to count it


def test_round_trip_predicts_the_same() -> None:
    cal = synthetic_calibration()
    again = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    p = ModelParams(3.0, 0.5, "elasticnet", None, "balanced", 300, 1e-4)
    assert again.trial(p, rows=cal.rows, cores=8) == cal.trial(p, rows=cal.rows, cores=8)
    assert again.setup(rows=cal.rows, cores=8) == cal.setup(rows=cal.rows, cores=8)
    assert again.refit(p, rows=cal.rows, cores=8) == cal.refit(p, rows=cal.rows, cores=8)


def test_a_refits_fixed_part_is_not_grown_with_the_rows() -> None:
    """Beyond its fit and test scoring a refit has a fixed part (a generated table's true model scored by Python
    workers, the coefficient table, the input example) and a per-row part (preprocessing train+validation again):
    the plan adds to what the sample's refit took the warm setup's seconds for the rows beyond the sample's, so
    a second more of fixed cost on the sample is a second more at any size (it was grown in proportion with the
    setup: CTR 10^6's refit 77 s predicted for 33 s measured)."""
    cal = synthetic_calibration()
    p = ModelParams(10.0, 0.0, "l2", None, "none", 300, 1e-4)

    def with_extra(seconds: float) -> Calibration:
        c = Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
        c.refit_runs = [dataclasses.replace(r, seconds=r.seconds + seconds) for r in c.refit_runs]
        c.fit_models()
        return c

    for rows in (cal.rows, 10 * cal.rows):
        base = cal.refit(p, rows=rows, cores=8).mid
        assert with_extra(5.0).refit(p, rows=rows, cores=8).mid - base == pytest.approx(5.0)
    # the per-row part: as much more as the warm setup takes for the rows added

    def extra(rows: int) -> float:
        part = parts_of(rows, 0.2, 0.2, 1)
        return cal.refit(p, rows=rows, cores=8).mid - cal.fold_seconds(p, part.n_trval, part.n_test, 8)[0]

    setup_more = _setup_seconds(cal.data_model, 10 * cal.rows, 8, cold=False) - _setup_seconds(
        cal.data_model, cal.rows, 8, cold=False
    )
    assert setup_more > 0 and extra(10 * cal.rows) - extra(cal.rows) == pytest.approx(setup_more)
    assert any("ASSUMPTION: the rest is fixed" in line for line in cal.evidence())


def test_evidence_states_the_speed_assumption_and_the_fit() -> None:
    lines = synthetic_calibration().evidence()
    assert any(line.startswith("ASSUMPTION") and "speed" in line for line in lines)
    assert any("rms residual" in line for line in lines)
    assert any("measured now" in line for line in lines)


def test_calibration_configs_cover_the_search_space(tmp_path: Path) -> None:
    cfg = spark_cfg(tmp_path)
    cfg.search = dataclasses.replace(cfg.search, penalties=["l2", "l1", "elasticnet"])
    picks = calibration_configs(cfg, 6)
    assert len(picks) == 6
    Cs = sorted(p.C for p in picks)
    # the weakest and strongest regularisation the space draws are both measured (C log-uniform over 1e-4..1e2)
    assert Cs[0] < 3 * cfg.search.C.low and Cs[-1] > cfg.search.C.high / 3
    assert {p.l1_ratio > 0 for p in picks} == {True, False}
    with_none = calibration_configs(spark_cfg(tmp_path), 6)
    assert any(math.isinf(p.C) for p in with_none)  # penalty none (C = inf) is the weakest of all
    l2 = dataclasses.replace(cfg, search=dataclasses.replace(SearchConfig(), penalties=["l2"], C=FloatRange(1e-2, 1.0)))
    assert all(p.l1_ratio == 0 and 1e-2 <= p.C <= 1.0 for p in calibration_configs(l2, 4))


def test_the_runs_are_fitted_at_the_full_tables_regularisation(tmp_path: Path) -> None:
    """C * n_full / n_sample, capped iterations, partitions and curves as the full table gets them."""
    cfg = spark_cfg(tmp_path, CTR, fractions=2)
    rows = full_rows(cfg)
    configs = calibration_configs(cfg, 4)
    samples = calmod._samples(cfg, calmod._fractions(cfg.plan.calibration, rows), rows, tmp_path)
    assert [s.rows for s in samples] == [33_333, 100_000]
    specs = calmod._spec(cfg, rows, samples, configs)
    assert [s["cores"] for s in specs] == [1, 2]
    top = next(p for p in specs[1]["points"] if p["rows"] == 100_000)
    assert len(top["fits"]) == 4
    for (fitted, target), chosen in zip(top["fits"], configs, strict=True):
        assert target == chosen.C
        assert fitted["C"] == pytest.approx(chosen.C * 10) or math.isinf(chosen.C)
        assert fitted["max_iter"] == min(cfg.search.max_iter, cfg.plan.calibration.max_iter)
    # the full table's fitting part has 6 partitions of 100k rows: the sample keeps 6 (of 10k rows)
    assert top["backend"]["rows_per_partition"] == 10_000
    # its held-out part (200k rows) gets a binned curve: so does the sample's
    assert top["backend"]["exact_max_rows"] == 0
    assert top["dataset"]["rows"] == 100_000 and top["dataset"]["seed"] == CTR.seed
    others = [p for s in specs for p in s["points"] if p is not top]
    assert others and all(len(p["fits"]) == cfg.plan.calibration.small_configs for p in others)
    # the refit is measured on the largest sample
    assert {p["rows"] for s in specs for p in s["points"] if p["refit"]} == {100_000}
    # every child first warms its JVM on a throwaway sample, with the cheapest (most regularised) fit
    tiny = calmod._samples(cfg, [200 / rows], rows, tmp_path)[0]
    warmed = calmod._spec(cfg, rows, samples, configs, tiny)
    assert all(s["warmup"]["rows"] == 200 for s in warmed)
    ((fitted, target),) = warmed[0]["warmup"]["fits"]
    assert target == min(p.C for p in configs)

    def drivers(specs: list[dict]) -> set[tuple[int, bool]]:
        points = [p for s in specs for p in [*s["points"], *([s["warmup"]] if "warmup" in s else [])]]
        return {(p["backend"]["quick_jit_rows"], p["backend"]["class_archive"]) for p in points}

    # every JVM of the calibration starts as the sweep's driver will, whatever a sample's (or the repeated
    # setup's) size: the full table (10**6 rows) gets C1 and C2, the 200-row warm-up sample too; local: the archive
    assert drivers(warmed) == {(0, True)}
    small = spark_cfg(tmp_path)  # telco churn: small enough for C1 alone
    n = full_rows(small)
    small_specs = calmod._spec(small, n, calmod._samples(small, [0.5], n, tmp_path), configs)
    assert drivers(small_specs) == {(sys.maxsize, True)}
    # a sweep on EMR: its driver starts with neither on a new cluster, so the calibration's JVMs do the same, and it
    # is another calibration; a standalone master's driver starts here (the archive), and the tables it does not
    # start with C1 alone share the local calibration
    emr = dataclasses.replace(small, cluster=dataclasses.replace(small.cluster, master="yarn"))
    assert drivers(calmod._spec(emr, n, calmod._samples(small, [0.5], n, tmp_path), configs)) == {(0, False)}
    assert calmod.cache_key(emr, "data", {}) != calmod.cache_key(small, "data", {})
    standalone = dataclasses.replace(cfg, cluster=dataclasses.replace(cfg.cluster, master="spark://127.0.0.1:7077"))
    assert drivers(calmod._spec(standalone, rows, samples, configs)) == {(0, True)}
    assert calmod.cache_key(standalone, "data", {}, rows) == calmod.cache_key(cfg, "data", {}, rows)


def test_setup_is_predicted_cold() -> None:
    """A sweep's setup is its fresh JVM's first work: the cold run's extra counts, the size term where shown."""
    from lrsweep.planning.calibrate import SetupRun, _setup_model, _setup_seconds

    runs = [
        SetupRun(1, "local[1]", 0.001, 200, 7.0, 12.0, cold=True),
        SetupRun(1, "local[1]", 0.03, 30_000, 0.0, 3.0 + 1e-4 * 30_000),
        SetupRun(2, "local[2]", 0.03, 30_000, 0.0, 3.0 + 1e-4 * 15_000),
        SetupRun(2, "local[2]", 0.1, 100_000, 0.0, 3.0 + 1e-4 * 50_000),
        SetupRun(2, "local[2]", 0.1, 100_000, 0.0, 9.0 + 1e-4 * 50_000),  # a repeat slowed by load: not used
    ]
    model = _setup_model(runs)
    warm_at_200 = 3.0 + 1e-4 * 200
    assert _setup_seconds(model, 200, 1) == pytest.approx(12.0, rel=0.05)  # cold: the first run's cost
    assert _setup_seconds(model, 1_000_000, 2) - _setup_seconds(model, 200, 1) == pytest.approx(
        1e-4 * (500_000 - 200), rel=0.05
    )
    assert warm_at_200 < 12.0


def test_a_cold_full_size_setup_adds_what_a_fresh_jvm_pays_per_row() -> None:
    """Law: warm 0.5 + 1e-5 rows/cores; a cold JVM adds 2.5 s and 8e-6 s a row. The samples alone (cold only at
    200 rows) cannot see the cold per-row part; with the full-size cold setup the prediction follows the law."""
    from lrsweep.planning.calibrate import SetupRun, _setup_model, _setup_seconds

    def law(rows: int, cores: int, cold: bool) -> float:
        return 0.5 + 1e-5 * rows / cores + (2.5 + 8e-6 * rows if cold else 0.0)

    samples = [
        SetupRun(c, f"local[{c}]", rows / 1e6, rows, 3.0 if cold else 0.0, law(rows, c, cold), cold=cold)
        for c in (1, 2)
        for rows, cold in ((200, True), (30_000, False), (100_000, False))
    ]
    full = SetupRun(2, "local[2]", 1.0, 1_000_000, 3.0, law(1_000_000, 2, True), cold=True)
    truth = law(1_000_000, 2, True)
    assert _setup_seconds(_setup_model(samples), 1_000_000, 2) < 0.75 * truth
    with_full = _setup_model([*samples, full])
    assert _setup_seconds(with_full, 1_000_000, 2) == pytest.approx(truth, rel=0.05)
    assert _setup_seconds(with_full, 300_000, 2) == pytest.approx(law(300_000, 2, True), rel=0.1)
    # a warm setup (the refit's preprocessing grows as it does) carries no cold part
    assert _setup_seconds(with_full, 1_000_000, 2, cold=False) == pytest.approx(law(1_000_000, 2, False), rel=0.1)


def test_file_data_is_sampled_into_a_file(tmp_path: Path) -> None:
    cfg = spark_cfg(tmp_path)
    rows = full_rows(cfg)
    (sample,) = calmod._samples(cfg, [0.1], rows, tmp_path)
    frame = pd.read_csv(sample.dataset["path"])
    assert len(frame) == sample.rows == round(0.1 * rows)
    assert sample.dataset["source"] == "file" and sample.dataset["target"] == "churn"


def test_knob_checks() -> None:
    with pytest.raises(LrsweepError, match="max_fraction"):
        CalibrationConfig(max_fraction=0.0).check()
    with pytest.raises(LrsweepError, match="cores"):
        CalibrationConfig(cores=[0]).check()
    with pytest.raises(LrsweepError, match="backend=spark"):
        calibrate(Config())


@pytest.mark.spark
@pytest.mark.slow
def test_a_real_small_calibration_on_telco(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The smallest knobs, the real SparkBackend in child processes on local[1] and local[2], while this
    process holds a local[2] session of its own (as the test suite does)."""
    pytest.importorskip("pyspark")
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    session = active or SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        # one sample, no throwaway warm-up sample, one round of probes, both children at once: the machinery, not
        # good figures
        # (the refit is measured: a configuration drawn with a multi-class mode is refitted on this binary target)
        knobs = {"fractions": 1, "configs": 2, "small_configs": 1, "refit": True, "warmup": False, "probes": 1}
        cfg = spark_cfg(tmp_path, parallel=True, budget=None, **knobs)
        cal = calibrate(cfg)
        assert session.sparkContext.master == "local[2]"  # the caller's session is untouched
    finally:
        if active is None:
            session.stop()
    assert not cal.cache_hit and Path(cal.cache_file).is_file()
    assert {s.master for s in cal.setup_runs} == {"local[1]", "local[2]"}
    assert {r.cores for r in cal.fit_runs} == {1, 2}
    sampled = [r for r in cal.fit_runs if r.repeats == 1]
    assert all(r.n_fit < 0.1 * cal.rows for r in sampled)  # at most max_fraction of the rows are read
    # each child probed its sample and the sample repeated in memory to about the full table's fitting rows
    repeated = [r for r in cal.fit_runs if r.repeats > 1]
    assert sorted(r.cores for r in repeated) == [1, 2] and all(r.probe for r in repeated)
    for r in repeated:
        (one,) = {s.n_fit for s in sampled if s.cores == r.cores and s.probe}
        assert r.n_fit == r.repeats * one and r.n_held > 0
        assert abs(r.n_fit - cal._parts(cal.rows).n_fit) <= one  # as near the full table's as whole copies get
    assert "repeated in memory to" in " ".join(cal.evidence())
    # a child of its own prepared the largest sample written over and over to about the full table's rows, as the
    # first thing its fresh JVM did (a sweep's setup is cold)
    (big,) = [s for s in cal.setup_runs if s.rows > 0.5 * cal.rows]
    one = max(s.rows for s in cal.setup_runs if s is not big)
    assert big.cores == 2 and big.cold and big.session_seconds > 0 and big.data_seconds > 0
    assert big.rows % one == 0 and abs(big.rows - cal.rows) <= one
    assert f"repeated to {big.rows:,} rows" in " ".join(cal.evidence())
    assert len(cal.data_model["theta"]) == 5
    assert cal.refit_runs and all(r.seconds > 0 for r in cal.refit_runs)
    # the most cores' child also ran two probes at once, on its sample: the overlap of concurrent trials
    pairs = [r for r in cal.fit_runs if r.together == 2]
    assert len(pairs) == 2 and {r.cores for r in pairs} == {2} and all(r.repeats == 1 for r in pairs)
    assert cal.overlap is not None and 0.0 <= cal.overlap <= 1.0
    assert any(r.n_iter > 0 for r in cal.fit_runs)
    for r in cal.fit_runs:
        assert r.jobs >= r.n_iter  # at least one Spark job per optimiser iteration
        assert r.fit_seconds > 0 and r.eval_seconds > 0
    p = ModelParams(1.0, 0.0, "l2", None, "none", cfg.search.max_iter, cfg.search.tol)
    trial = cal.trial(p, rows=cal.rows, cores=2)
    assert 0 < trial.low < trial.mid < trial.high
    assert cal.setup(rows=cal.rows, cores=2).mid > cal.session_seconds > 0
    again = calibrate(cfg)
    assert again.cache_hit and again.fit_runs == cal.fit_runs


@pytest.mark.spark
@pytest.mark.slow
def test_a_real_calibration_of_a_one_vs_rest_search_fits_and_counts_k_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 4-class target searched one-vs-rest: the calibration's children fit what the sweep fits (four binomial
    models per fit, probe and refit, each an L-BFGS run of Spark jobs), record it, and the plan predicts a
    one-vs-rest trial above a multinomial one's."""
    pytest.importorskip("pyspark")
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    monkeypatch.setenv("LRSWEEP_CACHE", str(tmp_path / "generated"))
    softmax = DatasetConfig(
        name="softmax", source="generated", generator="softmax", rows=20_000, target="plan", positive=None,
        categorical=["region", "signup_channel"],
    )  # fmt: skip
    knobs = {
        "fractions": 1,
        "cores": [2],
        "configs": 2,
        "small_configs": 1,
        "warmup": False,
        "probes": 1,
        "setup_scale": 0,
    }
    cfg = spark_cfg(tmp_path, softmax, budget=None, **knobs)
    cfg.search = dataclasses.replace(cfg.search, multiclass="ovr", penalties=["l2"])
    cal = calibrate(cfg)
    assert cal.classes == 4 and {s.classes for s in cal.setup_runs} == {4}
    assert cal.fit_runs and {r.models for r in cal.fit_runs} == {4}
    assert any(r.repeats > 1 for r in cal.fit_runs)  # the probe of the sample repeated in memory fitted one-vs-rest
    for r in cal.fit_runs:
        assert r.jobs >= 4 * r.n_iter > 0  # four fits, each at least a job per iteration (n_iter: the largest's)
    assert [r.models for r in cal.refit_runs] == [4]
    ovr = ModelParams(1.0, 0.0, "l2", None, "none", cfg.search.max_iter, cfg.search.tol, None, "ovr")
    soft = dataclasses.replace(ovr, multiclass="multinomial")
    assert cal.trial(ovr, rows=cal.rows, cores=2).mid > 2 * cal.trial(soft, rows=cal.rows, cores=2).mid


def test_probe_pairs_measure_the_cost_per_row_despite_a_drifting_load() -> None:
    """Each round's two probes run back to back: a load that doubles from round to round cancels in their
    difference only as far as it hits both alike, so the slope comes from pairs, not from a fit over time."""
    from lrsweep.planning.calibrate import FitRun, _fit_time_model, _probe_slope

    def probe(n: int, load: float) -> FitRun:
        jobs = 16
        seconds = load * jobs * (0.3 + 4e-6 * n / 2)
        return FitRun(2, 2, 0.1, n, n // 3, 1.0, 1.0, 0.0, "none", 8, 8, jobs, seconds, 0.1, probe=True)

    loads = [1.0, 1.0, 1.0]
    runs = [probe(n, load) for load in loads for n in (20_000, 60_000)]
    assert _probe_slope(runs) == pytest.approx((4e-6, 0.0))  # (not hashed: no per-width term)
    theta, _ = _fit_time_model(runs)
    assert theta[3] == pytest.approx(4e-6)  # the per-row term of a pass is the probes'
    assert _probe_slope([r for r in runs if r.n_fit == 20_000]) is None
    drifting = [probe(n, load) for load in (1.0, 1.5, 2.0) for n in (20_000, 60_000)]
    # the same rounds fitted as one regression over time would mix the load into the slope; pairs keep it near
    slope = _probe_slope(drifting)
    assert slope is not None and 3e-6 < slope[0] < 8e-6


def test_hashed_fits_pay_per_pass_for_the_buckets_their_rows_use_and_the_full_table_uses_more() -> None:
    """A sample's rows use fewer buckets than the whole table's, and the repeated probe has the largest sample's
    buckets on the full table's rows: per-row and per-width costs are told apart, the buckets' growth with rows is
    fitted on the samples, and a trial on the full table pays for its own, wider fit (under-predicted by a third
    when the width was left out: CTR 10^6, 2026-12-05)."""
    from lrsweep.planning.calibrate import FitRun, _fit_time, _fit_time_model, _probe_slope, _width_model

    per_row, per_width, head, size = 2e-6, 4e-7, 10, 2**20

    def buckets(n: float) -> float:
        return 40.0 * n**0.8

    def probe(n: int, width: float, repeats: int = 1, load: float = 1.0) -> FitRun:
        jobs = 16
        seconds = load * jobs * (0.05 + per_row * n / 2 + per_width * width)
        return FitRun(
            2, 2, 0.1, n, n // 3, 1.0, 1.0, 0.0, "none", 8, 8, jobs, seconds, 0.1, probe=True, repeats=repeats,
            width=int(width), head=head, size=size,
        )  # fmt: skip

    sizes = (6_000, 18_000, 60_000)
    runs: list[FitRun] = []
    for load in (1.0, 1.0, 1.0):
        runs += [probe(n, head + buckets(n), load=load) for n in sizes]
        runs.append(probe(600_000, head + buckets(60_000), repeats=10, load=load))  # the largest sample x10
    rows_slope, width_slope = _probe_slope(runs)
    assert rows_slope == pytest.approx(per_row, rel=1e-6) and width_slope == pytest.approx(per_width, rel=1e-6)
    model = _width_model(runs)
    assert model["beta"] == pytest.approx(0.8, abs=1e-4) and (model["head"], model["size"]) == (head, size)

    theta, _ = _fit_time_model(runs)
    assert theta[8] == pytest.approx(per_width, rel=1e-6)
    full_width = head + buckets(600_000)
    truth = 16 * (0.05 + per_row * 600_000 / 2 + per_width * full_width)
    assert _fit_time(theta, 600_000, 2, 16, width=full_width) == pytest.approx(truth, rel=0.02)
    # the repeated probe's narrower fit is what the old rule extrapolated from: too low by a sixth or more
    assert _fit_time(theta[:8], 600_000, 2, 16) < 0.85 * truth


def test_probes_that_contradict_every_other_fit_are_not_believed() -> None:
    from lrsweep.planning.calibrate import FitRun, _fit_time_model

    def run(n: int, jobs: int, seconds: float, probe: bool = False) -> FitRun:
        return FitRun(2, 2, 0.1, n, n // 3, 1.0, 1.0, 0.0, "none", 30, jobs - 4, jobs, seconds, 0.1, probe=probe)

    law = [run(n, j, 0.5 + j * (0.2 + 1e-6 * n / 2)) for n in (20_000, 60_000) for j in (10, 20, 40)]
    wild = [run(20_000, 12, 2.0, True), run(60_000, 12, 40.0, True)]  # one probe slowed twentyfold by load
    theta, res = _fit_time_model(law + wild)
    assert theta[3] < 1e-5  # not the probes' 1.5e-4 s per row


def test_concurrent_probes_measure_the_overlap_and_k_trials_pay_their_share_of_the_fixed_cost() -> None:
    """Two probes at once that each took 1.5x a probe alone (e = 0.75 of running them one after the other) overlap
    o = 2 (1 - e) = 50% of the fixed cost; K >= 2 trials at once then pay 1 - o/2 of it (no more gain beyond two),
    and all of their per-row work. The concurrency probes enter no other model."""
    from lrsweep.planning.calibrate import FitRun, _overlap

    def probe(seconds: float, together: int = 1) -> FitRun:
        return FitRun(2, 2, 0.1, 60_000, 20_000, 1.0, 1.0, 0.0, "none", 8, 8, 15, seconds, 0.5, probe=True,
                      together=together)  # fmt: skip

    rounds = [(2.0, 1.0), (2.2, 1.1), (4.0, 1.0)]  # (alone, load): the third round's pair is no faster than alone
    runs = []
    for alone, _ in rounds:
        runs.append(probe(alone - 0.5))  # fit + eval = alone
        runs += [probe(1.5 * alone - 0.5, together=2)] * 2
    assert _overlap(runs) == pytest.approx(0.5)  # the median of e = 0.75, 0.75, 0.75
    assert _overlap([r for r in runs if r.together == 1]) is None  # no pairs: not measured

    cal = synthetic_calibration()
    p = ModelParams(1.0, 0.0, "l2", None, "none", 300, 1e-4)
    before = {k: cal.trial_parts(p, rows=cal.rows, cores=8, together=k)[0] for k in (1, 2, 4)}
    assert cal.overlap is None and before[1] == before[2] == before[4]  # not measured: no gain assumed
    cal.fit_runs += runs
    cal.fit_models()
    assert cal.overlap == pytest.approx(0.5)
    assert [cal.at_once(k) for k in (1, 2, 4)] == pytest.approx([1.0, 0.75, 0.75])
    # at the full table on 8 cores: K at once save (1 - at_once(K)) of the fold's fixed part, which is neither
    # nothing nor the whole fold (the law's per-row work stays)
    full = cal._parts(cal.rows)
    one, _ = cal.fold_seconds(p, full.n_fit, full.n_held, 8)
    saved = one - cal.fold_seconds(p, full.n_fit, full.n_held, 8, together=2)[0]
    assert cal.fold_seconds(p, full.n_fit, full.n_held, 8, together=4)[0] == one - saved
    fixed = saved / (1 - cal.at_once(2))
    assert 0.05 * one < fixed < 0.95 * one
    # the pairs enter no other model: one trial at a time is predicted as without them
    alone = synthetic_calibration()
    alone.fit_runs += [r for r in runs if r.together == 1]
    alone.fit_models()
    assert cal.trial_parts(p, rows=cal.rows, cores=8)[0] == alone.trial_parts(p, rows=cal.rows, cores=8)[0]
    assert cal.eval_model == alone.eval_model and cal.passes == alone.passes
    assert any("trials at once" in line and "ASSUMPTION" in line for line in cal.evidence())


def test_a_generated_sample_repeated_as_one_file_reads_back_k_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The full-size setup's table: a sample written k times over as one Parquet file, read as a plain file."""
    from lrsweep.data import uri
    from lrsweep.data.source import resolve_source
    from lrsweep.planning.calibrate import _repeated_table

    monkeypatch.chdir(tmp_path)
    sample = dataclasses.replace(CTR, rows=1_000)
    out = DatasetConfig(**_repeated_table(dataclasses.asdict(sample), 3, tmp_path))
    assert (out.kind, out.rows, out.generator, out.target) == ("file", None, None, "click")
    one = uri.read_pandas(resolve_source(sample).location, "parquet")
    src = resolve_source(out)
    many = uri.read_pandas(src.location, src.format)
    assert len(one) == 1_000 and len(many) == 3_000
    assert "hour_of_day" in many.columns and "hour_of_day" not in one.columns  # derived, as reading the table does
    for k in range(3):
        assert many[one.columns].iloc[k * 1_000 : (k + 1) * 1_000].reset_index(drop=True).equals(one)


def test_one_vs_rest_fits_are_predicted_as_k_binomial_fits() -> None:
    """A one-vs-rest fit on a K-class target is K binomial fits, each paying the fixed part of a fit and its
    passes: calibrated on runs of that law (models=K) beside single fits, a one-vs-rest trial is predicted at K
    times a single fit's cost (its scoring once), and a multinomial one (or any on a binary target) at one."""
    from tests.planning import law_fit_seconds, law_iterations

    k = 4
    cal = synthetic_calibration()
    binary = synthetic_calibration()
    full = cal._parts(cal.rows)
    ovr_runs = []
    for r in cal.fit_runs:
        it = law_iterations(r.target_C, full.n_fit, r.l1_ratio)
        jobs = k * (4 + it * (2 if r.l1_ratio > 0 else 1))
        ovr_runs.append(dataclasses.replace(r, jobs=jobs, models=k, fit_seconds=k * 0.3 + jobs * (
            law_fit_seconds(r.n_fit, r.machines, 1) - 0.3)))  # fmt: skip
    cal.fit_runs = [*cal.fit_runs, *ovr_runs]
    cal.setup_runs = [dataclasses.replace(s, classes=k) for s in cal.setup_runs]
    cal.fit_models()
    assert cal.classes == k and binary.classes == 0
    assert any("4-class target: a one-vs-rest fit is 4 binomial fits" in line for line in cal.evidence())
    assert not any("one-vs-rest" in line for line in binary.evidence())
    ovr = ModelParams(1.0, 0.0, "l2", None, "none", 300, 1e-4, None, "ovr")
    soft = dataclasses.replace(ovr, multiclass="multinomial")
    one, _ = cal.fold_seconds(soft, full.n_fit, full.n_held, 8)
    many, _ = cal.fold_seconds(ovr, full.n_fit, full.n_held, 8)
    it = law_iterations(1.0, full.n_fit, 0.0)
    m = cal.machines(full.n_fit, 8)
    single = law_fit_seconds(full.n_fit, m, 4 + it)  # the law's one binomial fit at full size on 8 cores
    assert many - one == pytest.approx((k - 1) * single, rel=0.05)
    assert cal.models(ovr) == k and cal.models(soft) == 1 and binary.models(ovr) == 1
    assert binary.fold_seconds(ovr, full.n_fit, full.n_held, 8) == binary.fold_seconds(soft, full.n_fit, full.n_held, 8)
    # the models fitted on K-fold runs did not take the K fits' fixed parts for per-pass cost
    assert cal.passes["lbfgs"] == pytest.approx(binary.passes["lbfgs"], rel=0.02)
    assert cal.fit_theta[0] == pytest.approx(binary.fit_theta[0], rel=0.1)
    # and the trial of a one-vs-rest sweep's draw is predicted so (a multi-class draw carries its mode)
    assert cal.trial(ovr, rows=cal.rows, cores=8).mid > 3 * cal.trial(soft, rows=cal.rows, cores=8).mid
    from lrsweep.planning.predict import predict_sweep

    def sweep(mode: str, c: Calibration) -> float:
        cfg = Config(backend=SparkConfig(), search=dataclasses.replace(SearchConfig(), n_trials=12, multiclass=mode))
        return predict_sweep(cfg, c, rows=c.rows, cores=8).trials.mid

    assert sweep("ovr", cal) > 3 * sweep("multinomial", cal)
    assert sweep("multinomial", cal) < sweep("both", cal) < sweep("ovr", cal)
    assert sweep("ovr", binary) == sweep("multinomial", binary)  # a binary target: one model whatever the mode
