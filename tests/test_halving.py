"""Successive halving over data fractions (search.fidelity=halving) on scikit-learn, telco churn: the rungs are
nested and seeded, a pruned trial never fits the next rung, the pruner's decisions are the promotion rule's
(lrsweep.halving's quota, or Optuna's asynchronous successive halving) over every trial of the study (a resumed
study included), the best trial and the refit use all the rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lrsweep.backends.sklearn import SklearnBackend
from lrsweep.config import Config, search_identity, validate
from lrsweep.data import open_data
from lrsweep.errors import LrsweepError
from lrsweep.report import format_summary
from lrsweep.sweep import run_sweep
from tests.e2e_helpers import study_trials


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    c = Config()  # the bundled telco churn table
    c.search.fidelity = "halving"
    c.search.solvers = ["lbfgs", "saga"]
    c.search.n_trials = 12
    c.progress = False
    c.tracking.enabled = False
    return c


class RecordingBackend(SklearnBackend):
    """The real backend, noting how many rows every fit got (trial by trial: the sweep runs one at a time)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fits: list[tuple[str, int]] = []  # (what: "evaluate" | "refit", rows fitted)
        self.fractions: list[float] = []
        self.caps: list[int] = []  # max_iter of every fit, in order

    def evaluate(self, params, fold=None, fraction=1.0):  # type: ignore[override]
        self.fractions.append(fraction)
        return super().evaluate(params, fold, fraction)

    def _fit(self, clf, X, y, max_iter):  # type: ignore[override]
        self.fits.append(("refit" if hasattr(X, "columns") else "evaluate", X.shape[0]))
        self.caps.append(max_iter)
        return super()._fit(clf, X, y, max_iter)


def _prepared(cfg: Config, seed: int | None = None) -> SklearnBackend:
    backend = SklearnBackend(cfg.backend, seed=cfg.seed if seed is None else seed)
    backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
    return backend


def test_rung_rows_are_nested_seeded_and_keep_the_class_shares(cfg: Config):
    backend = _prepared(cfg)
    y = backend._parts[0][1]
    ninth, third = backend.fraction_rows(1 / 9), backend.fraction_rows(1 / 3)
    assert len(ninth) == round(len(y) / 9) and len(third) == round(len(y) / 3)
    assert set(ninth) <= set(third)  # nested
    assert np.array_equal(_prepared(cfg).fraction_rows(1 / 9), ninth)  # seeded: the same rows again
    other = _prepared(cfg, seed=cfg.seed + 1).fraction_rows(1 / 9)
    assert not np.array_equal(other, ninth)  # and another seed draws other rows
    # stratified: the positive share of a rung is the part's to within one row
    assert abs(y[ninth].sum() - y.mean() * len(ninth)) <= 1.0
    assert abs(y[third].sum() - y.mean() * len(third)) <= 1.0


def _halving_says(trials: list[Any], eta: int, promotion: str) -> dict[int, int]:
    """Trial number -> how many rungs successive halving lets it run, the trials taken in order (one at a time).
    At a rung, among the n values reported there so far (its own included):
    asha (Optuna's SuccessiveHalvingPruner, min_resource 1, rate 0): it goes on when among the best max(1, n // eta);
    quota (lrsweep.halving): when it is the best so far, or among the best n // eta while fewer than n // eta have
    gone on from there. Otherwise it stops there."""
    reached: dict[int, list[float]] = {}  # rung -> the values that competed there
    went_on: dict[int, int] = {}  # rung -> trials that went on from there
    out: dict[int, int] = {}
    for t in trials:
        steps = sorted(t.intermediate_values)
        out[t.number] = len(steps)
        if t.user_attrs.get("lrsweep_record", {}).get("tags", {}).get("lrsweep.repeat_of"):
            continue  # a repeated configuration replays its original's values without competing again
        for r, step in enumerate(steps[:-1] if t.state.name == "COMPLETE" else steps):
            value = t.intermediate_values[step]
            competing = sorted(reached.setdefault(r, []) + [value], reverse=True)
            reached[r].append(value)
            if promotion == "asha":
                k = max(len(competing) // eta, 1)
                goes_on = value >= competing[k - 1]
            else:
                k = len(competing) // eta
                within = k > 0 and value >= competing[k - 1]
                goes_on = value == competing[0] or (within and went_on.get(r, 0) < k)
            if not goes_on:
                out[t.number] = r + 1
                break
            went_on[r] = went_on.get(r, 0) + 1
    return out


@pytest.mark.parametrize("promotion", ["quota", "asha"])
def test_a_halving_sweep_prunes_by_rung_refits_on_all_rows_and_resumes_its_rungs(
    cfg: Config, tmp_path: Path, promotion: str
):
    cfg.search.promotion = promotion
    rows = open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed).pandas()[1]
    n_train, n_trainval = len(rows.train), len(rows.trainval)
    first = RecordingBackend(cfg.backend, seed=cfg.seed)
    run_sweep(cfg, backend=first)
    cfg.search.n_trials = 24  # the same study, resumed: its rungs go on with the first call's values
    backend = RecordingBackend(cfg.backend, seed=cfg.seed)
    result = run_sweep(cfg, backend=backend)

    (trials,) = study_trials(tmp_path).values()
    trials = sorted(trials, key=lambda t: t.number)
    assert len(trials) == 24 and result.n_finished == 24 and result.n_new == 12
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(pruned) + len(complete) == 24 and len(pruned) >= 8  # most configurations stop early
    # reported at steps 1, 3, 9 (rows in units of the smallest rung); complete trials ran every rung
    assert all(sorted(t.intermediate_values) == [1, 3, 9] for t in complete)
    assert all(sorted(t.intermediate_values) in ([1], [1, 3]) for t in pruned)
    # each trial stopped exactly where successive halving over all 24 trials says: the resumed call's pruner
    # competed against the first call's rung values
    assert {t.number: len(t.intermediate_values) for t in trials} == _halving_says(trials, 3, promotion)

    # a pruned trial never fitted the next rung: the fits of the resumed call, trial by trial
    fits = [n for what, n in backend.fits if what == "evaluate"]
    sizes = {round(n_train / 9): 1, round(n_train / 3): 2, n_train: 3}
    expected = []
    for t in trials[12:]:
        if "lrsweep.repeat_of" in t.user_attrs["lrsweep_record"]["tags"]:
            continue
        expected += [size for size, rung in sizes.items() if rung <= len(t.intermediate_values)]
    assert sorted(fits) == sorted(expected) and len(fits) == len(expected)
    assert set(backend.fractions) <= {1 / 9, 1 / 3, 1.0} and 1 / 9 in backend.fractions

    # the trial records say the rung; the best is a trial on all the rows, refitted on train+validation
    records = {t.number: t.user_attrs["lrsweep_record"] for t in trials}
    for t in trials:
        m = records[t.number]["metrics"]
        assert m["rung"] == len(t.intermediate_values)
        assert m["train_fraction"] == pytest.approx({1: 1 / 9, 2: 1 / 3, 3: 1.0}[len(t.intermediate_values)])
    best = records[result.best_trial]
    assert best["state"] == "COMPLETE" and best["metrics"]["train_fraction"] == 1.0
    assert result.best_value == pytest.approx(max(t.value for t in complete))
    assert backend.fits[-1] == ("refit", n_trainval)
    assert sum(result.rungs.values()) == 24 and result.rungs.get("all") == len(complete)
    assert all("of the training rows" in records[t.number]["tags"]["lrsweep.pruned"] for t in pruned)
    (line,) = [x for x in format_summary(result).splitlines() if "halving" in x]
    assert f"; {len(complete)} ran on all of them" in line and "stopped " in line and " at 1/9" in line


def test_rungs_over_iterations_fit_all_the_rows_with_a_share_of_max_iter(cfg: Config, tmp_path: Path):
    """search.rung_resource=iterations: rungs of 10, 30 and 90 iterations (max_iter 90, eta 3), each on all the
    training rows; a pruned trial never fits the next rung; the records and the summary say iterations."""
    cfg.search.rung_resource = "iterations"
    cfg.search.max_iter = 90
    n_train = len(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed).pandas()[1].train)
    backend = RecordingBackend(cfg.backend, seed=cfg.seed)
    result = run_sweep(cfg, backend=backend)

    (trials,) = study_trials(tmp_path).values()
    trials = sorted(trials, key=lambda t: t.number)
    assert set(backend.fractions) == {1.0}  # never a share of the rows
    evaluated = [(n, cap) for (what, n), cap in zip(backend.fits, backend.caps, strict=True) if what == "evaluate"]
    assert {n for n, _ in evaluated} == {n_train}
    expected = []
    for t in trials:
        if "lrsweep.repeat_of" not in t.user_attrs["lrsweep_record"]["tags"]:
            expected += [10, 30, 90][: len(t.intermediate_values)]
    assert [cap for _, cap in evaluated] == expected  # trial by trial, rung by rung
    assert 10 in expected and expected.count(90) < expected.count(10)  # some stopped early
    assert {t.number: len(t.intermediate_values) for t in trials} == _halving_says(trials, 3, "quota")
    for t in trials:
        m = t.user_attrs["lrsweep_record"]["metrics"]
        assert m["train_fraction"] == 1.0
        assert m["rung_share"] == pytest.approx({1: 1 / 9, 2: 1 / 3, 3: 1.0}[len(t.intermediate_values)])
        if t.state.name == "PRUNED":
            assert "of the iterations" in t.user_attrs["lrsweep_record"]["tags"]["lrsweep.pruned"]
    assert backend.caps[-1] == 90 and backend.fits[-1][0] == "refit"  # the refit runs to max_iter
    (line,) = [x for x in format_summary(result).splitlines() if "halving" in x]
    assert "of the iterations (search.max_iter)" in line and "at 1/9" in line


def test_halving_settings_are_checked(cfg: Config):
    cfg.cv.folds = 5
    with pytest.raises(LrsweepError, match="choose one"):
        validate(cfg)
    cfg.cv.folds = 1
    for key, value, said in [
        ("eta", 1, "search.eta=1"), ("rungs", 1, "search.rungs=1"), ("fidelity", "x", "x"),
        ("rung_resource", "epochs", "search.rung_resource"), ("promotion", "sync", "search.promotion"),
    ]:  # fmt: skip
        bad = Config()
        setattr(bad.search, key, value)
        bad.search.fidelity = "halving" if key != "fidelity" else value
        with pytest.raises(LrsweepError, match=said):
            validate(bad)
    cfg.search.eta, cfg.search.rungs = 10, 6
    with pytest.raises(LrsweepError, match="fewer rungs"):
        validate(cfg)


def test_halving_is_part_of_the_study_identity_and_full_fidelity_studies_keep_their_names():
    full, halving = Config(), Config()
    halving.search.fidelity = "halving"
    assert not {"fidelity", "eta", "rungs"} & set(search_identity(full)["search"])
    assert search_identity(halving)["search"]["fidelity"] == "halving"
    assert full.search.fractions() == [1.0]
    assert halving.search.fractions() == pytest.approx([1 / 9, 1 / 3, 1.0])


def test_a_rung_of_a_single_class_is_one_line_in_the_setup_before_any_trial(cfg: Config, tmp_path: Path):
    """A rare positive class and a small first rung (1/100 of 600 training rows: 6 rows, 12 positives among the
    600): the rung is drawn and checked while the sweep sets up, so the sweep stops with one line naming the rung
    and the fix, before any trial and before a study exists (it used to fail every trial inside its first rung)."""
    rng = np.random.default_rng(0)
    y = np.zeros(1000, dtype=int)
    y[rng.choice(1000, size=20, replace=False)] = 1
    path = tmp_path / "rare.csv"
    pd.DataFrame({"x": rng.normal(size=1000) + y, "y": y}).to_csv(path, index=False)
    cfg.dataset.name, cfg.dataset.path, cfg.dataset.target, cfg.dataset.positive = None, str(path), "y", None
    cfg.search.eta, cfg.search.rungs = 10, 3
    backend = RecordingBackend(cfg.backend, seed=cfg.seed)
    with pytest.raises(LrsweepError, match=r"^0\.01 of the training rows \(6\) hold a single class") as err:
        run_sweep(cfg, backend=backend)
    assert "search.rungs" in err.value.fix
    assert backend.fractions == [] and backend.fits == []  # no trial ran
    assert not list(tmp_path.rglob("*.journal"))  # no study was opened


def _simulate(pruner: Any, values: list[float], eta: int = 3, rungs: int = 3, maximize: bool = True) -> list[int]:
    """Rungs each trial ran when ``pruner`` decides, trial by trial; a trial scores ``values[i]`` at every rung."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize" if maximize else "minimize", pruner=pruner)
    ran = []
    for v in values:
        trial = study.ask()
        for r in range(rungs):
            trial.report(v, eta**r)
            if r < rungs - 1 and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                ran.append(r + 1)
                break
        else:
            study.tell(trial, v)
            ran.append(rungs)
    return ran


def test_quota_promotions_keep_each_rung_to_its_share_where_asha_promotes_most_late_trials():
    """A sampler that improves (TPE): values trend upwards with noise. Optuna's asynchronous rule ranks each trial
    against those before it, so most late trials go on; the quota lets about 1/eta of a rung's trials (and each new
    best) go on."""
    import optuna

    from lrsweep.halving import QuotaHalvingPruner

    rng = np.random.default_rng(0)
    values = list(0.70 + 0.004 * np.arange(30) + rng.normal(0, 0.02, 30))
    asha = _simulate(optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3), values)
    quota = _simulate(QuotaHalvingPruner(3, 3), values)
    records = sum(1 for i, v in enumerate(values) if v >= max(values[: i + 1]))
    went_on = sum(r >= 2 for r in quota)
    assert went_on <= 30 // 3 + records
    assert went_on < sum(r >= 2 for r in asha) and sum(quota) < sum(asha)
    top = int(np.argmax(values))
    assert quota[top] == 3  # the best configuration ran every rung
    # the same, minimising (log loss)
    assert _simulate(QuotaHalvingPruner(3, 3), [-v for v in values], maximize=False) == quota


def test_quota_promotion_by_hand():
    """eta 3, two rungs. Trial 0 is the best so far: on. Trial 1, worse, among none of the best 2 // 3 = 0: stops.
    Trial 2: the best again: on. Trial 3 (0.5): among the best 4 // 3 = 1? no (0.9 is): stops. Trial 4 (0.85): the
    best 5 // 3 = 1? no: stops. Trial 5 (0.88): among the best 6 // 3 = 2, but 2 went on already: stops. Trial 6
    (0.95): the best: on."""
    from lrsweep.halving import QuotaHalvingPruner

    ran = _simulate(QuotaHalvingPruner(3, 2), [0.6, 0.4, 0.9, 0.5, 0.85, 0.88, 0.95], rungs=2)
    assert ran == [2, 1, 2, 1, 1, 1, 2]
    # a place left: trial 5 (0.7) is among the best 6 // 3 = 2, and only trial 0 went on before it
    assert _simulate(QuotaHalvingPruner(3, 2), [0.9, 0.4, 0.5, 0.3, 0.2, 0.7], rungs=2) == [2, 1, 1, 1, 1, 2]
    assert _simulate(QuotaHalvingPruner(3, 2), [float("nan"), 0.4], rungs=2) == [1, 2]
