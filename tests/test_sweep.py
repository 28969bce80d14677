"""run_sweep called as a library: failing trials, CV with pruning, samplers, n_jobs, data on a 200-row table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrsweep.backends import Evaluation
from lrsweep.backends.sklearn import SklearnBackend
from lrsweep.config import Config
from lrsweep.errors import LrsweepError
from lrsweep.metrics import curve_from_scores, log_loss
from lrsweep.sweep import run_sweep
from lrsweep.thresholds import strategy_config
from lrsweep.tracking import pinned
from tests.e2e_helpers import study_trials


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(["x", "y", "z"], n)})
    logit = 1.5 * df["a"] - df["b"] + (df["c"] == "x")
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    path = tmp_path / "small.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def cfg(table_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.chdir(tmp_path)
    c = Config()
    c.dataset.name, c.dataset.path, c.dataset.target, c.dataset.positive = None, str(table_csv), "y", None
    c.search.n_trials = 8
    c.search.solvers = ["lbfgs", "liblinear", "saga"]
    c.progress = False
    c.tracking.enabled = False
    return c


class FlakyBackend(SklearnBackend):
    """Raises a numerical error for every liblinear fit: such trials must be FAIL and the sweep go on."""

    def evaluate(self, params, fold=None):  # type: ignore[override]
        if params.solver == "liblinear":
            raise FloatingPointError("overflow in exp")
        return super().evaluate(params, fold)


def test_failing_trials_are_recorded_and_the_sweep_goes_on(cfg: Config, tmp_path: Path):
    cfg.search.n_trials = 12
    cfg.tracking.enabled, cfg.tracking.mode = True, "inline"
    cfg.tracking.artifacts = cfg.tracking.log_model = False
    result = run_sweep(cfg, backend=FlakyBackend(cfg.backend, seed=cfg.seed))
    assert result.n_finished == 12
    (trials,) = study_trials(tmp_path).values()
    failed = [t for t in trials if t.state.name == "FAIL"]
    # exactly the liblinear trials fail (the solver is drawn under a per-penalty name), and the others complete
    liblinear = [t for t in trials if "liblinear" in {v for k, v in t.params.items() if k.startswith("solver")}]
    assert failed == liblinear and 1 <= len(failed) < 12
    assert result.states == {"FAIL": len(failed), "COMPLETE": 12 - len(failed)}

    from tests.e2e_helpers import mlflow_runs

    _, children = mlflow_runs(tmp_path, experiment="lrsweep-small")
    bad = [c for c in children if c.data.tags["lrsweep.state"] == "FAIL"]
    assert len(bad) == len(failed)
    assert all(c.info.status == "FAILED" and "overflow in exp" in c.data.tags["lrsweep.failure"] for c in bad)


def test_every_trial_failing_is_one_clear_error(cfg: Config):
    cfg.search.solvers = ["liblinear"]
    cfg.search.penalties = ["l2", "l1"]
    with pytest.raises(LrsweepError, match="no trial completed.*overflow in exp"):
        run_sweep(cfg, backend=FlakyBackend(cfg.backend, seed=cfg.seed))


class PoorOnTheFirstFoldBackend(SklearnBackend):
    """Balanced configurations score their first CV fold with inverted probabilities (ROC AUC 1 - AUC): far below
    the median of the others, so after the pruner's 5 startup trials every such trial must be pruned there."""

    def evaluate(self, params, fold=None):  # type: ignore[override]
        ev = super().evaluate(params, fold)
        if fold == 0 and params.class_weight == "balanced":
            y, p = ev.scores
            return Evaluation(curve_from_scores(y, 1 - p), log_loss(y, 1 - p), ev.n, ev.fit, (y, 1 - p))
        return ev


def _median_pruner_says(trials: list, n_startup: int = 5) -> dict[int, int | None]:
    """Trial number -> the fold at which Optuna's MedianPruner (maximise; prune when the best value so far is below
    the median of the COMPLETE trials' values at that fold, once n_startup trials are complete) stops it, or None."""
    out: dict[int, int | None] = {}
    for i, t in enumerate(trials):
        done = [c for c in trials[:i] if c.state.name == "COMPLETE"]
        out[t.number] = None
        values = t.intermediate_values
        for k in sorted(values):
            if len(done) < n_startup:
                break
            best = max(values[j] for j in values if j <= k)
            if best < np.median([c.intermediate_values[k] for c in done if k in c.intermediate_values]):
                out[t.number] = k
                break
    return out


def test_cv_prunes_configurations_poor_on_the_first_fold(cfg: Config, tmp_path: Path):
    from mlflow import MlflowClient

    from tests.e2e_helpers import mlflow_runs

    folds = 4
    cfg.cv.folds = folds
    # a grid, so the configurations and their order are fixed: (C_1, none), (C_1, balanced), (C_2, none), ...
    cfg.search.sampler, cfg.search.grid_points, cfg.search.n_trials = "grid", 6, 12
    cfg.search.penalties, cfg.search.solvers, cfg.search.class_weight = ["l2"], ["lbfgs"], ["none", "balanced"]
    cfg.tracking.enabled, cfg.tracking.mode = True, "inline"
    cfg.tracking.artifacts = cfg.tracking.log_model = False
    result = run_sweep(cfg, backend=PoorOnTheFirstFoldBackend(cfg.backend, seed=cfg.seed))

    (trials,) = study_trials(tmp_path).values()
    trials = sorted(trials, key=lambda t: t.number)
    assert len(trials) == 12 and result.n_finished == 12
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(pruned) + len(complete) == 12
    # made to prune: every balanced trial after the first 5 completed ones is pruned at its first fold
    startup = {t.number for t in complete[:5]}
    poor_late = [t for t in trials if t.params["class_weight"] == "balanced" and t.number > max(startup)]
    assert len(poor_late) >= 3
    for t in poor_late:
        assert t.state.name == "PRUNED" and list(t.intermediate_values) == [0], t.number
    assert result.states.get("PRUNED", 0) == len(pruned) >= len(poor_late)
    assert all(len(t.intermediate_values) < folds for t in pruned)
    assert all(sorted(t.intermediate_values) == list(range(folds)) for t in complete)
    # and every trial stopped exactly where the median rule says (no more, no fewer)
    rule = _median_pruner_says(trials)
    assert {t.number: (max(t.intermediate_values) if t.state.name == "PRUNED" else None) for t in trials} == rule

    # MLflow: a pruned trial's child run is KILLED, tagged PRUNED, with the folds it ran as steps
    _, children = mlflow_runs(tmp_path, experiment="lrsweep-small")
    by_number = {int(c.data.tags["lrsweep.trial_number"]): c for c in children}
    assert sorted(by_number) == [t.number for t in trials] and len(children) == 12
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    for t in trials:
        run = by_number[t.number]
        assert run.data.tags["lrsweep.state"] == t.state.name
        assert run.info.status == ("KILLED" if t.state.name == "PRUNED" else "FINISHED")
        history = client.get_metric_history(run.info.run_id, "fold_roc_auc")
        assert {m.step: m.value for m in history} == pytest.approx(t.intermediate_values)
    assert all("pruned after fold" in by_number[t.number].data.tags["lrsweep.pruned"] for t in pruned)


def test_cv_objective_is_the_pooled_out_of_fold_roc_auc(cfg: Config, tmp_path: Path, table_csv: Path):
    from sklearn.metrics import roc_auc_score

    from lrsweep.data import split_table
    from tests import reference as ref

    cfg.cv.folds, cfg.cv.prune = 4, False
    cfg.search.n_trials, cfg.search.penalties, cfg.search.solvers = 4, ["l2"], ["lbfgs"]
    cfg.search.class_weight = ["none"]
    run_sweep(cfg)
    (trials,) = study_trials(tmp_path).values()
    df = pd.read_csv(table_csv)
    y = df["y"].to_numpy()
    folds = split_table(y, cfg.split, cfg.cv, cfg.seed).folds
    assert len(trials) == 4 and all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:
        p = {"C": t.params["C"], "solver": "lbfgs", "max_iter": cfg.search.max_iter, "tol": cfg.search.tol}
        held, scores = [], []
        for k, (fit_rows, held_rows) in enumerate(folds):
            model = ref.fit(df, y, fit_rows, p, cfg.seed, numeric=["a", "b"], categorical=["c"])
            s = ref.scores(model, df, held_rows)
            assert t.intermediate_values[k] == pytest.approx(roc_auc_score(y[held_rows], s), abs=1e-9)
            held.append(held_rows)
            scores.append(s)
        # the objective pools the folds' held-out predictions (not the mean of the folds' AUCs)
        assert t.value == pytest.approx(roc_auc_score(y[np.concatenate(held)], np.concatenate(scores)), abs=1e-9)


def test_grid_sampler_covers_the_grid_once(cfg: Config, tmp_path: Path):
    cfg.search.sampler = "grid"
    cfg.search.penalties = ["l2"]
    cfg.search.solvers = ["lbfgs"]
    cfg.search.class_weight = ["none", "balanced"]
    cfg.search.grid_points = 3
    cfg.search.n_trials = 6
    run_sweep(cfg)
    (trials,) = study_trials(tmp_path).values()
    seen = {(round(t.params["C"], 12), t.params["class_weight"]) for t in trials}
    assert len(trials) == 6 and len(seen) == 6
    assert sorted({c for c, _ in seen}) == pytest.approx([1e-4, 1e-1, 1e2])


def test_a_grid_topped_up_queues_each_point_once(cfg: Config, tmp_path: Path):
    """Points queued by an earlier run and not yet run are not queued again (they carry no params until run)."""
    cfg.search.sampler = "grid"
    cfg.search.penalties, cfg.search.solvers, cfg.search.class_weight = ["l2"], ["lbfgs"], ["none", "balanced"]
    cfg.search.grid_points = 4  # 8 points
    cfg.search.n_trials = 4
    run_sweep(cfg)
    cfg.search.n_trials = 8
    run_sweep(cfg)
    (trials,) = study_trials(tmp_path).values()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 8  # nothing left waiting
    assert len({(round(t.params["C"], 12), t.params["class_weight"]) for t in trials}) == 8
    cfg.search.n_trials = 11  # beyond the grid: random draws, not the grid again
    run_sweep(cfg)
    (trials,) = study_trials(tmp_path).values()
    assert len(trials) == 11 and all(t.state.name == "COMPLETE" for t in trials)


def test_parallel_trials_reach_the_target_exactly(cfg: Config, tmp_path: Path):
    cfg.search.n_jobs = 2
    cfg.search.n_trials = 10
    result = run_sweep(cfg)
    (trials,) = study_trials(tmp_path).values()
    assert len(trials) == 10 == result.n_finished
    assert len({t.number for t in trials}) == 10


def test_same_seed_same_trials(cfg: Config, tmp_path: Path):
    first = run_sweep(cfg)
    cfg.study.resume = False
    second = run_sweep(cfg)
    studies = study_trials(tmp_path)
    a, b = (studies[first.study_name], studies[second.study_name])
    assert [t.params for t in a] == [t.params for t in b]
    assert [t.value for t in a] == pytest.approx([t.value for t in b])


def test_searched_threshold_is_a_parameter(cfg: Config, tmp_path: Path):
    cfg.threshold = strategy_config("searched")
    result = run_sweep(cfg)
    (trials,) = study_trials(tmp_path).values()
    assert all(0.05 <= t.params["threshold"] <= 0.95 for t in trials)
    best = max(trials, key=lambda t: t.value)
    assert result.threshold == pytest.approx(best.params["threshold"])


def test_model_requirements_are_the_backends_own_pinned(cfg: Config):
    from importlib.metadata import version

    reqs = pinned(SklearnBackend.capabilities.requirements)
    assert f"scikit-learn=={version('scikit-learn')}" in reqs and f"cloudpickle=={version('cloudpickle')}" in reqs
    assert not any(r.startswith("pyspark") for r in reqs)  # a scikit-learn model does not need Spark to serve


def test_a_ctr_sweep_is_hashed_and_reports_the_bayes_optimal_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from sklearn.metrics import log_loss, roc_auc_score

    from lrsweep.data import split_table
    from lrsweep.datasets.ctr import FEATURE_COLUMNS, ensure_ctr_table, true_probabilities
    from lrsweep.report import format_summary

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LRSWEEP_CACHE", str(tmp_path / "cache"))
    c = Config()
    cols = list(FEATURE_COLUMNS)
    c.dataset.name, c.dataset.rows, c.dataset.target, c.dataset.positive = "ctr", 3000, "click", "1"
    c.dataset.source, c.dataset.generator = "generated", "ctr"
    c.dataset.drop, c.dataset.categorical, c.dataset.hashed = ["hour"], cols, cols
    c.search.penalties, c.search.class_weight, c.search.n_trials, c.search.max_iter = ["l2"], ["none"], 4, 300
    c.progress, c.tracking.enabled = False, False
    result = run_sweep(c)

    # the true model on the same test rows, computed here from the raw Parquet file
    raw = pd.read_parquet(ensure_ctr_table(3000))
    y = raw["click"].to_numpy().astype(int)
    test = split_table(y, c.split, c.cv, c.seed).test
    p_true = true_probabilities(raw.iloc[test])
    assert result.bayes_metrics is not None
    assert result.bayes_metrics["log_loss"] == pytest.approx(log_loss(y[test], p_true), abs=1e-12)
    assert result.bayes_metrics["roc_auc"] == pytest.approx(roc_auc_score(y[test], p_true), abs=1e-12)
    assert "Bayes-opt." in format_summary(result)
    assert result.data["generated"]["params"]["rows"] == 3000
    trials = [t for ts in study_trials(tmp_path).values() for t in ts]
    solvers = {t.user_attrs["lrsweep_record"]["params"].get("solver") for t in trials}
    assert solvers and "newton-cholesky" not in solvers  # it cannot fit 2**20 hashed columns


def test_hashed_coefficients_are_listed_by_bucket(cfg: Config):
    from lrsweep.backends.base import HASHED_COEFFICIENT_ROWS
    from lrsweep.data import open_data
    from lrsweep.space import ModelParams

    cfg.dataset.hashed, cfg.dataset.hash_features = ["c"], 64
    backend = SklearnBackend(seed=cfg.seed)
    backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
    refit = backend.refit(ModelParams(1.0, 0.0, "l2", "lbfgs", "none", 500, 1e-6), 0.5)
    coef = refit.coefficients
    hashed = coef[coef["feature"] == "(hashed)"]
    lr = refit.model.model.estimator_.named_steps["model"]  # inside the label wrapper
    assert list(coef["feature"][:3]) == ["(intercept)", "a", "b"] and 1 <= len(hashed) <= 3  # x, y, z: 3 tokens
    buckets = hashed["level"].str.removeprefix("bucket ").astype(int).to_numpy()
    np.testing.assert_allclose(hashed["coefficient"], lr.coef_[0][2 + buckets])
    assert len(hashed) <= HASHED_COEFFICIENT_ROWS and (np.diff(np.abs(hashed["coefficient"])) <= 0).all()


class WarningBackend(SklearnBackend):
    """Warns twice in every liblinear fit, as a library would (e.g. an ill-conditioned matrix)."""

    def evaluate(self, params, fold=None):  # type: ignore[override]
        import warnings

        if params.solver == "liblinear":
            for _ in range(2):
                warnings.warn("Ill-conditioned matrix (rcond=1e-17)", RuntimeWarning, stacklevel=1)
        return super().evaluate(params, fold)


def test_library_warnings_are_counted_on_the_trial_not_printed(
    cfg: Config, tmp_path: Path, capfd: pytest.CaptureFixture[str]
):
    cfg.search.n_trials = 10
    cfg.tracking.enabled, cfg.tracking.mode = True, "inline"
    cfg.tracking.artifacts = cfg.tracking.log_model = False
    run_sweep(cfg, backend=WarningBackend(cfg.backend, seed=cfg.seed))
    out, err = capfd.readouterr()
    assert "Ill-conditioned" not in out + err

    from tests.e2e_helpers import mlflow_runs

    _, children = mlflow_runs(tmp_path, experiment="lrsweep-small")
    for c in children:
        warned = c.data.params.get("solver") == "liblinear" and "lrsweep.repeat_of" not in c.data.tags
        assert c.data.tags.get("lrsweep.warnings") == ("2" if warned else None), c.info.run_name
        if warned:
            assert c.data.tags["lrsweep.warning"] == "RuntimeWarning: Ill-conditioned matrix (rcond=1e-17)"
    assert any(c.data.tags.get("lrsweep.warnings") for c in children)  # the case this checks happened


def test_the_default_tracking_uri_is_mlflow_s_own(monkeypatch: pytest.MonkeyPatch):
    import mlflow

    from lrsweep.sweep import DEFAULT_TRACKING_URI, _effective_uri

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert _effective_uri(None) == DEFAULT_TRACKING_URI  # the same store as MLflow's default: cwd's mlflow.db
    assert mlflow.get_tracking_uri() in (DEFAULT_TRACKING_URI, f"sqlite:///{Path.cwd() / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert _effective_uri(None) == "http://127.0.0.1:1"


# -- where a sweep writes, checked before any work (issue 12) ---------------------------------------------------
def test_a_study_folder_that_can_be_made_passes_and_nothing_is_left_behind(tmp_path):
    from lrsweep.stores import writable_folder

    writable_folder(tmp_path / "a" / "b", "study.dir")
    assert list(tmp_path.iterdir()) == []  # the probe file is gone and no folder was made


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("file", "study.dir {p} is a file, not a folder"),
        ("file/sub", "study.dir {p} cannot be made: {base}/file is a file"),
        ("/proc/lrsweep-studies", "study.dir {p} cannot be written (No such file or directory in /proc)"),
    ],
    ids=["a-file", "under-a-file", "unwritable"],  # /proc: a place even root cannot write a file in
)
def test_a_study_folder_that_cannot_be_written_is_one_line(tmp_path, where, said):
    from lrsweep.stores import writable_folder

    (tmp_path / "file").write_text("x")
    path = tmp_path / where
    with pytest.raises(LrsweepError) as caught:
        writable_folder(path, "study.dir")
    assert caught.value.problem == said.format(p=path, base=tmp_path)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs under tmp_path."""
    from tests.mounts import tmpfs

    with tmpfs(tmp_path / "tiny", "size=1m") as mount:
        yield mount


def test_a_full_disk_is_one_line_and_the_study_resumes_once_there_is_room(cfg: Config, tiny_disk: Path):
    from lrsweep.config import study_name

    cfg.study.dir = str(tiny_disk)
    cfg.search.n_trials = 400
    cfg.search.penalties, cfg.search.solvers = ["l2", "l1"], ["lbfgs", "liblinear"]
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * (1024 * 1024 - 160 * 1024))  # room for a few dozen trials' journal records
    with pytest.raises(LrsweepError, match="no space left on the device while writing .*journal; free some space"):
        run_sweep(cfg)
    journal = tiny_disk / f"{study_name(cfg)}.journal"
    studies = study_trials(tiny_disk, folder=tiny_disk)
    (trials,) = studies.values()  # the study is readable
    before = {t.number: t.params for t in trials if t.state.name == "COMPLETE"}
    assert len(before) >= 5
    filler.unlink()  # room again: the same call resumes
    cfg.search.n_trials = len(before) + 10
    assert journal.stat().st_size > 0
    result = run_sweep(cfg)
    (trials,) = study_trials(tiny_disk, folder=tiny_disk).values()
    counted = [t for t in trials if t.state.is_finished() and not t.user_attrs.get("lrsweep_interrupted")]
    assert result.n_finished == len(counted) == len(before) + 10
    assert {t.number: t.params for t in counted if t.number in before} == before  # kept, not run again


def test_a_configurations_identity_ignores_fields_at_none():
    """A binary study made before ModelParams had `multiclass` (None for a binary target) keeps reusing its
    finished configurations: their records have no such key."""
    from lrsweep.space import ModelParams
    from lrsweep.sweep import _key

    now = ModelParams(1.0, 0.0, "l2", "lbfgs", "none", 100, 1e-4).as_dict()
    before = {k: v for k, v in now.items() if k != "multiclass"}
    assert _key(now) == _key(before)
    assert _key({**now, "multiclass": "ovr"}) != _key(before)
