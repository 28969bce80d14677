"""The plan around the runtime model: pricing, start-up, what a budget affords, history, the MLflow run.

The runtime model itself is tested in test_calibrate.py / test_predict.py; here a calibration with known
predictions stands in for it, so every figure below is worked out by hand.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from lrsweep.clusters import EmrCluster, LocalCluster, StandaloneCluster
from lrsweep.config import Config
from lrsweep.errors import LrsweepError
from lrsweep.planning import plan as plan_mod
from lrsweep.planning.calibrate import Estimate
from lrsweep.planning.plan import check_budget, make_plan, plan_table
from lrsweep.planning.predict import SweepEstimate
from lrsweep.space import ModelParams
from tests.planning.prices import shipped_prices


class KnownCalibration:
    """A trial takes 10 s x rows / 10,000 / (cores x speed), +-20%; setup 60 s, refit 20 s."""

    rows = 10_000

    def trial(self, params: ModelParams, *, rows: int, cores: int, speed: float = 1.0) -> Estimate:
        mid = 10.0 * rows / 10_000 / (cores * speed)
        return Estimate(mid * 0.8, mid, mid * 1.2)

    def setup(self, *, rows: int, cores: int, speed: float = 1.0) -> Estimate:
        return Estimate(50.0, 60.0, 80.0)

    def evidence(self) -> list[str]:
        return ["calibration: known figures (test)"]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "known"}


def _estimate(cfg: Config, cal: Any, *, rows: int, cores: int, speed: float = 1.0, correction: float = 1.0,
              correction_spread: float = 0.0, setup_correction: float = 1.0) -> SweepEstimate:  # fmt: skip
    """What predict_sweep returns, made by hand: trial (8, 10, 12) s x correction; setup (50, 60, 80) x
    setup_correction; refit (18, 20, 24)."""
    n = cfg.search.n_trials
    t = Estimate(8.0 * correction, 10.0 * correction, 12.0 * correction)
    setup, refit = Estimate(50.0, 60.0, 80.0).scaled(setup_correction), Estimate(18.0, 20.0, 24.0)
    trials = Estimate(t.low * n, t.mid * n, t.high * n)
    total = Estimate(*(getattr(setup, k) + getattr(trials, k) + getattr(refit, k) for k in ("low", "mid", "high")))
    return SweepEstimate(n_trials=n, setup=setup, trial=t, trials=trials, refit=refit, total=total, samples=100)


@pytest.fixture
def cfg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Config:
    import lrsweep.planning.predict as predict

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(predict, "predict_sweep", _estimate)
    monkeypatch.setattr(plan_mod, "_data_shas", lambda cfg: ["sha-of-the-data"])
    c = Config()
    c.backend.name = "spark"
    c.prices = shipped_prices()
    c.cluster = EmrCluster(instance_type="m5.xlarge", core_nodes=4, startup_minutes=10)
    c.search.n_trials = 30
    c.tracking.uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    return c


def test_an_emr_plan_prices_the_whole_sweep_with_its_start_up(cfg: Config):
    p = make_plan(cfg, calibration=KnownCalibration())
    # 60 + 30 x 10 + 20 = 380 s of work, + 600 s start-up; 1 primary + 4 core m5.xlarge = 5 x 0.24 = 1.2 USD/h
    assert p.cores == 16
    assert (p.sweep.total.mid, p.total.mid) == (380.0, 980.0)
    assert p.hourly_usd == pytest.approx(1.2)
    assert p.usd is not None and p.usd.mid == pytest.approx(980 * 1.2 / 3600)
    assert p.usd.low == pytest.approx((50 + 240 + 18 + 600) * 1.2 / 3600)
    assert p.usd.high == pytest.approx((80 + 360 + 24 + 600) * 1.2 / 3600)
    text = p.text()
    assert "cost          0.33 USD (0.30 - 0.35 USD) at 1.200 USD/h" in text
    assert "+ start-up    16.3 min (15.1 - 17.7 min)" in text
    assert "one m5.xlarge vCPU = 1 x one core of this machine (cluster.core_speed)" in text
    assert "prices=aws_on_demand (USD, 2026-11-26" in text


def test_what_a_budget_affords(cfg: Config):
    cfg.budget.max_usd = 1.0  # 3000 s of the cluster: 600 start-up, 60 + 20 setup and refit, 10 s per trial
    p = make_plan(cfg, calibration=KnownCalibration())
    assert p.affordable == (3000 - 600 - 80) // 10  # 232
    assert p.affordable_high == int((3000 - 600 - 104) / 12)  # 191
    assert "budget.max_usd=1 affords 232 trials (191 if every step takes its high estimate)" in p.text()
    check_budget(p)  # 30 planned: within
    cfg.search.n_trials = 300
    with pytest.raises(LrsweepError, match=r"not launched: 300 trials .* use search.n_trials=232"):
        check_budget(make_plan(cfg, calibration=KnownCalibration()))


def test_a_time_budget_works_on_any_cluster(cfg: Config):
    cfg.cluster = LocalCluster(master="local[2]")
    cfg.budget.max_minutes = 10.0  # 600 s: no start-up off EMR
    p = make_plan(cfg, calibration=KnownCalibration())
    assert p.usd is None and "not priced" in p.text()
    assert p.affordable == (600 - 80) // 10


def test_a_budget_below_one_trial_is_one_line(cfg: Config):
    cfg.budget.max_usd = 0.2  # 600 s of the cluster: the start-up alone
    with pytest.raises(LrsweepError, match=r"the budget affords no trial: .* take 0.23 USD, 11.5 min"):
        make_plan(cfg, calibration=KnownCalibration())


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"backend": "sklearn"}, r"lrsweep plan predicts Spark sweeps; backend=sklearn"),
        ({"cluster": StandaloneCluster(master="spark://h:7077")}, r"add cluster.cores=N"),
        ({"cluster": EmrCluster(instance_type="m9.huge")}, r"unknown instance type 'm9.huge'"),
        ({"cluster": EmrCluster(region="ap-south-2")}, r"no prices for region 'ap-south-2'"),
        ({"cluster": EmrCluster(core_nodes=0)}, r"cluster.core_nodes=0 is impossible"),
    ],
)
def test_what_cannot_be_planned_is_one_line_before_any_calibration(cfg: Config, change: dict, needle: str):
    if "backend" in change:
        cfg.backend.name = change["backend"]
    else:
        cfg.cluster = change["cluster"]

    class Untouchable(KnownCalibration):
        def trial(self, *a: Any, **k: Any) -> Estimate:
            raise AssertionError("calibrated before the config was checked")

    with pytest.raises(LrsweepError, match=needle):
        make_plan(cfg, calibration=Untouchable())


def _finished_sweep(
    uri: str, seconds: list[float], cluster_type: str = "emr m5.xlarge", sha: str = "sha-of-the-data",
    setup: float | None = None, calls: list[dict[str, Any]] | None = None,
) -> str:  # fmt: skip
    """A finished Spark sweep as MLflow holds it: a parent run (with its setup's seconds, if given) and one child
    run per trial."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.create_experiment(f"past-{cluster_type}-{sha}-{uuid.uuid4().hex[:8]}")
    tags = {"lrsweep.kind": "sweep", "lrsweep.cluster_type": cluster_type, "lrsweep.data_sha256": sha,
            "lrsweep.cores": "16", "lrsweep.table_rows": "10000"}  # fmt: skip
    for i, call in enumerate(calls or [], start=1):  # the calls' records, as a sweep's parent run holds them
        tags[f"lrsweep.invocation.{i:03d}"] = json.dumps(call)
    parent = client.create_run(exp, tags=tags)
    for i, s in enumerate(seconds):
        child = client.create_run(
            exp,
            start_time=1_000_000,
            tags={"mlflow.parentRunId": parent.info.run_id, "lrsweep.kind": "trial", "lrsweep.trial_number": str(i)},
        )
        for k, v in ModelParams(1.0, 0.0, "l2", None, "none", 100, 1e-6).as_dict().items():
            if v is not None:
                client.log_param(child.info.run_id, k, v)
        client.set_terminated(child.info.run_id, "FINISHED", end_time=1_000_000 + int(s * 1000))
    if setup is not None:
        client.log_metric(parent.info.run_id, "setup_seconds", setup)
    client.set_terminated(parent.info.run_id, "FINISHED")
    return str(parent.info.run_id)


def test_history_on_the_same_cluster_type_replaces_the_speed_assumption(cfg: Config):
    # the known calibration predicts 10 x 1 / 16 = 0.625 s for these trials; they took 1.25 s: ratio 2
    run = _finished_sweep(cfg.tracking.uri, [1.25, 1.25, 1.25, 1.25])
    _finished_sweep(cfg.tracking.uri, [99.0] * 4, cluster_type="emr r5.xlarge")  # another type: not evidence
    _finished_sweep(cfg.tracking.uri, [99.0] * 4, sha="other-data")  # other data: not evidence
    p = make_plan(cfg, calibration=KnownCalibration())
    assert p.history is not None and p.history.used and p.history.runs == [run]
    assert p.history.ratio == pytest.approx(2.0)
    assert p.sweep.trial.mid == pytest.approx(20.0)  # the model's 10 s x 2
    assert "history: 4 trial(s) of 1 finished sweep(s) on emr m5.xlarge: measured / predicted = 2.00" in p.text()
    assert "per-core speed taken from history" in p.text()


def test_history_corrects_the_setup_from_the_setups_sweeps_recorded(cfg: Config):
    """The known calibration predicts a 60 s setup; the sweeps of this data on this cluster type took 90 and 150 s
    (their executors start slower than this machine's, say): the plan's setup is the model's x their median ratio
    2.0, and says so. A sweep logged before setups were recorded counts for the trials only."""
    _finished_sweep(cfg.tracking.uri, [1.25] * 3, setup=90.0)
    _finished_sweep(cfg.tracking.uri, [1.25] * 3, setup=150.0)
    _finished_sweep(cfg.tracking.uri, [1.25] * 3)
    _finished_sweep(cfg.tracking.uri, [1.25] * 3, setup=999.0, cluster_type="emr r5.xlarge")  # not evidence
    p = make_plan(cfg, calibration=KnownCalibration())
    assert p.history is not None and p.history.used and p.history.trials == 9
    assert (p.history.setups, p.history.setup_ratio) == (2, pytest.approx(2.0))
    assert p.sweep.setup.mid == pytest.approx(120.0) and p.sweep.trial.mid == pytest.approx(20.0)
    assert "; setup of 2: measured / predicted = 2.00" in p.text()


def test_trials_run_at_once_are_no_evidence_of_a_clusters_speed(cfg: Config):
    """A trial's wall in a sweep that ran several at once (search.n_jobs > 1, or workers whose calls overlapped)
    measures the sharing: such sweeps' trials are left out; a study resumed call after call is evidence."""
    one = {"n_jobs": 1, "worker": "a", "started": "2026-12-04 10:00:00", "wall_seconds": 30.0}
    _finished_sweep(cfg.tracking.uri, [9.0] * 4, calls=[{**one, "n_jobs": 2}])
    _finished_sweep(cfg.tracking.uri, [9.0] * 4, calls=[one, {**one, "worker": "b", "started": "2026-12-04 10:00:10"}])
    resumed = [one, {**one, "worker": "b", "started": "2026-12-04 10:00:30"}]  # began as the first call ended
    run = _finished_sweep(cfg.tracking.uri, [1.25] * 4, calls=resumed)
    p = make_plan(cfg, calibration=KnownCalibration())
    assert p.history is not None and p.history.runs == [run] and p.history.trials == 4
    assert p.history.ratio == pytest.approx(2.0)  # the resumed sweep's 1.25 s against 0.625 s: not the 9 s


def test_too_little_history_leaves_the_assumption(cfg: Config):
    _finished_sweep(cfg.tracking.uri, [1.25, 1.25])
    p = make_plan(cfg, calibration=KnownCalibration())
    assert p.history is not None and not p.history.used and p.sweep.trial.mid == 10.0
    assert "fewer than 3, not used" in p.text()


def test_the_plan_is_its_own_mlflow_run_and_the_sweep_links_to_it(cfg: Config):
    from mlflow import MlflowClient

    from lrsweep.tracking import ParentSpec, TrialWriter, log_plan

    p = make_plan(cfg, calibration=KnownCalibration())
    run_id = log_plan(cfg.tracking.uri, p.record(cfg))
    client = MlflowClient(tracking_uri=cfg.tracking.uri)
    run = client.get_run(run_id)
    assert run.data.tags["lrsweep.kind"] == "plan" and run.data.tags["lrsweep.plan_for_study"] == p.study
    assert run.data.metrics["pred_usd"] == pytest.approx(980 * 1.2 / 3600)
    assert run.data.params["cluster.core_nodes"] == "4"
    assert Path(client.download_artifacts(run_id, "plan.txt")).read_text() == p.text()
    # a sweep of that study, started later, links to the plan
    writer = TrialWriter(cfg.tracking.uri)
    spec = ParentSpec(study=p.study, run_name="sweep", params={}, tags={}, texts={}, backfill=[],
                      experiment=cfg.experiment_name)  # fmt: skip
    parent = client.get_run(writer.open(spec)[0])
    assert parent.data.tags["lrsweep.plan_run_id"] == run_id


def test_plans_side_by_side(cfg: Config):
    plans = []
    for nodes in (2, 4):
        cfg.cluster = EmrCluster(core_nodes=nodes)
        plans.append(make_plan(cfg, calibration=KnownCalibration()))
    table = plan_table(plans).splitlines()
    assert table[1].split() == ["cluster", "cores", "per", "trial", "total", "cost", "affords"]
    assert "2 core m5.xlarge, 8 executor cores" in table[3] and "4 core m5.xlarge, 16 executor cores" in table[4]
