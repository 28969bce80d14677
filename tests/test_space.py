"""lrsweep.space: the conditional search space never proposes a configuration scikit-learn refuses."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import FixedTrial
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import lrsweep
from lrsweep.backends.sklearn import SOLVER_PENALTIES, SklearnBackend
from lrsweep.config import PENALTIES, FloatRange, SearchConfig
from lrsweep.space import ModelParams, grid, solver_pool, suggest
from lrsweep.thresholds import F1Threshold, SearchedThreshold, ThresholdConfig, strategy_config

optuna.logging.set_verbosity(optuna.logging.WARNING)

SEED = 11
CONF = Path(lrsweep.__file__).parent / "conf"
SPACES = ["default", "l1", "l2", "elasticnet"]
# the regularisation each family means, in scikit-learn >= 1.8 terms (C, l1_ratio)
FAMILY = {"none": (math.inf, 0.0), "l2": (1.0, 0.0), "l1": (1.0, 1.0), "elasticnet": (1.0, 0.5)}


def pool(search: SearchConfig, has_solvers: bool = True):
    """The solver pool the scikit-learn backend gives ``search`` (None: a backend without solver choice)."""
    return solver_pool(search, SklearnBackend.capabilities) if has_solvers else None


def load_search(name: str) -> SearchConfig:
    """The shipped search/<name>.yaml on its schema, as Hydra would merge it."""
    node = OmegaConf.merge(OmegaConf.structured(SearchConfig), OmegaConf.load(CONF / "search" / f"{name}.yaml"))
    return OmegaConf.to_object(node)


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    # tiny fits are dominated by BLAS thread start-up otherwise (lbfgs 60 ms -> 8 ms a fit)
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(SEED)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=40) > 0).astype(int)
    return X, y


def fit(params: ModelParams, X, y, max_iter: int = 30) -> LogisticRegression:
    """Fit with the configuration as given (solver, C, l1_ratio, class weight): ValueError if impossible."""
    clf = LogisticRegression(
        C=params.C,
        l1_ratio=params.l1_ratio,
        solver=params.solver,
        class_weight=None if params.class_weight == "none" else params.class_weight,
        max_iter=max_iter,
        tol=params.tol,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert np.all(np.isfinite(clf.coef_))
    return clf


def check_consistent(p: ModelParams, search: SearchConfig, threshold: ThresholdConfig, has_solvers=True) -> None:
    assert p.penalty in search.penalties
    if p.penalty == "none":
        assert math.isinf(p.C) and p.C > 0 and p.l1_ratio == 0.0
    else:
        assert search.C.low <= p.C <= search.C.high
    if p.penalty == "l2":
        assert p.l1_ratio == 0.0
    elif p.penalty == "l1":
        assert p.l1_ratio == 1.0
    elif p.penalty == "elasticnet":
        assert search.l1_ratio.low <= p.l1_ratio <= search.l1_ratio.high
    if has_solvers:
        assert p.solver in SOLVER_PENALTIES and p.penalty in SOLVER_PENALTIES[p.solver]
        if search.solvers is not None:
            assert p.solver in search.solvers
    else:
        assert p.solver is None
    assert p.class_weight in search.class_weight
    assert (p.max_iter, p.tol) == (search.max_iter, search.tol)
    if threshold.strategy == "searched":
        assert threshold.low <= p.threshold <= threshold.high
    else:
        assert p.threshold is None


# -- the solver table itself ------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", list(SOLVER_PENALTIES))
def test_solver_table_matches_scikit_learn(solver, tiny):
    """SOLVER_PENALTIES lists exactly the families scikit-learn accepts for each solver."""
    X, y = tiny
    for penalty in PENALTIES:
        C, r = FAMILY[penalty]
        p = ModelParams(C, r, penalty, solver, "none", 30, 1e-4)
        if penalty in SOLVER_PENALTIES[solver]:
            fit(p, X, y)
        else:
            with pytest.raises(ValueError):
                fit(p, X, y)


# -- sampled trials ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("space", SPACES)
def test_random_sampler_never_proposes_an_impossible_fit(space, tiny):
    X, y = tiny
    search = load_search(space)
    threshold = F1Threshold()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED))
    seen_penalties, seen_solvers = set(), set()
    values = np.random.default_rng(SEED).random(60)
    for value in values:
        trial = study.ask()
        p = suggest(trial, search, threshold, pool(search))
        check_consistent(p, search, threshold)
        fit(p, X, y, max_iter=5)  # raises ValueError for an impossible (solver, penalty) pair
        # what Optuna records is conditional: C only with a penalty, l1_ratio only for elastic net
        assert ("C" in trial.params) == (p.penalty != "none")
        assert ("l1_ratio" in trial.params) == (p.penalty == "elasticnet")
        assert ("penalty" in trial.params) == (len(search.penalties) > 1)
        assert not any(k.startswith("solver_") and k != f"solver_{p.penalty}" for k in trial.params)
        seen_penalties.add(p.penalty)
        seen_solvers.add(p.solver)
        study.tell(trial, float(value))
    assert seen_penalties == set(search.penalties)
    able = {s for s, fams in SOLVER_PENALTIES.items() if set(fams) & set(search.penalties)}
    assert seen_solvers == able  # every solver able to fit some family gets proposed


def test_tpe_sampler_with_conditional_parameters(tiny):
    X, y = tiny
    search = load_search("default")
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED, n_startup_trials=5))
    for i in range(25):
        trial = study.ask()
        p = suggest(trial, search, F1Threshold(), pool(search))
        check_consistent(p, search, F1Threshold())
        fit(p, X, y, max_iter=10)
        study.tell(trial, float(i % 7))


def test_penalty_none_gives_infinite_C_without_asking_for_it():
    search = load_search("default")
    # FixedTrial raises for a parameter it was not given: C and l1_ratio must not be asked for
    p = suggest(
        FixedTrial({"penalty": "none", "solver_none": "sag", "class_weight": "balanced"}), search, F1Threshold(),
        pool(search),
    )  # fmt: skip
    assert math.isinf(p.C) and p.penalty == "none" and p.solver == "sag" and p.class_weight == "balanced"
    assert p.l1_ratio == 0.0
    assert p.label().startswith("C=inf")


def test_fixed_trial_values_are_used():
    search = load_search("default")
    params = {"penalty": "elasticnet", "C": 0.3, "l1_ratio": 0.25, "solver_elasticnet": "saga", "class_weight": "none"}
    p = suggest(FixedTrial(params), search, F1Threshold(), pool(search))
    assert (p.C, p.l1_ratio, p.penalty, p.solver, p.class_weight) == (0.3, 0.25, "elasticnet", "saga", "none")


def test_fixed_ranges_are_not_suggested():
    search = SearchConfig(
        penalties=["elasticnet"],
        C=FloatRange(2.0, 2.0, True),
        l1_ratio=FloatRange(0.4, 0.4, False),
        class_weight=["none"],
    )
    # nothing to choose: an empty FixedTrial must do
    p = suggest(FixedTrial({}), search, F1Threshold(), pool(search))
    assert (p.C, p.l1_ratio, p.penalty, p.solver, p.class_weight) == (2.0, 0.4, "elasticnet", "saga", "none")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED))
    trial = study.ask()
    suggest(trial, search, F1Threshold(), pool(search))
    assert trial.params == {}


def test_has_solvers_false_yields_no_solver():
    search = load_search("default")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED))
    for _ in range(30):
        trial = study.ask()
        p = suggest(trial, search, F1Threshold(), None)
        check_consistent(p, search, F1Threshold(), has_solvers=False)
        assert not any(k.startswith("solver") for k in trial.params)
        study.tell(trial, 0.0)


def test_restricted_solvers_are_respected(tiny):
    X, y = tiny
    search = SearchConfig(penalties=["none", "l2", "l1"], solvers=["liblinear", "newton-cg"])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED))
    for _ in range(40):
        trial = study.ask()
        p = suggest(trial, search, F1Threshold(), pool(search))
        check_consistent(p, search, F1Threshold())
        fit(p, X, y, max_iter=20)
        study.tell(trial, 0.0)


def test_searched_threshold_is_suggested_in_range():
    thr = SearchedThreshold(low=0.2, high=0.7)
    l2 = load_search("l2")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED))
    values = []
    for _ in range(20):
        trial = study.ask()
        p = suggest(trial, l2, thr, pool(l2))
        assert "threshold" in trial.params
        values.append(p.threshold)
        study.tell(trial, 0.0)
    assert min(values) >= 0.2 and max(values) <= 0.7 and len(set(values)) > 1


# -- the grid ---------------------------------------------------------------------------------------------
def expected_grid_size(search: SearchConfig, threshold: ThresholdConfig, has_solvers: bool) -> int:
    n = search.grid_points
    n_c = 1 if search.C.low == search.C.high else n
    n_r = 1 if search.l1_ratio.low == search.l1_ratio.high else n
    n_t = n if threshold.strategy == "searched" else 1
    total = 0
    for pen in search.penalties:
        pool = list(SOLVER_PENALTIES) if search.solvers is None else search.solvers
        n_s = sum(pen in SOLVER_PENALTIES[s] for s in pool) if has_solvers else 1
        total += (1 if pen == "none" else n_c) * (n_r if pen == "elasticnet" else 1) * n_s
    return total * len(search.class_weight) * n_t


GRID_CASES = [
    (space, thr, has)
    for space in SPACES
    for thr in ("f1", "searched")
    for has in (True, False)
    if not (thr == "searched" and space in ("l1", "l2"))
]


@pytest.mark.parametrize(("space", "strategy", "has_solvers"), GRID_CASES)
def test_grid_points_are_distinct_valid_and_complete(space, strategy, has_solvers, tiny):
    X, y = tiny
    search = load_search(space)
    search.grid_points = 3
    thr = strategy_config(strategy)
    points = grid(search, thr, pool(search, has_solvers))
    keys = [json.dumps(p, sort_keys=True) for p in points]
    assert len(set(keys)) == len(keys)
    assert len(points) == expected_grid_size(search, thr, has_solvers)
    made = set()
    for point in points:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # FixedTrial warns for a value outside the distribution
            p = suggest(FixedTrial(point), search, thr, pool(search, has_solvers))
        check_consistent(p, search, thr, has_solvers=has_solvers)
        made.add(p)
    assert len(made) == len(points)  # distinct parameter dicts are distinct configurations
    if has_solvers:
        for p in list(made)[:: max(1, len(made) // 25)]:
            fit(p, X, y, max_iter=10)


def test_grid_covers_range_ends_and_omits_fixed_parameters():
    search = SearchConfig(
        penalties=["l2"], C=FloatRange(1e-2, 1e2, True), solvers=["lbfgs"], class_weight=["none"], grid_points=5
    )
    points = grid(search, F1Threshold(), pool(search))
    cs = sorted(p["C"] for p in points)
    assert cs[0] == pytest.approx(1e-2) and cs[-1] == pytest.approx(1e2)
    np.testing.assert_allclose(np.diff(np.log10(cs)), 1.0)  # log-spaced
    assert all(set(p) == {"C"} for p in points)
    fixed = SearchConfig(penalties=["l2"], C=FloatRange(1.0, 1.0, True), solvers=["lbfgs"], class_weight=["none"])
    assert grid(fixed, F1Threshold(), pool(fixed)) == [{}]


@pytest.mark.parametrize(
    "search",
    [
        SearchConfig(penalties=["none", "l1"], grid_points=2),
        SearchConfig(penalties=["l2", "elasticnet"], solvers=["saga", "lbfgs"], class_weight=["balanced"]),
        SearchConfig(penalties=["elasticnet"], l1_ratio=FloatRange(0.5, 0.5), grid_points=4),
    ],
    ids=["none+l1", "l2+elasticnet", "elasticnet-fixed-ratio"],
)
def test_grid_of_hand_made_spaces(search):
    thr = F1Threshold()
    points = grid(search, thr, pool(search))
    assert len(points) == expected_grid_size(search, thr, True)
    made = {suggest(FixedTrial(p), search, thr, pool(search)) for p in points}
    assert len(made) == len(points)
    for p in made:
        check_consistent(p, search, thr)
