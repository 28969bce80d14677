"""The cluster probe: a reachable cluster's overheads beyond the calibrated model, and the plan that uses them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lrsweep.backends.spark import SparkConfig
from lrsweep.clusters import LocalCluster, StandaloneCluster
from lrsweep.config import Config
from lrsweep.planning.calibrate import FitRun, SetupRun, _fit_time, _setup_seconds
from lrsweep.planning.ernest import Ernest
from lrsweep.planning.probe import PROBE_LENGTHS, ClusterProbe, corrections, overheads, probe_cluster
from tests.planning import synthetic_calibration

TELCO_ROWS = 7_043


def _predicted(cal, r: FitRun) -> float:
    return _fit_time(cal.fit_theta, r.n_fit, r.machines, r.jobs) + Ernest.from_dict(cal.eval_model).predict(
        r.n_held, r.machines
    )


def _cluster_runs(cal, per_fit: float, per_job: float, setup: float) -> tuple[list[FitRun], list[SetupRun]]:
    """Runs as a cluster with known overheads would measure them: the model's own prediction plus the overheads."""
    fits = []
    # three configurations at two lengths, as probed
    for C, jobs in ((1.0, 8), (10.0, 9), (100.0, 9), (1.0, 20), (10.0, 24), (100.0, 25)):
        r = FitRun(cores=2, machines=2, fraction=0.1, n_fit=60_000, n_held=20_000, C=C, target_C=C,
                   l1_ratio=0.0, class_weight="none", max_iter=16, n_iter=jobs - 4, jobs=jobs,
                   fit_seconds=0.0, eval_seconds=0.0)  # fmt: skip
        fits.append(dataclasses.replace(r, fit_seconds=_predicted(cal, r) + per_fit + per_job * jobs))
    cold_fit = dataclasses.replace(fits[0], cold=True, warmup=True, fit_seconds=99.0)  # compiling: not an overhead
    cold = SetupRun(cores=2, master="spark://h:7077", fraction=0.001, rows=1_000, session_seconds=5.0,
                    data_seconds=0.0, cold=True)  # fmt: skip
    model_cold = cal.session_seconds + _setup_seconds(cal.data_model, cold.rows, cold.cores)
    cold = dataclasses.replace(cold, data_seconds=model_cold - 5.0 + setup)
    warm = SetupRun(cores=2, master="spark://h:7077", fraction=0.1, rows=100_000, session_seconds=0.0,
                    data_seconds=500.0)  # a warm setup: not what a sweep pays  # fmt: skip
    return [cold_fit, *fits], [cold, warm]


def test_the_overheads_beyond_the_model_are_recovered_per_fit_per_job_and_per_setup() -> None:
    cal = synthetic_calibration()
    fits, setups = _cluster_runs(cal, per_fit=0.5, per_job=0.05, setup=9.0)
    fit_extra, job_extra, setup_extra, spread = overheads(cal, fits, setups)
    assert fit_extra == pytest.approx(0.5, abs=1e-6)
    assert job_extra == pytest.approx(0.05, abs=1e-6)
    assert setup_extra == pytest.approx(9.0, abs=1e-6)
    assert spread == pytest.approx(0.0, abs=1e-9)  # the corrected model explains every fit


def test_one_disturbed_fit_moves_neither_the_overheads_nor_the_range_much() -> None:
    cal = synthetic_calibration()
    fits, setups = _cluster_runs(cal, per_fit=0.5, per_job=0.05, setup=9.0)
    fits[1] = dataclasses.replace(fits[1], eval_seconds=2.0)  # the first warm fit: its scoring took 2 s longer
    fit_extra, job_extra, _, spread = overheads(cal, fits, setups)
    assert job_extra == pytest.approx(0.05, abs=0.01)
    assert fit_extra == pytest.approx(0.5, abs=0.25)
    assert spread < 0.05
    everywhere = [dataclasses.replace(r, eval_seconds=r.eval_seconds + 0.5 * (i % 2)) for i, r in enumerate(fits)]
    assert overheads(cal, everywhere, setups)[3] > 0.05  # a scatter in most fits widens it


def test_a_cluster_no_slower_than_the_model_adds_nothing() -> None:
    cal = synthetic_calibration()
    fits, setups = _cluster_runs(cal, per_fit=0.0, per_job=0.0, setup=0.0)
    faster = [dataclasses.replace(r, fit_seconds=r.fit_seconds * 0.8) for r in fits]
    fit_extra, job_extra, setup_extra, _ = overheads(cal, faster, setups)
    assert (fit_extra, job_extra, setup_extra) == (0.0, 0.0, 0.0)  # never read as a speed-up


def test_the_corrections_add_the_overheads_to_the_full_size_sweep(tmp_path: Path) -> None:
    cal = synthetic_calibration()
    cfg = Config(backend=SparkConfig())
    assert corrections(cfg, cal, 2, 0.0, 0.0, 0.0) == (1.0, 1.0)
    per_fit, _ = corrections(cfg, cal, 2, 1.0, 0.0, 0.0)
    per_job, _ = corrections(cfg, cal, 2, 0.0, 0.01, 0.0)
    both, _ = corrections(cfg, cal, 2, 1.0, 0.01, 0.0)
    assert per_fit > 1.0 and per_job > 1.0
    assert both - 1.0 == pytest.approx((per_fit - 1.0) + (per_job - 1.0))  # additive overheads
    _, setup = corrections(cfg, cal, 2, 0.0, 0.0, 7.0)
    assert setup == pytest.approx(1.0 + 7.0 / cal.setup(rows=cal.rows, cores=2).mid)


def test_only_a_standalone_cluster_is_probed(tmp_path: Path) -> None:
    cal = synthetic_calibration(rows=TELCO_ROWS)
    cfg = Config(backend=SparkConfig(), cluster=LocalCluster(master="local[2]"))
    assert probe_cluster(cfg, cal, 2) is None
    cfg.cluster = StandaloneCluster(master="spark://127.0.0.1:1", cores=2)
    cfg.plan.probe = False
    assert probe_cluster(cfg, cal, 2) is None


@pytest.mark.spark
@pytest.mark.slow
def test_a_real_probe_on_a_standalone_cluster_and_the_plan_that_uses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyspark")
    from lrsweep.planning.plan import make_plan
    from lrsweep.planning.predict import predict_sweep
    from tests.spark_cluster import standalone_cluster

    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    monkeypatch.chdir(tmp_path)
    cal = synthetic_calibration(rows=TELCO_ROWS)
    cal.key = "test-key"
    with standalone_cluster(workers=1, memory="1g", work_dir=tmp_path / "work") as cluster:
        cfg = Config(backend=SparkConfig(), cluster=StandaloneCluster(master=cluster.master, cores=cluster.cores))
        cfg.plan.calibration.cache_dir = str(tmp_path / "cache")
        cfg.tracking.enabled = False
        cfg.search.n_trials = 5
        probe = probe_cluster(cfg, cal, cluster.cores)
        assert probe is not None and not probe.cache_hit
        again = make_plan(cfg, calibration=cal)  # the plan reads the probe back from the cache
    assert probe.master == cluster.master
    assert {s["master"] for s in probe.setup_runs} == {cluster.master}  # measured on the cluster, not locally
    warm = [FitRun(**r) for r in probe.fit_runs if not r["cold"]]
    assert probe.fits == len(warm) - 1 == 3 * len(PROBE_LENGTHS)  # the first warm fit is a throwaway
    assert {r.max_iter for r in warm} == set(PROBE_LENGTHS)
    assert all(r.n_fit < 0.1 * TELCO_ROWS and r.jobs >= r.n_iter for r in warm)
    assert probe.fit_extra >= 0 and probe.job_extra >= 0 and probe.setup_extra >= 0
    assert probe.trial_ratio >= 1.0 and probe.setup_ratio >= 1.0
    assert ClusterProbe.from_dict(probe.to_dict()) == probe

    assert again.probe is not None and again.probe["job_extra"] == probe.job_extra
    assert any(e.startswith(f"cluster probe on {cluster.master}") and "cached" in e for e in again.evidence)
    assert "measured by a probe on it" in again.assumption
    expected = predict_sweep(
        cfg, cal, rows=cal.rows, cores=cluster.cores, correction=probe.trial_ratio,
        correction_spread=probe.spread, setup_correction=probe.setup_ratio,
    )  # fmt: skip
    assert again.sweep.total.mid == pytest.approx(expected.total.mid)
    assert again.sweep.setup.mid == pytest.approx(cal.setup(rows=cal.rows, cores=cluster.cores).mid * probe.setup_ratio)
