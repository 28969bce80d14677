"""The budget guard: a sweep stops starting trials before a budget is passed, finishes cleanly, says why.

The guard reads a monotonic clock; here a backend advances a fake clock by one minute per fit, so what the
guard decides follows from the arithmetic below and not from this machine's speed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrsweep.backends.sklearn import SklearnBackend
from lrsweep.clusters import EmrCluster
from lrsweep.config import Config, validate
from lrsweep.errors import LrsweepError
from lrsweep.planning import budget
from lrsweep.planning.budget import BudgetGuard
from lrsweep.report import format_summary
from lrsweep.sweep import run_sweep
from tests.planning.prices import shipped_prices


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class MinutePerFit(SklearnBackend):
    clock: Clock

    def evaluate(self, params, fold=None):  # type: ignore[override]
        self.clock.t += 60.0
        return super().evaluate(params, fold)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(budget, "_now", c)
    return c


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    df["y"] = (rng.random(200) < 1 / (1 + np.exp(-2 * df["a"]))).astype(int)
    df.to_csv(tmp_path / "small.csv", index=False)
    c = Config()
    c.dataset.name, c.dataset.path, c.dataset.target, c.dataset.positive = None, str(tmp_path / "small.csv"), "y", None
    c.search.n_trials, c.search.solvers, c.search.penalties = 20, ["lbfgs"], ["l2"]
    c.progress = False
    c.tracking.mode, c.tracking.artifacts, c.tracking.log_model = "inline", False, False
    c.prices = shipped_prices()
    return c


def _sweep(cfg: Config, clock: Clock):
    backend = MinutePerFit(cfg.backend, seed=cfg.seed)
    backend.clock = clock
    return run_sweep(cfg, backend=backend)


def test_max_minutes_stops_starting_trials_and_says_why(cfg: Config, clock: Clock, tmp_path: Path):
    from tests.e2e_helpers import mlflow_runs

    cfg.budget.max_minutes = 4.5
    result = _sweep(cfg, clock)
    # a trial starts while minutes spent + 2 x the last trial's minutes (the trial, then the refit) <= 4.5:
    # at 0 (no trial measured yet), 1 + 2 and 2 + 2; at 3 + 2 = 5 > 4.5 the fourth does not start
    assert result.n_new == 3
    assert result.stop_reason and result.stop_reason.startswith("budget.max_minutes=4.5 reached")
    assert "stopped early: budget.max_minutes=4.5" in format_summary(result)
    (parent,), _ = mlflow_runs(tmp_path, experiment="lrsweep-small")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["lrsweep.stop_reason"] == result.stop_reason


def test_max_usd_on_emr_counts_the_start_up_and_logs_the_spend(cfg: Config, clock: Clock, tmp_path: Path):
    from mlflow import MlflowClient

    from tests.e2e_helpers import mlflow_runs

    # 1 primary + 2 core m5.xlarge: 0.72 USD/h = 0.012 USD per minute; start-up 10 min = 0.12 USD.
    cfg.cluster = EmrCluster(core_nodes=2, startup_minutes=10)
    cfg.budget.max_usd = 0.2
    result = _sweep(cfg, clock)
    # a trial may start at minute m while (10 + m + 2) x 0.012 <= 0.2 (its minute and the refit's kept), i.e.
    # m <= 4.67: at m = 0..4, five trials; the refit does not tick the clock, so 15 billed minutes in all
    assert result.n_new == 5
    assert result.stop_reason and result.stop_reason.startswith("budget.max_usd=0.2 reached: 0.18 USD spent")
    assert result.spend_usd == pytest.approx(15 * 0.012)
    assert "cluster spend: 0.18 USD" in format_summary(result)
    (parent,), _ = mlflow_runs(tmp_path, experiment="lrsweep-small")
    history = MlflowClient().get_metric_history(parent.info.run_id, "spend_usd")
    spends = [m.value for m in sorted(history, key=lambda m: m.step)]
    assert spends == pytest.approx([(10 + m) * 0.012 for m in (1, 2, 3, 4, 5, 5)])  # per trial, then at the end


def test_a_budget_no_trial_fits_in_is_one_line(cfg: Config, clock: Clock):
    cfg.cluster = EmrCluster(core_nodes=2, startup_minutes=10)
    cfg.budget.max_usd = 0.1  # the start-up alone costs 0.12
    with pytest.raises(LrsweepError, match=r"no trial ran: budget.max_usd=0.1 reached: 0.12 USD spent"):
        _sweep(cfg, clock)


def test_the_first_trial_uses_the_plans_prediction(cfg: Config):
    cfg.budget.max_minutes, cfg.budget.trial_seconds = 10.0, 400.0
    guard = BudgetGuard(cfg, started=0.0)
    assert not guard.allows(now=0.0)  # 0 + 2 x 400 s > 600 s
    assert "next trial is predicted to take 400 s" in str(guard.stopped)
    guard = BudgetGuard(cfg, started=0.0, durations=[100.0])
    assert guard.allows(now=300.0)  # measured trials replace the prediction: 300 + 2 x 100 <= 600


def test_impossible_budgets_are_refused_before_any_work(cfg: Config):
    cfg.budget.max_usd = 5.0  # cluster=local has no price
    with pytest.raises(LrsweepError, match=r"budget.max_usd needs a priced cluster; cluster=local"):
        validate(cfg)
    cfg.budget.max_usd, cfg.budget.max_minutes = None, -1.0
    with pytest.raises(LrsweepError, match=r"budget.max_minutes=-1.0 is impossible"):
        validate(cfg)
