"""Sweep estimates from a calibration: ranges hold their mid, corrections and trial counts scale what they
should, and the trials predicted are the ones the search space (and the sweep's own sampler) draws."""

from __future__ import annotations

import dataclasses
import math

import pytest

from lrsweep.backends.spark import SparkConfig
from lrsweep.config import Config, FloatRange, SearchConfig
from lrsweep.planning.calibrate import Calibration, Estimate, parts_of
from lrsweep.planning.predict import MAX_SAMPLES, MIN_SAMPLES, draw_configs, known_trials, predict_sweep
from lrsweep.space import ModelParams
from tests.planning import ROWS, law_fit_seconds, law_iterations, synthetic_calibration


def cfg_with(**search: object) -> Config:
    return Config(backend=SparkConfig(), search=dataclasses.replace(SearchConfig(), **search))


@pytest.fixture(scope="module")
def cal() -> Calibration:
    return synthetic_calibration()


def test_every_range_contains_its_mid(cal: Calibration) -> None:
    est = predict_sweep(cfg_with(n_trials=12), cal, rows=ROWS, cores=2)
    for e in (est.setup, est.trial, est.trials, est.refit, est.total):
        assert 0 < e.low < e.mid < e.high
    assert est.total.mid == pytest.approx(est.setup.mid + est.trials.mid + est.refit.mid)
    assert est.samples >= max(12, MIN_SAMPLES)


def test_a_huge_sweep_draws_at_most_max_samples_and_counts_the_rest_as_their_mean(cal: Calibration) -> None:
    some = predict_sweep(cfg_with(n_trials=MAX_SAMPLES, sampler="random"), cal, rows=ROWS, cores=2)
    twice = predict_sweep(cfg_with(n_trials=2 * MAX_SAMPLES, sampler="random"), cal, rows=ROWS, cores=2)
    assert (some.samples, some.known) == (twice.samples, twice.known) == (MAX_SAMPLES, MAX_SAMPLES)
    cold = cal.cold_start_seconds
    # the first MAX_SAMPLES trials exactly, the next MAX_SAMPLES at their mean: twice the same sum
    assert twice.trials.mid - cold == pytest.approx(2 * (some.trials.mid - cold))
    assert twice.trial == some.trial


def test_correction_scales_the_trials_and_its_spread_widens_them(cal: Calibration) -> None:
    cfg = cfg_with(n_trials=10)
    base = predict_sweep(cfg, cal, rows=ROWS, cores=2)
    doubled = predict_sweep(cfg, cal, rows=ROWS, cores=2, correction=2.0)
    assert doubled.trials.mid == pytest.approx(2 * base.trials.mid)
    assert doubled.trial.mid == pytest.approx(2 * base.trial.mid)
    assert doubled.setup == base.setup  # the history corrects trials, not the setup
    wide = predict_sweep(cfg, cal, rows=ROWS, cores=2, correction_spread=0.5)
    assert wide.trials.mid == pytest.approx(base.trials.mid)
    assert wide.trials.high / wide.trials.mid > base.trials.high / base.trials.mid


def test_n_trials_scales_the_sum(cal: Calibration) -> None:
    # random sampler: every trial is one the sweep will draw; the sum over 20 extends the sum over 10
    ten = predict_sweep(cfg_with(n_trials=10, sampler="random"), cal, rows=ROWS, cores=2)
    twenty = predict_sweep(cfg_with(n_trials=20, sampler="random"), cal, rows=ROWS, cores=2)
    draws = draw_configs(cfg_with(n_trials=20, sampler="random"), 20)
    per = [cal.trial(p, rows=ROWS, cores=2).mid for p in draws]
    assert ten.trials.mid == pytest.approx(sum(per[:10]))
    assert twenty.trials.mid == pytest.approx(sum(per))
    # beyond TPE's random start, trials count as the space's mean
    tpe = predict_sweep(cfg_with(n_trials=30, sampler="tpe", n_startup_trials=10), cal, rows=ROWS, cores=2)
    assert tpe.known == 10
    assert tpe.trials.mid == pytest.approx(sum(per[:10]) + 20 * tpe.trial.mid)


def test_an_l2_search_never_predicts_with_an_l1_share(cal: Calibration, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[ModelParams] = []
    original = Calibration.trial_parts

    def spy(self: Calibration, params: ModelParams, **kw: object) -> tuple[float, float]:
        seen.append(params)
        return original(self, params, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Calibration, "trial_parts", spy)
    cfg = cfg_with(penalties=["l2"], C=FloatRange(1e-3, 1e1, True), n_trials=5)
    predict_sweep(cfg, cal, rows=ROWS, cores=2)
    assert len(seen) >= MIN_SAMPLES
    assert all(p.l1_ratio == 0.0 and p.penalty == "l2" for p in seen)
    assert all(1e-3 <= p.C <= 1e1 for p in seen)
    assert max(p.C for p in seen) / min(p.C for p in seen) > 100  # the draws spread over the log range


def test_weak_regularisation_costs_more_than_strong(cal: Calibration) -> None:
    strong = predict_sweep(cfg_with(penalties=["l2"], C=FloatRange(1e-4, 1e-3, True)), cal, rows=ROWS, cores=2)
    weak = predict_sweep(cfg_with(penalties=["l2"], C=FloatRange(10.0, 100.0, True)), cal, rows=ROWS, cores=2)
    assert weak.trial.mid > 1.5 * strong.trial.mid
    assert weak.iterations > strong.iterations


def test_a_trial_follows_the_law_it_was_calibrated_on(cal: Calibration) -> None:
    """At the full size, a trial's prediction is the synthetic law's time, near enough."""
    n_fit = parts_of(ROWS, 0.2, 0.2, 1).n_fit
    for C, ratio in ((1e-3, 0.0), (1.0, 0.0), (1.0, 1.0)):
        p = ModelParams(C, ratio, "l1" if ratio else "l2", None, "none", 300, 1e-4)
        it = law_iterations(C, n_fit, ratio)
        truth = law_fit_seconds(n_fit, 2, 4 + it * (2 if ratio else 1)) + 0.1 + 1e-6 * ROWS * 0.2 / 2
        assert cal.trial(p, rows=ROWS, cores=2).mid == pytest.approx(truth, rel=0.25)
        assert cal.iterations is not None
        assert cal.iterations.iterations(p, n_fit) == pytest.approx(it, rel=0.25)


def test_cores_help_only_up_to_the_partitions() -> None:
    cal = synthetic_calibration()
    assert cal.machines(250_000, 16) == 3  # ceil(250k / 100k) partitions
    assert cal.machines(50_000, 16) == 1
    p = ModelParams(1.0, 0.0, "l2", None, "none", 300, 1e-4)
    small = 400_000  # fitting part 240k rows: 3 partitions
    assert cal.trial(p, rows=small, cores=8).mid == pytest.approx(cal.trial(p, rows=small, cores=3).mid)
    assert cal.trial(p, rows=ROWS, cores=4).mid < cal.trial(p, rows=ROWS, cores=1).mid


def test_speed_divides_and_cv_multiplies() -> None:
    cal = synthetic_calibration()
    p = ModelParams(1.0, 0.0, "l2", None, "none", 300, 1e-4)
    one = cal.trial(p, rows=ROWS, cores=2)
    assert cal.trial(p, rows=ROWS, cores=2, speed=2.0).mid == pytest.approx(one.mid / 2)
    cv = dataclasses.replace(cal, folds=5)
    # 5 fits, each on 4/5 of train+validation (0.64 of the rows against the split's 0.6)
    assert 4.5 * one.mid < cv.trial(p, rows=ROWS, cores=2).mid < 6.5 * one.mid
    assert parts_of(1000, 0.2, 0.2, 5).n_fit == pytest.approx(640)
    assert parts_of(1000, 0.2, 0.2, 5).n_held == pytest.approx(160)


def test_known_trials() -> None:
    assert known_trials(cfg_with(sampler="random", n_trials=40)) == 40
    assert known_trials(cfg_with(sampler="tpe", n_trials=40, n_startup_trials=10)) == 10
    assert known_trials(cfg_with(sampler="tpe", n_trials=4, n_startup_trials=10)) == 4
    assert known_trials(cfg_with(sampler="grid", n_trials=40)) == 0


def test_draws_are_the_tpe_sweeps_first_trials() -> None:
    """What makes the startup trials known: TPE's random start proposes what a seeded RandomSampler does."""
    import optuna

    from lrsweep.config import validate
    from lrsweep.space import suggest
    from lrsweep.sweep import _sampler

    for multiclass in (False, True):  # a multi-class target: the search's modes are drawn too (both: searched)
        cfg = cfg_with(n_trials=8, multiclass="both")
        pool = validate(cfg)
        study = optuna.create_study(sampler=_sampler(cfg), direction="maximize")
        sweep_draws = []
        for i in range(8):
            t = study.ask()
            sweep_draws.append(suggest(t, cfg.search, cfg.threshold, pool, multiclass))
            study.tell(t, float(i % 3))
        assert draw_configs(cfg, 8, multiclass=multiclass) == sweep_draws
        assert {p.multiclass for p in sweep_draws} == ({"ovr", "multinomial"} if multiclass else {None})


def test_estimate_arithmetic() -> None:
    e = Estimate.spread(10.0, 0.1)
    assert e.low == pytest.approx(10 * math.exp(-0.2)) and e.high == pytest.approx(10 * math.exp(0.2))
    assert e.contains(10.0) and not e.contains(20.0)
    assert (e + e).mid == 20.0 and e.scaled(3).high == pytest.approx(3 * e.high)


def test_a_halving_sweep_is_predicted_rung_by_rung(cal: Calibration) -> None:
    """search.fidelity=halving: a trial costs its rungs, each fitted on its share of the training rows, weighted
    by the share of trials expected to run it (1, 1/eta, 1/eta^2)."""
    full = predict_sweep(cfg_with(n_trials=10, sampler="random"), cal, rows=ROWS, cores=2)
    cfg = cfg_with(n_trials=10, sampler="random", fidelity="halving", eta=3, rungs=3)
    halving = predict_sweep(cfg, cal, rows=ROWS, cores=2)
    draws = draw_configs(cfg, 10)

    def rung(p: ModelParams, fraction: float) -> float:
        return cal.trial_parts(p, rows=ROWS, cores=2, fraction=fraction)[0]

    expected = sum(rung(p, 1 / 9) + rung(p, 1 / 3) / 3 + rung(p, 1.0) / 9 for p in draws)
    assert halving.trials.mid == pytest.approx(expected + cal.cold_start_seconds)
    assert all(rung(p, 1 / 9) < rung(p, 1 / 3) < rung(p, 1.0) for p in draws)
    assert halving.trials.mid < 0.7 * full.trials.mid  # fixed costs (scoring all of validation) stay
    assert halving.setup == full.setup and halving.refit == full.refit  # the refit still fits all the rows


def test_rungs_over_iterations_are_predicted_with_the_iterations_cut(cal: Calibration) -> None:
    """search.rung_resource=iterations: a rung fits all the rows with its share of search.max_iter (at most as
    many iterations as the model predicts for the configuration)."""
    cfg = cfg_with(n_trials=10, sampler="random", fidelity="halving", eta=3, rungs=3, max_iter=90)
    cfg.search.rung_resource = "iterations"
    halving = predict_sweep(cfg, cal, rows=ROWS, cores=2)
    draws = draw_configs(cfg, 10)

    def rung(p: ModelParams, cap: int) -> float:
        return cal.trial_parts(dataclasses.replace(p, max_iter=cap), rows=ROWS, cores=2)[0]

    expected = sum(rung(p, 10) + rung(p, 30) / 3 + rung(p, 90) / 9 for p in draws)
    assert halving.trials.mid == pytest.approx(expected + cal.cold_start_seconds)
    n_fit = cal._parts(ROWS).n_fit
    assert cal.iterations is not None
    capped = [p for p in draws if cal.iterations.iterations(p, n_fit) > 10]
    assert capped and all(rung(p, 10) < rung(p, 90) for p in capped)  # fewer passes where the cap bites
