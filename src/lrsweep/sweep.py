"""The study: create or resume it, run trials, refit the best configuration, test it once.

One sweep, as the phases of :class:`Sweep` read top to bottom:

1. ``check``: validate the config against the backend's capabilities; start the tracker (the MLflow writer
   imports mlflow while the data is read);
2. ``prepare``: open the data, the backend takes its parts and fits preprocessing (once per sweep);
3. ``open_study``: the Optuna study (a journal file per study by default); this process joins it as a worker
   (``lrsweep.workers``: several processes may work one study), and trials a dead worker left RUNNING become
   FAIL, marked interrupted (not counted, run again);
4. ``open_parent_run``: the tracker's parent run, with config, data fingerprint and environment (MLflow is
   backfilled with finished trials it never received);
5. ``run_trials``: ask/tell until the study holds ``search.n_trials`` finished trials (whichever workers ran
   them); the worker that ran the study's last trial goes on, the others leave;
6. ``refit_and_test``: the best configuration refitted on train+validation and scored on test once, at the
   threshold chosen on validation;
7. ``finish``: the result, its artifacts and the model on the parent run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrsweep import __version__, runinfo
from lrsweep.backends import Backend, Evaluation, capabilities_of, make_backend
from lrsweep.config import (
    METRIC_DIRECTIONS,
    MULTICLASS_ONLY_METRICS,
    Config,
    SearchConfig,
    search_identity,
    study_name,
    validate,
)
from lrsweep.data import DataSummary, open_data
from lrsweep.data.columns import say_classes
from lrsweep.errors import BackendLost, LrsweepError, Terminated
from lrsweep.metrics import Curve, area_metrics, curve_from_scores, merge_curves, metrics_at
from lrsweep.multiclass import Decision, class_curves, confusion, multiclass_metrics
from lrsweep.planning.budget import SPEND_METRIC, STOP_TAG, BudgetGuard
from lrsweep.planning.cost import cluster_type, executor_cores
from lrsweep.records import Step, SweepResult, TrialRecord
from lrsweep.redact import redact_mapping, redact_text, redact_uri
from lrsweep.runinfo import flatten
from lrsweep.space import ModelParams, SolverPool, grid, multiclass_pool, solver_pool, suggest
from lrsweep.stores import check_database_driver, writable_folder
from lrsweep.thresholds import ThresholdConfig, choose_threshold
from lrsweep.tracking import SETUP_METRIC, Final, ModelToLog, NullTracker, ParentSpec, Tracker, open_tracker
from lrsweep.workers import WORKER_ATTR, Worker, WorkerRecord

__all__ = ["Sweep", "Scored", "run_sweep", "evaluate_params", "flatten"]

log = logging.getLogger("lrsweep")
INTERRUPTED = "lrsweep_interrupted"
RECORD = "lrsweep_record"
PROGRESS_SECONDS = 10.0  # a progress line this often when stderr is not a terminal
FINAL = "lrsweep_final"  # study user attribute: the last finished call's result (see Sweep._remember)
SURPLUS = "lrsweep_surplus"  # a trial asked for when other workers had taken the last ones: never run
WAIT_SECONDS = 0.5  # how often a worker whose study's last trials run elsewhere looks again
JOINED_SEED_STEP = 7919  # a worker that joins k others seeds its sampler k steps further (its own proposals)


def run_sweep(
    cfg: Config,
    *,
    backend: Backend | None = None,
    tracker: Tracker | None = None,
    progress: bool | None = None,
    preset: str | None = None,
    preset_text: str | None = None,
    command: str | None = None,
) -> SweepResult:
    """Run (or resume) the sweep described by ``cfg``; see the module docstring.

    ``preset``: the ``experiments/`` preset the config was composed from, and ``preset_text`` its file (logged
    as ``experiments/<preset>.yaml``); ``command``: this call's command line. All three are recorded on the
    parent run (``lrsweep export`` hands them in); the texts must come redacted.
    """
    sweep = Sweep(cfg, backend=backend, tracker=tracker, progress=progress, preset=preset)
    sweep.preset_text, sweep.command = preset_text, command
    return sweep.run()


# -- evaluation of one configuration ------------------------------------------------------------------
@dataclass
class Scored:
    """One configuration's validation result: metrics, the folds it reported, its fit, and its curve."""

    metrics: dict[str, float]  # the point and area metrics, log_loss and threshold
    steps: list[Step]
    fit: dict[str, float]  # fit_seconds, n_iter, converged, threshold_feasible
    curve: Curve | None  # the curve its threshold was chosen on (a multi-class target under argmax: none)


def _pool(evals: list[Evaluation]) -> Evaluation:
    """One held-out evaluation over all folds' predictions (their curve and log loss; a multi-class target's
    class codes and probabilities)."""
    n = sum(e.n for e in evals)
    ll = sum(e.log_loss * e.n for e in evals) / n
    fit = evals[0].fit
    if all(e.scores is not None for e in evals):
        y = np.concatenate([e.scores[0] for e in evals])  # type: ignore[index]
        p = np.concatenate([e.scores[1] for e in evals])  # type: ignore[index]
        curve = curve_from_scores(y, p) if p.ndim == 1 else None
        return Evaluation(curve, ll, n, fit, (y, p))
    return Evaluation(merge_curves([e.curve for e in evals if e.curve is not None]), ll, n, fit)


def of_class_code(cfg: Config, classes: list[str]) -> int | None:
    """The code of ``threshold.of_class`` among a multi-class target's classes (None: argmax)."""
    name = cfg.threshold.of_class
    return None if name is None or not classes else classes.index(str(name))


def _metrics(
    ev: Evaluation, cfg: Config, params: ModelParams, classes: list[str]
) -> tuple[dict[str, float], bool, Curve | None]:
    """Validation figures of one held-out evaluation at the threshold its strategy chooses there (a multi-class
    target: argmax, or the threshold on ``threshold.of_class``'s one-vs-rest curve), whether the strategy's
    constraint could be met, and the curve the threshold lies on (none under argmax)."""
    if not classes:
        assert ev.curve is not None
        choice = choose_threshold(ev.curve, cfg.threshold, params.threshold)
        m = metrics_at(ev.curve, choice.index) | area_metrics(ev.curve)
        m["log_loss"] = ev.log_loss
        m["threshold"] = choice.value
        return m, choice.feasible, ev.curve
    assert ev.scores is not None
    y, proba = ev.scores
    curves = class_curves(y, proba)
    code = of_class_code(cfg, classes)
    if code is None:
        return multiclass_metrics(y, proba, classes, Decision(), curves, ev.log_loss), True, None
    choice = choose_threshold(curves[code], cfg.threshold, params.threshold)
    m = multiclass_metrics(y, proba, classes, Decision(code, choice.value), curves, ev.log_loss)
    m["threshold"] = choice.value
    return m, choice.feasible, curves[code]


def check_classes(cfg: Config, classes: list[str]) -> None:
    """What only the data can tell: settings for a multi-class target on a binary one, and the reverse."""
    metric, of_class = cfg.objective.metric, cfg.threshold.of_class
    if not classes:
        if metric in MULTICLASS_ONLY_METRICS:
            raise LrsweepError(
                f"objective.metric={metric} is for a target of more than two classes; this one is binary",
                f"use objective.metric={metric.split('_')[0]}",
            )
        if of_class is not None:
            raise LrsweepError(
                f"threshold.of_class={of_class} is for a target of more than two classes; this one is binary",
                "drop threshold.of_class (a binary threshold is on dataset.positive's probability)",
            )
        return
    if of_class is not None and str(of_class) not in classes:
        raise LrsweepError(
            f"threshold.of_class={of_class!r} is not a class of the target (classes: {', '.join(classes)})",
            f"set threshold.of_class to one of them, e.g. threshold.of_class={classes[-1]}",
        )
    if of_class is None and cfg.threshold.strategy != ThresholdConfig.strategy:
        raise LrsweepError(
            f"threshold={cfg.threshold.strategy} on a multi-class target needs the class the threshold is for "
            "(without one each row gets its most probable class)",
            f"add threshold.of_class=CLASS (one of: {', '.join(classes)}), or drop threshold={cfg.threshold.strategy}",
        )


def evaluate_params(backend: Backend, cfg: Config, params: ModelParams, trial: Any | None = None) -> Scored:
    """Validation metrics of one configuration; reports folds to ``trial`` and raises TrialPruned."""
    metric = cfg.objective.metric
    classes = backend.classes
    steps: list[Step] = []
    fractions = cfg.search.fractions()
    rung_seconds = 0.0
    for r, fraction in enumerate(fractions[:-1]):  # successive halving: the smaller rungs first
        rung_params, rows = cfg.search.rung(params, fraction)  # a share of the rows, or of the iterations
        ev = backend.evaluate(rung_params, fraction=rows)
        rung_seconds += ev.fit.seconds
        rung_m, _, _ = _metrics(ev, cfg, params, classes)
        step = rung_step(cfg.search, r)
        steps.append((f"rung_{metric}", rung_m[metric], step))
        if trial is not None and hasattr(trial, "report"):
            trial.report(rung_m[metric], step)
            if trial.should_prune():
                import optuna

                trial.set_user_attr("lrsweep_steps", steps)
                raise optuna.TrialPruned(
                    f"stopped at rung {r + 1} of {len(fractions)} ({_share(fraction)} of the "
                    f"{'training rows' if cfg.search.rung_resource == 'rows' else 'iterations'}): "
                    f"{metric}={rung_m[metric]:.4f}"
                )
    if backend.n_folds == 0:
        ev = backend.evaluate(params)
        evals = [ev]
        pooled = ev
    else:
        evals = []
        for k in range(backend.n_folds):
            ev = backend.evaluate(params, k)
            evals.append(ev)
            fold_m, _, _ = _metrics(ev, cfg, params, classes)
            steps.append((f"fold_{metric}", fold_m[metric], k))
            if trial is not None and hasattr(trial, "report"):
                trial.report(fold_m[metric], k)
                if cfg.cv.prune and trial.should_prune():
                    import optuna

                    trial.set_user_attr("lrsweep_steps", steps)
                    raise optuna.TrialPruned(f"pruned after fold {k}: {metric}={fold_m[metric]:.4f}")
        pooled = _pool(evals)
    m, feasible, curve = _metrics(pooled, cfg, params, classes)
    if len(fractions) > 1:  # the top rung: all the rows, reported as the others were
        top = rung_step(cfg.search, len(fractions) - 1)
        steps.append((f"rung_{metric}", m[metric], top))
        if trial is not None and hasattr(trial, "report"):
            trial.report(m[metric], top)
    fit = {
        "fit_seconds": rung_seconds + sum(e.fit.seconds for e in evals),
        "n_iter": max(e.fit.n_iter for e in evals),
        "converged": float(all(e.fit.converged for e in evals)),
        "threshold_feasible": float(feasible),
    }
    return Scored(m, steps, fit, curve)


def rung_step(search: SearchConfig, rung: int) -> int:
    """The step a rung is reported at: its rows in units of the smallest rung's (1, eta, eta^2, ...), the
    resource Optuna's SuccessiveHalvingPruner counts."""
    return search.eta**rung


def _share(fraction: float) -> str:
    return "all" if fraction >= 1.0 else f"1/{round(1 / fraction):g}"


def _rung_metrics(cfg: Config, steps: list[Step]) -> dict[str, float]:
    """With successive halving: the rungs a trial ran (1 = the smallest only), the share of the rows or iterations
    its last rung had (rung_share) and of the training rows it fitted (train_fraction); nothing otherwise."""
    fractions = cfg.search.fractions()
    n = sum(1 for name, _, _ in steps if str(name).startswith("rung_"))
    if len(fractions) < 2 or n == 0:
        return {}
    share = fractions[min(n, len(fractions)) - 1]
    rows = share if cfg.search.rung_resource == "rows" else 1.0
    return {"rung": float(n), "rung_share": share, "train_fraction": rows}


def _rung_counts(cfg: Config, finished: list[Any]) -> dict[str, int]:
    """Finished trials by the last rung they ran, smallest share first (empty without halving)."""
    fractions = cfg.search.fractions()
    if len(fractions) < 2:
        return {}
    counts = Counter(
        rec.metrics.get("rung_share", rec.metrics.get("train_fraction"))  # (records before rung_share: rows)
        for rec in map(_record_of, finished)
        if rec is not None and "train_fraction" in rec.metrics
    )
    return {_share(f): counts[f] for f in fractions if counts[f]}


def _test_metrics(test: Evaluation, threshold: float, classes: list[str], of_class: int | None) -> dict[str, float]:
    if classes:
        assert test.scores is not None
        return multiclass_metrics(*test.scores, classes, Decision(of_class, threshold))
    assert test.curve is not None
    m = metrics_at(test.curve, test.curve.index_at(threshold)) | area_metrics(test.curve)
    m["log_loss"] = test.log_loss
    return m


def _test_confusion(test: Evaluation, threshold: float, classes: list[str], of_class: int | None) -> list[list[int]]:
    """A multi-class target's K x K test confusion matrix (rows: true class), as the model decides."""
    if not classes or test.scores is None:
        return []
    return confusion(*test.scores, Decision(of_class, threshold)).tolist()


def _bayes_metrics(reference: Evaluation | None, classes: list[str]) -> dict[str, float] | None:
    """Threshold-free figures of a generated table's true model on the test rows: the best any model can do."""
    if reference is None:
        return None
    if classes:
        assert reference.scores is not None
        every = multiclass_metrics(*reference.scores, classes)
        return {k: every[k] for k in ("roc_auc", "pr_auc", "log_loss")}
    assert reference.curve is not None
    out = {k: v for k, v in area_metrics(reference.curve).items() if k in ("roc_auc", "pr_auc")}
    out["log_loss"] = reference.log_loss
    return out


# -- study plumbing ----------------------------------------------------------------------------------
def _storage(cfg: Config, name: str) -> tuple[Any, str, Path]:
    """The study's storage, how it is shown, and the folder of its workers' lease files."""
    from optuna.storages import JournalStorage

    folder = Path(cfg.study.dir)
    folder.mkdir(parents=True, exist_ok=True)
    leases = folder / f"{name}.workers"
    url = cfg.study.storage
    if url and "://" in url:
        return _database(url), redact_uri(url), leases
    path = Path(url) if url else folder / f"{name}.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(_whole_records_journal(str(path))), str(path), leases


def _database(url: str, attempts: int = 5) -> Any:
    """Optuna's storage in a database. Workers starting together on a new database race to create Optuna's
    tables ("type studydirection already exists"): the loser tries again once they exist. Any other failure
    (the server is down, a wrong password) is one line, the URL's password masked."""
    from optuna.storages import get_storage

    from lrsweep.stores import creating

    for attempt in range(attempts):
        try:
            with creating(url):  # (one local SQLite database: one worker of this host at a time)
                return get_storage(url)
        except Exception as exc:  # sqlalchemy's errors, whatever the driver
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raced = any(m in first for m in ("already exists", "duplicate key", "UniqueViolation"))
            if raced and attempt < attempts - 1:
                time.sleep(0.5 + attempt)
                continue
            raise LrsweepError(
                f"cannot open the study storage {redact_uri(url)}: {redact_text(first)[:300]}",
                "check study.storage and that the database server is up",
            ) from exc
    raise AssertionError("unreachable")


def _whole_records_journal(path: str) -> Any:
    """Optuna's journal file, except that a write that fails (a full disk) leaves no part of its record behind:
    Optuna would glue the partial record to the next one and refuse to read the study from there on."""
    from optuna.storages.journal import JournalFileBackend
    from optuna.storages.journal._file import get_lock_file

    class WholeRecords(JournalFileBackend):
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            with get_lock_file(self._lock):  # Optuna's own lock: no other worker appends meanwhile
                size = os.path.getsize(self._file_path) if os.path.exists(self._file_path) else 0
                text = "\n".join(json.dumps(entry, separators=(",", ":")) for entry in logs) + "\n"
                try:
                    with open(self._file_path, "ab") as f:
                        f.write(text.encode("utf-8"))
                        f.flush()
                        os.fsync(f.fileno())
                except OSError:
                    with contextlib.suppress(OSError):
                        os.truncate(self._file_path, size)
                    raise

    return WholeRecords(path)


def _sampler(cfg: Config, held: int = 0) -> Any:
    """The study's sampler, seeded by ``seed`` and the number of trials the study already ``held``: a resumed
    study draws on (the same seed again would propose the first call's configurations once more), and the same
    sequence of calls still proposes the same trials."""
    import optuna

    s = cfg.search
    seed = cfg.seed + held
    if s.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.n_startup_trials)
    return optuna.samplers.RandomSampler(seed=seed)  # random; grid enqueues its points first


def _pruner(cfg: Config) -> Any:
    """Successive halving over data fractions (rungs reported at steps 1, eta, eta^2: see rung_step; promotions:
    lrsweep.halving), a median pruner over CV folds, or none."""
    import optuna

    if cfg.search.fidelity == "halving":
        from lrsweep.halving import pruner_for

        return pruner_for(cfg.search.eta, cfg.search.rungs, cfg.search.promotion)
    if cfg.cv.folds > 1 and cfg.cv.prune:
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    return optuna.pruners.NopPruner()


def _disk_full(exc: OSError, study: str) -> LrsweepError | None:
    """A full disk (or quota) while writing the study or its results, as one line; None for another OSError.
    The study stays readable (the journal appends whole records; a database commits or not)."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    where = exc.filename or study or "a file the sweep writes"
    return LrsweepError(
        f"no space left on the device while writing {where}",
        "free some space (or move study.dir / tracking.uri) and run the same command again: finished trials are kept",
    )


def _interrupt(study: Any, trials: list[Any]) -> int:
    """Trials whose worker is gone (a killed sweep) become FAIL, marked interrupted (so they are run again)."""
    from optuna.trial import TrialState

    storage = study._storage
    for t in trials:
        with contextlib.suppress(RuntimeError, ValueError):  # another worker marked it first
            storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    return len(trials)


def _counted(trial: Any) -> bool:
    """A finished trial that counts towards search.n_trials (an interrupted or surplus one does not)."""
    return trial.state.name in ("COMPLETE", "PRUNED", "FAIL") and not trial.user_attrs.get(INTERRUPTED)


def _finished(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False, states=done) if _counted(t)]


def _record_of(trial: Any) -> TrialRecord | None:
    raw = trial.user_attrs.get(RECORD)
    return TrialRecord.from_dict(raw) if raw else None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _environment() -> dict[str, str]:
    """Versions from package metadata (importing mlflow just to read its version costs seconds)."""
    from importlib.metadata import PackageNotFoundError, version

    env = {"lrsweep.version": __version__, "python.version": platform.python_version(), "platform": platform.platform()}
    for dist in ("scikit-learn", "optuna", "mlflow", "hydra-core", "pandas", "numpy", "pyspark"):
        with contextlib.suppress(PackageNotFoundError):
            env[f"{dist}.version"] = version(dist)
    return env


def _key(model_params: dict[str, Any]) -> str:
    """A configuration's identity; fields at None left out, so records made before a field existed (a binary
    target's multiclass) still match."""
    return json.dumps({k: v for k, v in model_params.items() if v is not None}, sort_keys=True, default=str)


DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's own default (a test checks it against mlflow's)


def _effective_uri(uri: str | None) -> str:
    """The store a sweep logs to (without importing mlflow, which costs seconds)."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


MLFLOW_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def _ui_url(uri: str | None) -> str | None:
    """The MLflow UI's address for a store: the server itself, or where `mlflow ui` serves a local store."""
    if not uri:
        return None
    if uri.startswith(("http://", "https://")):
        return redact_uri(uri).rstrip("/")
    return MLFLOW_UI


def _ui_command(uri: str | None) -> str:
    if not uri:
        return ""
    if uri.startswith(("http://", "https://")):
        return f"open {redact_uri(uri)} in a browser"
    if uri in ("sqlite:///mlflow.db", f"sqlite:///{Path.cwd() / 'mlflow.db'}"):
        return "mlflow ui   (in this directory)"
    return f"mlflow ui --backend-store-uri {redact_uri(uri)}"


def _best_so_far(study: Any, sign: float) -> list[tuple[int, float]]:
    """(trial number, best objective value among the trials up to it), for every completed trial."""
    out: list[tuple[int, float]] = []
    best: float | None = None
    for t in sorted(_finished(study), key=lambda t: t.number):
        if t.state.name == "COMPLETE" and t.value is not None and (best is None or sign * t.value > sign * best):
            best = float(t.value)
        if best is not None:
            out.append((t.number, best))
    return out


def _store_exists(uri: str | None) -> bool:
    """False for a sqlite store whose file is gone (a study logged there must be logged again)."""
    uri = _effective_uri(uri)
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :]).is_file()
    return True


def _tracked(cfg: Config) -> dict[str, str]:
    """Where a study is logged: the store (redacted) and the experiment."""
    return {"uri": redact_uri(_effective_uri(cfg.tracking.uri)), "experiment": cfg.experiment_name}


class _Warnings:
    """Library warnings during a sweep: counted per trial (tags on the trial's run), never printed; those
    outside a trial (setup, refit) go to the debug log. Per thread, so parallel trials keep their own."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.outside: Counter[str] = Counter()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # every occurrence counts, not the first per place
            warnings.showwarning = self._show
            yield

    def _show(
        self, message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        text = f"{category.__name__}: {str(message).strip().splitlines()[0] if str(message).strip() else ''}"
        bucket = getattr(self.local, "bucket", None)
        if bucket is not None:
            bucket[text] += 1
        else:
            self.outside[text] += 1
            log.debug("warning: %s (%s:%d)", text, filename, lineno)

    def start_trial(self) -> Counter[str]:
        """This thread's warnings count into the returned bucket until ``end_trial``."""
        bucket: Counter[str] = Counter()
        self.local.bucket = bucket
        return bucket

    def end_trial(self) -> None:
        self.local.bucket = None


def _warning_tags(bucket: Counter[str]) -> dict[str, str]:
    if not bucket:
        return {}
    (first, _), *_ = bucket.most_common(1)
    return {"lrsweep.warnings": str(sum(bucket.values())), "lrsweep.warning": first[:500]}


# -- one trial ---------------------------------------------------------------------------------------
class _TrialRunner:
    def __init__(
        self, cfg: Config, backend: Backend, pool: SolverPool, study: Any, tracker: Tracker, caught: _Warnings
    ) -> None:
        self.cfg, self.backend, self.pool, self.study, self.tracker = cfg, backend, pool, study, tracker
        self.warnings = caught
        self.lock = threading.Lock()
        self.sign = 1.0 if METRIC_DIRECTIONS[cfg.objective.metric] == "maximize" else -1.0
        # the validation curve of the best trial run by this process (for the metric-vs-threshold plot)
        self.best: tuple[float, int, Curve] | None = None
        # Completed configurations of this study, so an identical proposal (TPE re-draws points of small
        # categorical subspaces, e.g. penalty=none) reuses the result instead of refitting: fits are seeded.
        self.seen: dict[str, TrialRecord] = {}
        for t in _finished(study):
            rec = _record_of(t)
            if rec and rec.state == "COMPLETE" and rec.model_params:
                self.seen.setdefault(_key(rec.model_params), rec)

    def run_one(self, trial: Any) -> TrialRecord:
        """Run the asked ``trial`` (see Sweep.run_trials's claim) and tell the study how it ended."""
        import optuna
        from optuna.trial import TrialState

        cfg = self.cfg
        start = time.time()
        params: ModelParams | None = None
        metrics: dict[str, float] = {}
        steps: list[Step] = []
        tags: dict[str, str] = {}
        value = None
        curve: Curve | None = None
        bucket = self.warnings.start_trial()
        try:
            params = suggest(trial, cfg.search, cfg.threshold, self.pool, bool(self.backend.classes))
            same = self.seen.get(_key(params.as_dict()))
            if same is not None:
                metrics = dict(same.metrics)
                steps = list(same.steps)
                for _, fold_value, k in steps:  # the pruner sees a repeat like the original
                    trial.report(fold_value, int(k))
                tags["lrsweep.repeat_of"] = str(same.number)
                value = metrics[f"val_{cfg.objective.metric}"]
            else:
                scored = evaluate_params(self.backend, cfg, params, trial)
                m = scored.metrics
                metrics = {f"val_{k}": v for k, v in m.items() if k != "threshold"}
                if "threshold" in m:  # (a multi-class target decided by argmax has none)
                    metrics["threshold"] = m["threshold"]
                metrics |= scored.fit
                steps, curve = scored.steps, scored.curve
                value = m[cfg.objective.metric]
            state = "FAIL" if value is None or math.isnan(value) else "COMPLETE"
            if state == "FAIL":
                tags["lrsweep.failure"] = f"objective {cfg.objective.metric} is undefined (NaN)"
        except optuna.TrialPruned as exc:
            state, tags["lrsweep.pruned"] = "PRUNED", str(exc)
            steps = [tuple(s) for s in trial.user_attrs.get("lrsweep_steps", [])]  # type: ignore[misc]
        except (KeyboardInterrupt, BackendLost):  # not the configuration's fault: run again on resume
            trial.set_user_attr(INTERRUPTED, True)
            self.study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as exc:  # a trial that raises is recorded as failed and the sweep goes on
            state = "FAIL"
            tags["lrsweep.failure"] = f"{type(exc).__name__}: {exc}"[:5000]
        finally:
            self.warnings.end_trial()
        metrics |= _rung_metrics(cfg, steps)
        tags |= _warning_tags(bucket)
        if WORKER_ATTR in trial.user_attrs:  # which process ran it (several may work one study)
            tags["lrsweep.worker"] = str(trial.user_attrs[WORKER_ATTR])
        record = self._record(trial.number, params, state, metrics, steps, tags, start, time.time())
        if state == "COMPLETE" and params is not None and "lrsweep.repeat_of" not in tags:
            with self.lock:
                self.seen.setdefault(_key(params.as_dict()), record)
                if curve is not None and value is not None:
                    score = self.sign * value
                    if self.best is None or score > self.best[0]:
                        self.best = (score, trial.number, curve)
        trial.set_user_attr(RECORD, record.to_dict())  # the journal keeps it: MLflow can be backfilled from here
        if state == "COMPLETE":
            self.study.tell(trial, value)
        else:
            self.study.tell(trial, state=TrialState.PRUNED if state == "PRUNED" else TrialState.FAIL)
        self.tracker.trial(record)  # only after Optuna knows the trial finished
        return record

    def _record(
        self,
        number: int,
        params: ModelParams | None,
        state: str,
        metrics: dict[str, float],
        steps: list[Step],
        tags: dict[str, str],
        start: float,
        end: float,
    ) -> TrialRecord:
        shown: dict[str, Any] = {}
        if params is not None:
            shown |= {k: v for k, v in params.as_dict().items() if v is not None}
            native = self.backend.native_params(params)
            shown |= {f"{self.backend.name}.{k}": v for k, v in native.items() if k not in shown}
        shown = runinfo.trial_params(self.cfg, shown)
        label = params.label() if params else ""
        return TrialRecord(
            number=number,
            state=state,
            run_name=f"trial-{number:03d} {label}".strip(),
            params=shown,
            model_params=params.as_dict() if params else None,
            metrics={k: float(v) for k, v in metrics.items()},
            steps=steps,
            tags=tags,
            start_ms=int(start * 1000),
            end_ms=int(end * 1000),
        )

    def curve_of(self, number: int) -> Curve | None:
        return self.best[2] if self.best is not None and self.best[1] == number else None


# -- the sweep ---------------------------------------------------------------------------------------
class Sweep:
    """One invocation: the phases named in the module docstring, each a method."""

    def __init__(
        self, cfg: Config, *, backend: Backend | None = None, tracker: Tracker | None = None,
        progress: bool | None = None, preset: str | None = None,
    ) -> None:  # fmt: skip
        self.cfg = cfg
        self.preset = preset
        self.preset_text: str | None = None
        self.command: str | None = None
        self.started = time.perf_counter()
        self.phases: dict[str, float] = {}
        self._mark = self.started
        # check: every impossible value is refused before a backend, a tracker or a study exists
        caps = backend.capabilities if backend is not None else capabilities_of(cfg.backend.name)
        self.pool = validate(cfg, caps)
        self.backend = backend or make_backend(cfg)
        self.name = study_name(cfg) if cfg.study.resume else f"{study_name(cfg)}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.show_progress = cfg.progress if progress is None else progress
        self.idle = self.nothing_to_do()  # before the tracker: a call with nothing to do starts no writer
        if self.idle is None:  # where the study goes can be written: one line now, not a traceback later
            writable_folder(Path(cfg.study.dir), "study.dir")
            if cfg.study.storage and "://" not in cfg.study.storage:
                writable_folder(Path(cfg.study.storage).parent, "study.storage's folder")
            elif cfg.study.storage:
                check_database_driver(cfg.study.storage, "study.storage")
        self.tracker = tracker or (NullTracker() if self.idle else open_tracker(cfg.tracking, cfg.experiment_name))
        self.storage_desc = ""
        self.runner: _TrialRunner | None = None
        self.guard = BudgetGuard(cfg)
        self.recovered = 0
        self.worker: Worker | None = None
        self.warnings = _Warnings()
        self.sign = 1.0 if METRIC_DIRECTIONS[cfg.objective.metric] == "maximize" else -1.0
        self.call_time = time.time()
        self.call_started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.call_time))

    def _phase(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = round(now - self._mark, 3)
        self._mark = now

    def run(self) -> SweepResult:
        try:
            if self.idle is not None:
                return self.idle
            with self.warnings.installed():
                try:
                    return self._run()
                except OSError as exc:
                    full = _disk_full(exc, self.storage_desc)
                    if full is None:
                        raise
                    raise full from exc
        except KeyboardInterrupt as exc:
            reason = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
            self.tracker.fail("KILLED", reason, alone=self._alone())
            raise
        except BaseException as exc:
            reason = exc.line() if isinstance(exc, LrsweepError) else f"{type(exc).__name__}: {exc}"
            self.tracker.fail("FAILED", reason, alone=self._alone())
            raise
        finally:
            self.backend.close()
            if self.worker is not None:
                self.worker.close()

    def _alone(self) -> bool:
        """Whether no other worker goes on with this study (then a failure ends its parent run)."""
        with contextlib.suppress(Exception):
            return self.worker is None or not self.worker.others()
        return True

    def _run(self) -> SweepResult:
        data = self.prepare()
        with self.open_study() as study:
            self.open_parent_run(study, data)
            complete_before = len(_finished(study)) >= self.cfg.search.n_trials
            n_new, seconds = self.run_trials(study)
            finisher = None if complete_before else self._finisher(study)
            if finisher is not None:
                return self.leave(study, finisher, n_new, seconds)
            best = self.best_trial(study)
            refit = self.refit_and_test(best)
            result = self.summarise(study, data, best, refit, n_new, seconds)
            return self.finish(study, best, refit, result)

    # 1. a call with nothing to do
    def nothing_to_do(self) -> SweepResult | None:
        """The result of a resumed study that already holds search.n_trials finished trials and is logged
        where this call would log it: nothing to run, nothing to write (not even the data is read)."""
        import optuna

        cfg = self.cfg
        if not cfg.study.resume or cfg.study.storage and "://" in cfg.study.storage:
            return None  # (a database study is checked when opened: reading it here would cost a connection)
        path = Path(cfg.study.storage) if cfg.study.storage else Path(cfg.study.dir) / f"{self.name}.journal"
        if not path.is_file():
            return None
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = optuna.load_study(study_name=self.name, storage=JournalStorage(JournalFileBackend(str(path))))
        except KeyError:
            return None
        identity = json.loads(json.dumps(search_identity(cfg), default=str))
        if study.user_attrs.get("lrsweep_identity") != identity:
            return None  # another search under this name: open_study says so
        final = study.user_attrs.get(FINAL)
        finished = _finished(study)
        if not final or len(finished) < cfg.search.n_trials or final.get("finished") != len(finished):
            return None
        if cfg.tracking.enabled and (final.get("tracked") != _tracked(cfg) or not _store_exists(cfg.tracking.uri)):
            return None
        best = _record_of(study.best_trial)
        if best is None:
            return None
        uri = _effective_uri(cfg.tracking.uri) if cfg.tracking.enabled else None
        line = (
            f"nothing to do: study {self.name} already holds {len(finished)} finished trials "
            f"(search.n_trials={cfg.search.n_trials}){' and is logged' if cfg.tracking.enabled else ''}; raise "
            "search.n_trials to add trials, or set study.resume=false for a fresh study"
        )
        return SweepResult(
            study_name=self.name, storage=str(path), backend=self.backend.name, dataset=cfg.dataset.label,
            experiment=cfg.experiment_name, objective=cfg.objective.metric, n_finished=len(finished), n_new=0,
            states=dict(Counter(t.state.name for t in finished)), best_trial=best.number, best_params=best.params,
            best_value=float(study.best_value), threshold_strategy=cfg.threshold.strategy,
            threshold=float(final["threshold"]),
            val_metrics={k[4:]: v for k, v in best.metrics.items() if k.startswith("val_")},
            test_metrics=dict(final.get("test_metrics") or {}), data={},
            tracking_uri=redact_uri(uri) if uri else None, ui_command=_ui_command(uri), ui_url=_ui_url(uri),
            parent_run_id=final.get("parent_run_id") if cfg.tracking.enabled else None,
            experiment_id=final.get("experiment_id") if cfg.tracking.enabled else None,
            wall_seconds=time.perf_counter() - self.started, nothing_to_do=line,
        )  # fmt: skip

    # 2. the data, once per sweep
    def prepare(self) -> DataSummary:
        cfg = self.cfg
        data = open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed)
        summary = self.backend.prepare(data)
        if summary.sparse and not cfg.dataset.hashed:  # a very wide one-hot: no solver that builds a dense Hessian
            self.pool = solver_pool(cfg.search, self.backend.capabilities, sparse=True)
        check_classes(cfg, summary.classes)
        if summary.classes:
            self.pool = multiclass_pool(cfg.search, self.pool)
            say_classes(str(cfg.dataset.target), summary.classes, summary.fingerprint.get("class_rows") or {})
        # successive halving: the rungs' rows are drawn and checked here, once, not inside the first trial that
        # fits them (a rung of a single class would fail every trial)
        self.backend.prepare_rungs(cfg.search.row_rungs())
        self._phase("setup")
        return summary

    # 3. the study
    @contextlib.contextmanager
    def open_study(self) -> Iterator[Any]:
        import optuna
        from optuna.trial import TrialState

        cfg = self.cfg
        storage, self.storage_desc, leases = _storage(cfg, self.name)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        try:
            study = optuna.create_study(
                study_name=self.name,
                storage=storage,
                sampler=_sampler(cfg),
                pruner=_pruner(cfg),
                direction=METRIC_DIRECTIONS[cfg.objective.metric],
                load_if_exists=True,
            )
        except ValueError as exc:
            raise LrsweepError(f"cannot open study {self.name!r}: {exc}", "use another study.name") from exc
        identity = json.loads(json.dumps(search_identity(cfg), default=str))
        stored = study.user_attrs.get("lrsweep_identity")
        if stored is None:
            study.set_user_attr("lrsweep_identity", identity)
        elif stored != identity:  # only possible with a study.name given: derived names hash the identity
            old, new = flatten(stored), flatten(identity)
            changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            raise LrsweepError(
                f"study {self.name!r} holds trials of another search (it differs in {', '.join(changed[:4])})",
                "give this search its own study.name, or run with study.resume=false for a fresh study",
            )
        self.worker = worker = Worker(study, leases)  # left in Sweep.run, after the tracker is done
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        self.recovered = _interrupt(study, worker.dead_trials(running))
        held = len(study.get_trials(deepcopy=False))
        others = len(worker.others())
        if held or others:  # a joining worker draws its own configurations, not the others' again
            study.sampler = _sampler(cfg, held + JOINED_SEED_STEP * others)
        if cfg.search.sampler == "grid" and worker.is_leader():
            self._enqueue_grid(study)
        yield study

    def _enqueue_grid(self, study: Any) -> None:
        """Queue the grid points the study does not hold yet (finished, running or waiting)."""
        from optuna.trial import TrialState

        def planned(t: Any) -> dict[str, Any]:  # a queued trial has no params yet: its fixed ones say what it runs
            return dict(t.system_attrs.get("fixed_params", {})) if t.state == TrialState.WAITING else t.params

        seen = [planned(t) for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(INTERRUPTED)]
        points = grid(self.cfg.search, self.cfg.threshold, self.pool, bool(self.backend.classes))

        def key(p: dict[str, Any]) -> str:
            return json.dumps({k: round(v, 12) if isinstance(v, float) else v for k, v in p.items()}, sort_keys=True)

        have = {key(p) for p in seen}
        for p in points:
            if key(p) not in have:
                study.enqueue_trial(p, skip_if_exists=False)
        if self.cfg.search.n_trials > len(points):
            log.warning("the grid has %d points; trials beyond it are drawn at random", len(points))

    # 4. the parent run
    def open_parent_run(self, study: Any, data: DataSummary) -> None:
        import yaml

        cfg = self.cfg
        env = _environment()
        config_dict = redact_mapping(dataclasses.asdict(cfg))
        tags = {
            **env,
            "lrsweep.backend": self.backend.name,
            "lrsweep.dataset": cfg.dataset.label,
            "lrsweep.data_sha256": data.fingerprint.get("sha256", ""),
            "lrsweep.study_storage": self.storage_desc,
            "mlflow.note.content": f"lrsweep sweep of study {self.name} (running)",
        }
        commit = _git_commit()
        if commit:
            tags["mlflow.source.git.commit"] = commit
        if self.preset:
            tags["lrsweep.preset"] = self.preset
        if cfg.backend.name == "spark":  # what plans learn from: per-trial times on this kind of cluster
            tags["lrsweep.cluster_type"] = cluster_type(cfg.cluster)
            cores = executor_cores(cfg.cluster, cfg.prices)
            if cores:
                tags["lrsweep.cores"] = str(cores)
            tags["lrsweep.table_rows"] = str(sum(data.rows.values()))
            tags["lrsweep.core_speed"] = str(getattr(cfg.cluster, "core_speed", 1.0))
        if cfg.plan.run_id:
            tags["lrsweep.plan_run_id"] = cfg.plan.run_id
        described = {"fingerprint": data.fingerprint, "rows": data.rows, "features": data.features}
        texts = {
            "config.yaml": yaml.safe_dump(config_dict, sort_keys=False),
            "data.json": json.dumps(described | {"dropped": data.dropped}, indent=2),
            "environment.json": json.dumps(env, indent=2),
        }
        if self.preset and self.preset_text:
            texts[f"experiments/{self.preset}.yaml"] = self.preset_text
        params = runinfo.logged_config(config_dict, backend=self.backend.name, cluster=cfg.cluster.name)
        params |= {f"data.{k}": v for k, v in data.fingerprint.items() if not isinstance(v, dict | list)}
        params |= {"study.name": self.name, "study.storage": self.storage_desc}
        worker = self.worker
        assert worker is not None
        others = {w.id for w in worker.others()}
        # a live worker's finished trials are its own writer's to log (it may be logging them now)
        backfill = [
            r for r in (_record_of(t) for t in _finished(study) if t.user_attrs.get(WORKER_ATTR) not in others)
            if r is not None
        ]  # fmt: skip
        self.tracker.open(
            ParentSpec(
                study=self.name,
                run_name=runinfo.run_name(cfg, self.name),
                params=params,
                tags=tags,
                texts=texts,
                backfill=backfill,
                lease=worker.lease,
                live_workers=sorted(others),
                may_create=worker.is_leader(),
                start_ms=int(self.call_time * 1000),
                invocation={
                    "started": self.call_started,
                    "worker": worker.id,
                    "n_trials": cfg.search.n_trials,
                    "n_jobs": cfg.search.n_jobs,
                    "finished_before": len(backfill),
                }
                | ({"command": self.command} if self.command else {})
                | {f"budget.{k}": v for k, v in dataclasses.asdict(cfg.budget).items() if v is not None},
                datasets=runinfo.dataset_inputs(cfg, data),
                model_flavour=self.backend.capabilities.flavour if cfg.tracking.log_model else None,
            )
        )
        self._phase("open_study_and_parent_run")

    # 5. the trials
    def run_trials(self, study: Any) -> tuple[int, list[float]]:
        """Run trials until the study holds search.n_trials finished ones (search.n_jobs threads)."""
        from optuna.trial import TrialState
        from tqdm import tqdm

        cfg = self.cfg
        done = len(_finished(study))
        target = cfg.search.n_trials
        if cfg.tracking.enabled and cfg.tracking.artifacts:  # the plots' imports overlap the fits
            from lrsweep.report import import_plotting

            import_plotting()
        self.runner = runner = _TrialRunner(cfg, self.backend, self.pool, study, self.tracker, self.warnings)
        seconds: list[float] = []
        if self.recovered and done < target:
            again = min(self.recovered, target - done)
            log.warning("%d trial(s) interrupted by an earlier stop will be run again", again)
        errors: list[BaseException] = []
        bar = tqdm(
            total=target,
            initial=min(done, target),
            desc="trials",
            unit="trial",
            disable=not self.show_progress or None,
            dynamic_ncols=True,
            leave=False,
            file=sys.stderr,
        )

        guard = self.guard
        worker = self.worker
        assert worker is not None
        # not a terminal (a log file, CI, a pipe): no bar, but a line every PROGRESS_SECONDS
        lines = self.show_progress and not sys.stderr.isatty()
        last_line = [time.monotonic()]
        counted = [done]  # the study's finished trials, whichever worker ran them
        waiting = [False]

        def claim() -> Any:
            """The next trial for this thread, asked from the study, or None: the study holds (or is about to
            hold, by this process's other threads) search.n_trials finished trials. Trials running in other
            workers are waited for: if one of them dies, its trial is run again here."""
            while True:
                with runner.lock:
                    if errors or not guard.allows():
                        return None
                    trial = self._ask(study, worker, target, counted)
                    if trial is not None:
                        return trial
                    if counted[0] >= target:
                        return None
                    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                    if all(t.user_attrs.get(WORKER_ATTR) == worker.id for t in running):
                        return None  # the last trials are this process's own
                    if not waiting[0]:
                        waiting[0] = True
                        log.info("waiting for the trials other workers are running (%d left)", len(running))
                time.sleep(WAIT_SECONDS)

        def work() -> None:
            while (trial := claim()) is not None:
                t0, g0 = time.perf_counter(), guard.trial_started()
                try:
                    record = runner.run_one(trial)
                except BaseException as exc:
                    errors.append(exc)
                    return
                with runner.lock:
                    seconds.append(time.perf_counter() - t0)
                    counted[0] += 1
                    guard.trial_finished(g0)
                    spent = guard.spend()
                    if spent is not None:
                        self.tracker.parent_metrics({SPEND_METRIC: spent}, step=len(seconds))
                    bar.n = min(counted[0], target)
                    bar.update(0)
                    best = ""
                    with contextlib.suppress(ValueError):
                        best = f"best {cfg.objective.metric}={study.best_value:.4f}"
                        bar.set_postfix_str(best, refresh=False)
                    now = time.monotonic()
                    if lines and (now - last_line[0] >= PROGRESS_SECONDS or counted[0] >= target):
                        last_line[0] = now
                        log.info(
                            "trials %d/%d, %s, %.1f s per trial",
                            min(counted[0], target), target, best or "none completed", sum(seconds) / len(seconds),
                        )  # fmt: skip
                    if record.state == "FAIL":
                        log.warning("trial %d failed: %s", record.number, record.tags.get("lrsweep.failure"))

        try:
            if cfg.search.n_jobs == 1:
                work()
            else:
                threads = [threading.Thread(target=work, daemon=True) for _ in range(cfg.search.n_jobs)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        finally:
            bar.close()
        if errors:
            raise errors[0]
        if guard.stopped:
            log.warning("stopped starting trials: %s", guard.stopped)
        self._phase("trials")
        return len(seconds), seconds

    def _ask(self, study: Any, worker: Worker, target: int, counted: list[int]) -> Any:
        """Ask the study for a trial if it still needs one, or return None (``counted[0]``: its finished trials).

        Dead workers' RUNNING trials are interrupted first (run again). Another worker may ask at the same
        moment for the study's last trial: the trial numbers decide, and one asked beyond search.n_trials
        (counting the finished and running trials numbered before it) is told FAIL, marked surplus, never run.
        """
        from optuna.trial import TrialState

        trials = study.get_trials(deepcopy=False)
        running = [t for t in trials if t.state == TrialState.RUNNING]
        dead = worker.dead_trials(running)
        if dead:
            log.warning("%d trial(s) of a worker that stopped will be run again", _interrupt(study, dead))
            if self.cfg.search.sampler == "grid" and worker.is_leader():
                self._enqueue_grid(study)
            trials = study.get_trials(deepcopy=False)
            running = [t for t in trials if t.state == TrialState.RUNNING]
        counted[0] = sum(map(_counted, trials))
        if counted[0] + len(running) >= target:
            return None
        trial = study.ask()
        trial.set_user_attr(WORKER_ATTR, worker.id)
        ahead = [
            t for t in study.get_trials(deepcopy=False)
            if t.number < trial.number and (_counted(t) or t.state == TrialState.RUNNING)
        ]  # fmt: skip
        if len(ahead) < target:
            return trial
        trial.set_user_attr(SURPLUS, True)
        trial.set_user_attr(INTERRUPTED, True)
        study.tell(trial, state=TrialState.FAIL)
        return None

    def _finisher(self, study: Any) -> WorkerRecord | None:
        """The worker that refits, tests and logs the study's result: the one that ran its last finished trial.
        None when it is this one (or when that worker stopped before it did: then this one does it)."""
        finished = _finished(study)
        worker = self.worker
        if not finished or worker is None:
            return None
        owner = max(finished, key=lambda t: t.number).user_attrs.get(WORKER_ATTR)
        if owner in (None, worker.id):
            return None
        record = next((w for w in worker.live() if w.id == owner), None)
        final = study.user_attrs.get(FINAL) or {}
        if record is None and final.get("finished") != len(finished):
            log.warning("the worker that ran the study's last trial stopped: this one reports the result")
            return None
        return record or next((w for w in worker.workers() if w.id == owner), None)

    def leave(self, study: Any, finisher: WorkerRecord, n_new: int, seconds: list[float]) -> SweepResult:
        """This worker's part is done; ``finisher`` reports the study's result."""
        cfg = self.cfg
        finished = _finished(study)
        self.tracker.leave({"new_trials": n_new, "finished_trials": len(finished), "result_by": finisher.where()})
        line = (
            f"this worker ran {n_new} of study {self.name}'s {len(finished)} finished trials; the worker that ran "
            f"its last trial ({finisher.where()}) refits, tests and logs the result; run the same command again "
            "afterwards to see it"
        )
        uri = _effective_uri(cfg.tracking.uri) if cfg.tracking.enabled else None
        complete = [t for t in finished if t.state.name == "COMPLETE"]
        best = _record_of(study.best_trial) if complete else None
        return SweepResult(
            study_name=self.name, storage=self.storage_desc, backend=self.backend.name, dataset=cfg.dataset.label,
            experiment=cfg.experiment_name, objective=cfg.objective.metric, n_finished=len(finished), n_new=n_new,
            states=dict(Counter(t.state.name for t in finished)), best_trial=best.number if best else -1,
            best_params=best.params if best else {}, best_value=float(study.best_value) if complete else math.nan,
            threshold_strategy=cfg.threshold.strategy,
            threshold=float(best.metrics.get("threshold", math.nan)) if best else math.nan,
            val_metrics={k[4:]: v for k, v in best.metrics.items() if k.startswith("val_")} if best else {},
            test_metrics={}, data={}, tracking_uri=redact_uri(uri) if uri else None, ui_command=_ui_command(uri),
            ui_url=_ui_url(uri), parent_run_id=self.tracker.parent_id, trial_seconds=seconds,
            wall_seconds=time.perf_counter() - self.started, nothing_to_do=line,
        )  # fmt: skip

    def best_trial(self, study: Any) -> TrialRecord:
        finished = _finished(study)
        if not finished and self.guard.stopped:
            raise LrsweepError(
                f"no trial ran: {self.guard.stopped}", "raise the budget, or check it with `lrsweep plan`"
            )
        if not any(t.state.name == "COMPLETE" for t in finished):
            records = [r for r in map(_record_of, finished) if r is not None]
            first = next(
                (r.tags["lrsweep.failure"] for r in records if "lrsweep.failure" in r.tags), "no reason recorded"
            )
            raise LrsweepError(
                f"no trial completed ({len(finished)} finished, none successfully; first failure: {first})",
                "check the data and the search ranges (e.g. raise search.max_iter)",
            )
        record = _record_of(study.best_trial)
        assert record is not None and record.model_params is not None
        return record

    # 6. the best configuration, refitted and tested once
    def refit_and_test(self, best: TrialRecord) -> Any:
        assert best.model_params is not None
        code = of_class_code(self.cfg, self.backend.classes)
        threshold = float(best.metrics.get("threshold", math.nan))
        refit = self.backend.refit(ModelParams(**best.model_params), threshold, code)
        self._phase("refit_and_test")
        return refit

    def summarise(
        self, study: Any, data: DataSummary, best: TrialRecord, refit: Any, n_new: int, seconds: list[float]
    ) -> SweepResult:
        cfg = self.cfg
        finished = _finished(study)
        threshold = float(best.metrics.get("threshold", math.nan))
        classes, code = self.backend.classes, of_class_code(cfg, self.backend.classes)
        uri = _effective_uri(cfg.tracking.uri) if cfg.tracking.enabled else None
        return SweepResult(
            study_name=self.name,
            storage=self.storage_desc,
            backend=self.backend.name,
            dataset=cfg.dataset.label,
            experiment=cfg.experiment_name,
            objective=cfg.objective.metric,
            n_finished=len(finished),
            n_new=n_new,
            states=dict(Counter(t.state.name for t in finished)),
            best_trial=best.number,
            best_params=best.params,
            best_value=float(study.best_value),
            threshold_strategy=cfg.threshold.strategy,
            threshold=threshold,
            val_metrics={k[4:]: v for k, v in best.metrics.items() if k.startswith("val_")},
            test_metrics=_test_metrics(refit.test, threshold, classes, code),
            data=data.fingerprint,
            bayes_metrics=_bayes_metrics(refit.reference, classes),
            classes=list(classes),
            of_class=cfg.threshold.of_class if classes else None,
            test_confusion=_test_confusion(refit.test, threshold, classes, code),
            tracking_uri=redact_uri(uri) if uri else None,
            ui_command=_ui_command(uri),
            ui_url=_ui_url(uri),
            trial_seconds=seconds,
            stop_reason=self.guard.stopped,
            rungs=_rung_counts(cfg, finished),
            rung_resource=cfg.search.rung_resource,
        )

    def _best_curve(self, best: TrialRecord) -> Curve | None:
        """The best trial's validation curve: kept from its trial, or (a best trial of an earlier run of the
        study) evaluated once more; none for a multi-class target decided by argmax (no threshold)."""
        if self.backend.classes and self.cfg.threshold.of_class is None:
            return None
        curve = self.runner.curve_of(best.number) if self.runner else None
        if curve is not None:
            return curve
        assert best.model_params is not None
        return evaluate_params(self.backend, self.cfg, ModelParams(**best.model_params)).curve

    # 7. the result on the parent run
    def finish(self, study: Any, best: TrialRecord, refit: Any, result: SweepResult) -> SweepResult:
        from lrsweep.report import write_artifacts

        cfg = self.cfg
        metrics = {f"test_{k}": v for k, v in result.test_metrics.items() if not math.isnan(v)}
        # the best trial's validation metrics under the children's names: one column sorts parents and children
        metrics |= {f"val_{k}": v for k, v in result.val_metrics.items() if not math.isnan(v)}
        if math.isfinite(result.threshold):  # (none: a multi-class target decided by the most probable class)
            metrics["threshold"] = result.threshold
        metrics |= {
            "best_trial": float(best.number),
            "finished_trials": result.n_finished,
            # this call's setup (session, data, preprocessing, caches): what the next plan of this data on this
            # kind of cluster learns its setup from (lrsweep.planning.history)
            SETUP_METRIC: self.phases.get("setup", 0.0),
        }
        bayes = result.bayes_metrics or {}
        metrics |= {f"bayes_test_{k}": v for k, v in bayes.items() if not math.isnan(v)}
        if "log_loss" in bayes:
            metrics["test_log_loss_excess"] = result.test_metrics["log_loss"] - bayes["log_loss"]  # >= 0 up to noise
        generated = result.data.get("generated") or {}
        for key in ("bayes_log_loss", "bayes_roc_auc"):
            if key in generated:
                metrics[f"table_{key}"] = float(generated[key])
        result.spend_usd = self.guard.spend()
        if result.spend_usd is not None:  # the last point of the spend curve (one per trial before it)
            self.tracker.parent_metrics({SPEND_METRIC: result.spend_usd}, step=len(result.trial_seconds) + 1)
        # the best configuration as tags (a resumed study's best changes; MLflow params are write-once)
        tags = {f"best.{k}": str(v) for k, v in best.params.items() if k not in (*runinfo.SWEEP_PARAMS, "log10_C")}
        shown = f"{result.threshold:.6g}" if math.isfinite(result.threshold) else "argmax"
        tags |= {"lrsweep.best_run_name": best.run_name, "lrsweep.threshold": shown}
        if result.stop_reason:
            tags[STOP_TAG] = result.stop_reason
        label = best.run_name.split(" ", 1)[1] if " " in best.run_name else best.run_name
        note = runinfo.parent_note(
            study=self.name, n_finished=result.n_finished, objective=cfg.objective.metric,
            best_value=result.best_value, best_label=label, threshold=result.threshold,
            strategy=cfg.threshold.strategy, test=result.test_metrics, of_class=result.of_class,
        )  # fmt: skip
        if cfg.tracking.log_model:  # logged by the writer while the plots are drawn here
            self.tracker.model(
                ModelToLog(
                    model=refit.model, input_example=refit.input_example,
                    example_predictions=refit.example_predictions, capabilities=self.backend.capabilities,
                    threshold=result.threshold, best_trial=best.number, name=runinfo.model_name(self.name),
                )
            )  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            art = None
            if cfg.tracking.enabled and cfg.tracking.artifacts:
                art = Path(tmp) / "artifacts"
                result.wall_seconds = time.perf_counter() - self.started
                write_artifacts(
                    art,
                    val_curve=self._best_curve(best),
                    test_scores=refit.test.scores,
                    threshold=result.threshold,
                    coefficients=refit.coefficients,
                    study=study,
                    result=result,
                )
            self._phase("artifacts")
            final = Final(
                metrics=metrics,
                tags=tags,
                artifacts=art,
                threshold=result.threshold,
                best_trial=best.number,
                objective=cfg.objective.metric,
                series=_best_so_far(study, self.sign),
                note=note,
                register=cfg.tracking.register,
                backfill=self._stopped_workers_trials(study),
                live_workers=sorted(w.id for w in self.worker.live()) if self.worker else [],
                invocation={
                    "new_trials": result.n_new,
                    "finished_trials": result.n_finished,
                    "wall_seconds": round(time.perf_counter() - self.started, 1),  # this call, up to its logging
                },
            )
            result.model_uri = self.tracker.finish(final)
            result.parent_run_id = self.tracker.parent_id
            result.experiment_id = getattr(self.tracker, "experiment_id", None)
        self._remember(study, result)
        self._phase("final_logging")
        self.phases |= getattr(self.tracker, "timings", {})  # e.g. how long the writer took to drain
        result.wall_seconds = time.perf_counter() - self.started
        result.phases = self.phases
        log.debug("phases (s): %s", self.phases)
        return result

    def _stopped_workers_trials(self, study: Any) -> list[TrialRecord]:
        """Finished trials of the study's other workers that have stopped: their writers may have died before
        logging them (the finisher's writer logs what MLflow lacks)."""
        if self.worker is None:
            return []
        me, live = self.worker.id, {w.id for w in self.worker.live()}
        theirs = [t for t in _finished(study) if t.user_attrs.get(WORKER_ATTR) not in (me, None)]
        return [r for r in (_record_of(t) for t in theirs if t.user_attrs[WORKER_ATTR] not in live) if r is not None]

    def _remember(self, study: Any, result: SweepResult) -> None:
        """What a later call with nothing to do reports without reading the data (and, when tracked, where
        the study is logged: a call that finds it there writes nothing)."""
        study.set_user_attr(
            FINAL,
            {
                "best_trial": result.best_trial,
                "finished": result.n_finished,
                "threshold": result.threshold,
                "test_metrics": result.test_metrics,
                "tracked": _tracked(self.cfg) if result.parent_run_id else None,
                "parent_run_id": result.parent_run_id,
                "experiment_id": result.experiment_id,
            },
        )
