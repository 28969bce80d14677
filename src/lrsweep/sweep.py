"""The study: create or resume it, run trials, refit the best configuration, test it once.

Flow of one sweep (``run_sweep``):
1. validate the config; start the MLflow writer (it imports mlflow while we work);
2. backend.setup: load, validate, split, preprocess, cache (once per sweep);
3. open the Optuna study (a journal file per study by default), lock it against a second process,
   turn trials a killed sweep left RUNNING into FAIL (marked interrupted, not counted);
4. open the MLflow parent run (backfilling finished trials MLflow never received);
5. ask/tell until the study holds ``search.n_trials`` finished trials;
6. refit the best on train+validation, evaluate on test at the validation threshold, log the model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import math
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lrsweep import __version__
from lrsweep.backends import Backend, Evaluation, make_backend
from lrsweep.config import (
    METRIC_DIRECTIONS,
    SOLVER_PENALTIES,
    Config,
    SearchConfig,
    search_identity,
    study_name,
    validate,
)
from lrsweep.errors import LrsweepError
from lrsweep.metrics import Curve, area_metrics, curve_from_scores, merge_curves, metrics_at
from lrsweep.redact import redact_mapping, redact_uri
from lrsweep.space import ModelParams, grid, suggest
from lrsweep.thresholds import choose_threshold
from lrsweep.tracking import NullTracker, Tracker, fail_parent, finalize_parent, open_tracker

__all__ = ["SweepResult", "run_sweep", "evaluate_params", "flatten"]

log = logging.getLogger("lrsweep")
INTERRUPTED = "lrsweep_interrupted"
RECORD = "lrsweep_record"


@dataclasses.dataclass
class SweepResult:
    study_name: str
    storage: str
    experiment: str
    tracking_uri: str | None
    parent_run_id: str | None
    model_uri: str | None
    n_finished: int
    n_new: int
    states: dict[str, int]
    best_params: dict[str, Any]
    best_value: float
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    threshold: float
    wall_seconds: float
    trial_seconds: list[float]
    summary: dict[str, Any]
    # generated tables: the true model on the same test rows (roc_auc, pr_auc, log_loss), the best achievable
    bayes_metrics: dict[str, float] | None = None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


# -- evaluation of one configuration ------------------------------------------------------------------
def _pool(evals: list[Evaluation]) -> tuple[Curve, float]:
    """One curve and log loss over all folds' held-out predictions."""
    if all(e.scores is not None for e in evals):
        y = np.concatenate([e.scores[0] for e in evals])  # type: ignore[index]
        p = np.concatenate([e.scores[1] for e in evals])  # type: ignore[index]
        curve = curve_from_scores(y, p)
    else:
        curve = merge_curves([e.curve for e in evals])
    n = sum(e.n for e in evals)
    return curve, sum(e.log_loss * e.n for e in evals) / n


def _metrics(curve: Curve, logloss: float, cfg: Config, params: ModelParams) -> tuple[dict[str, float], bool]:
    choice = choose_threshold(curve, cfg.threshold, params.threshold)
    m = metrics_at(curve, choice.index) | area_metrics(curve)
    m["log_loss"] = logloss
    m["threshold"] = choice.value
    return m, choice.feasible


def evaluate_params(
    backend: Backend, cfg: Config, params: ModelParams, trial: Any | None = None
) -> tuple[dict[str, float], list[tuple[str, float, int]], dict[str, float]]:
    """Validation metrics of one configuration; reports folds to ``trial`` and raises TrialPruned."""
    metric = cfg.objective.metric
    steps: list[tuple[str, float, int]] = []
    if backend.n_folds == 0:
        ev = backend.evaluate(params)
        evals = [ev]
        curve, ll = ev.curve, ev.log_loss
    else:
        evals = []
        for k in range(backend.n_folds):
            ev = backend.evaluate(params, k)
            evals.append(ev)
            fold_m, _ = _metrics(ev.curve, ev.log_loss, cfg, params)
            steps.append((f"fold_{metric}", fold_m[metric], k))
            if trial is not None and hasattr(trial, "report"):
                trial.report(fold_m[metric], k)
                if cfg.cv.prune and trial.should_prune():
                    import optuna

                    trial.set_user_attr("lrsweep_steps", steps)
                    raise optuna.TrialPruned(f"pruned after fold {k}: {metric}={fold_m[metric]:.4f}")
        curve, ll = _pool(evals)
    m, feasible = _metrics(curve, ll, cfg, params)
    fit = {
        "fit_seconds": sum(e.fit.seconds for e in evals),
        "n_iter": max(e.fit.n_iter for e in evals),
        "converged": float(all(e.fit.converged for e in evals)),
        "threshold_feasible": float(feasible),
    }
    return m, steps, fit


# -- study plumbing ----------------------------------------------------------------------------------
def _storage(cfg: Config, name: str) -> tuple[Any, str, Path]:
    from optuna.storages import JournalStorage, get_storage
    from optuna.storages.journal import JournalFileBackend

    folder = Path(cfg.study.dir)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / f"{name}.lock"
    url = cfg.study.storage
    if url and "://" in url:
        return get_storage(url), redact_uri(url), lock
    path = Path(url) if url else folder / f"{name}.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path))), str(path), lock


@contextlib.contextmanager
def _exclusive(lock_path: Path, name: str) -> Iterator[None]:
    """One live process per study; the OS drops the lock when the holder dies, even by kill -9."""
    with open(lock_path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LrsweepError(
                f"study {name!r} is being run by another lrsweep process",
                "wait for it to finish, or start a separate study with study.name=OTHER",
            ) from exc
        yield


def _sampler(cfg: Config) -> Any:
    import optuna

    s = cfg.search
    if s.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=s.n_startup_trials)
    return optuna.samplers.RandomSampler(seed=cfg.seed)  # random; grid enqueues its points first


def _recover(study: Any) -> int:
    """Trials left RUNNING by a killed sweep become FAIL, marked interrupted (so they are run again)."""
    from optuna.trial import TrialState

    storage = study._storage
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in stale:
        storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
        storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    if stale:
        log.warning("%d trial(s) interrupted by an earlier stop will be run again", len(stale))
    return len(stale)


def _finished(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False, states=done) if not t.user_attrs.get(INTERRUPTED)]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _environment() -> dict[str, str]:
    """Versions from package metadata (importing mlflow just to read its version costs ~2 s)."""
    from importlib.metadata import PackageNotFoundError, version

    env = {"lrsweep.version": __version__, "python.version": platform.python_version(), "platform": platform.platform()}
    for dist in ("scikit-learn", "optuna", "mlflow", "hydra-core", "pandas", "numpy", "pyspark"):
        with contextlib.suppress(PackageNotFoundError):
            env[f"{dist}.version"] = version(dist)
    return env


def pip_requirements(backend: Backend) -> list[str]:
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in backend.requirements]


def searched_space(cfg: Config, backend: Backend) -> SearchConfig:
    """``cfg.search`` with the backend's solver pool when the user named none (e.g. no newton-cholesky on hashed
    features). The study name still derives from ``cfg.search``: the pool follows from the config."""
    if backend.solvers is None or cfg.search.solvers is not None or set(backend.solvers) == set(SOLVER_PENALTIES):
        return cfg.search
    return dataclasses.replace(cfg.search, solvers=list(backend.solvers))


def _key(model_params: dict[str, Any]) -> str:
    return json.dumps(model_params, sort_keys=True, default=str)


# -- one trial ---------------------------------------------------------------------------------------
class _TrialRunner:
    def __init__(self, cfg: Config, backend: Backend, study: Any, tracker: Tracker | NullTracker) -> None:
        self.cfg, self.backend, self.study, self.tracker = cfg, backend, study, tracker
        self.search = searched_space(cfg, backend)
        self.lock = threading.Lock()
        # Completed configurations of this study, so an identical proposal (TPE re-draws points of small
        # categorical subspaces, e.g. penalty=none) reuses the result instead of refitting: fits are seeded.
        self.seen: dict[str, dict[str, Any]] = {}
        for t in _finished(study):
            rec = t.user_attrs.get(RECORD)
            if rec and rec["state"] == "COMPLETE" and rec.get("model_params"):
                self.seen.setdefault(_key(rec["model_params"]), rec)

    def run_one(self) -> dict[str, Any]:
        import optuna
        from optuna.trial import TrialState

        cfg = self.cfg
        trial = self.study.ask()
        start = time.time()
        params: ModelParams | None = None
        metrics: dict[str, float] = {}
        steps: list[tuple[str, float, int]] = []
        tags: dict[str, str] = {}
        value = None
        try:
            params = suggest(trial, self.search, cfg.threshold, has_solvers=self.backend.solvers is not None)
            same = self.seen.get(_key(params.as_dict()))
            if same is not None:
                metrics = dict(same["metrics"])
                steps = [tuple(x) for x in same.get("steps", [])]
                for _, fold_value, k in steps:  # the pruner sees a repeat like the original
                    trial.report(fold_value, int(k))
                tags["lrsweep.repeat_of"] = str(same["number"])
                value = metrics[f"val_{cfg.objective.metric}"]
            else:
                m, steps, fit = evaluate_params(self.backend, cfg, params, trial)
                metrics = {f"val_{k}": v for k, v in m.items() if k != "threshold"} | {"threshold": m["threshold"]}
                metrics |= fit
                value = m[cfg.objective.metric]
            state = "FAIL" if value is None or math.isnan(value) else "COMPLETE"
            if state == "FAIL":
                tags["lrsweep.failure"] = f"objective {cfg.objective.metric} is undefined (NaN)"
        except optuna.TrialPruned as exc:
            state, tags["lrsweep.pruned"] = "PRUNED", str(exc)
            steps = list(trial.user_attrs.get("lrsweep_steps", []))
        except KeyboardInterrupt:
            trial.set_user_attr(INTERRUPTED, True)
            self.study.tell(trial, state=TrialState.FAIL)
            raise
        except Exception as exc:  # a trial that raises is recorded as failed and the sweep goes on
            state = "FAIL"
            tags["lrsweep.failure"] = f"{type(exc).__name__}: {exc}"[:5000]
        end = time.time()
        record = self._record(trial.number, params, state, metrics, steps, tags, start, end)
        if state == "COMPLETE" and params is not None and "lrsweep.repeat_of" not in tags:
            with self.lock:
                self.seen.setdefault(_key(params.as_dict()), record)
        trial.set_user_attr(RECORD, record)  # the journal keeps it: MLflow can be backfilled from here
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
        steps: list[tuple[str, float, int]],
        tags: dict[str, str],
        start: float,
        end: float,
    ) -> dict[str, Any]:
        shown: dict[str, Any] = {"threshold_strategy": self.cfg.threshold.strategy}
        if params is not None:
            shown |= {k: v for k, v in params.as_dict().items() if v is not None}
            native = self.backend.native_params(params)
            shown |= {f"{self.backend.name}.{k}": v for k, v in native.items() if k not in shown}
        label = params.label() if params else ""
        return {
            "number": number,
            "state": state,
            "run_name": f"trial-{number:03d} {label}".strip(),
            "params": shown,
            "model_params": params.as_dict() if params else None,
            "metrics": {k: float(v) for k, v in metrics.items()},
            "steps": steps,
            "tags": tags,
            "start_ms": int(start * 1000),
            "end_ms": int(end * 1000),
        }


# -- the sweep ---------------------------------------------------------------------------------------
def run_sweep(cfg: Config, *, backend: Backend | None = None, progress: bool | None = None) -> SweepResult:
    """Run (or resume) the sweep described by ``cfg``; see the module docstring."""
    import optuna
    from optuna.trial import TrialState

    t_start = time.perf_counter()
    backend = backend or make_backend(cfg)
    validate(cfg, backend_solvers=backend.solvers is not None)
    name = study_name(cfg)
    if not cfg.study.resume:
        name = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    tracking = cfg.tracking
    tracker = open_tracker(tracking.enabled, tracking.uri, cfg.experiment_name, tracking.mode)
    parent_id: str | None = None
    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = round(now - mark, 3)
        mark = now

    try:
        prepared = backend.setup(cfg)
        phase("setup")
        storage, storage_desc, lock = _storage(cfg, name)
        with _exclusive(lock, name):
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            direction = METRIC_DIRECTIONS[cfg.objective.metric]
            try:
                study = optuna.create_study(
                    study_name=name,
                    storage=storage,
                    sampler=_sampler(cfg),
                    pruner=(
                        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
                        if cfg.cv.folds > 1 and cfg.cv.prune
                        else optuna.pruners.NopPruner()
                    ),
                    direction=direction,
                    load_if_exists=True,
                )
            except ValueError as exc:
                raise LrsweepError(f"cannot open study {name!r}: {exc}", "use another study.name") from exc
            if "lrsweep_identity" not in study.user_attrs:
                study.set_user_attr("lrsweep_identity", json.loads(json.dumps(search_identity(cfg), default=str)))
            _recover(study)
            finished = _finished(study)
            if cfg.search.sampler == "grid":
                _enqueue_grid(study, cfg, backend)

            env = _environment()
            commit = _git_commit()
            config_dict = redact_mapping(dataclasses.asdict(cfg))
            tags = {
                **env,
                "lrsweep.backend": backend.name,
                "lrsweep.dataset": cfg.dataset.label,
                "lrsweep.data_sha256": prepared.fingerprint.get("sha256", ""),
                "lrsweep.study_storage": storage_desc,
                "lrsweep.seed": str(cfg.seed),
                "mlflow.note.content": f"lrsweep sweep of study {name}",
            }
            if commit:
                tags["mlflow.source.git.commit"] = commit
            import yaml

            texts = {
                "config.yaml": yaml.safe_dump(config_dict, sort_keys=False),
                "data.json": json.dumps(
                    {
                        "fingerprint": prepared.fingerprint,
                        "rows": prepared.rows,
                        "features": prepared.features,
                        "dropped": prepared.dropped,
                    },
                    indent=2,
                ),
                "environment.json": json.dumps(env, indent=2),
            }
            params = flatten(config_dict) | {f"data.{k}": v for k, v in prepared.fingerprint.items()}
            params |= {"study.name": name, "study.storage": storage_desc}
            tracker.open(
                {
                    "study": name,
                    "writer_lock": str(lock.with_suffix(".writer.lock")),
                    "run_name": f"{backend.name} {cfg.search.name} {cfg.dataset.label} seed={cfg.seed}",
                    "params": params,
                    "tags": tags,
                    "texts": texts,
                    "backfill": [t.user_attrs[RECORD] for t in finished if RECORD in t.user_attrs],
                }
            )
            phase("open_study_and_parent_run")
            trial_seconds, n_new = _run_trials(cfg, backend, study, tracker, len(finished), progress)
            phase("trials")
            finished = _finished(study)
            states = Counter(t.state.name for t in finished)
            complete = [t for t in finished if t.state == TrialState.COMPLETE]
            if not complete:
                reasons = [t.user_attrs.get(RECORD, {}).get("tags", {}).get("lrsweep.failure") for t in finished]
                first = next((r for r in reasons if r), "no reason recorded")
                raise LrsweepError(
                    f"no trial completed ({len(finished)} finished, none successfully; first failure: {first})",
                    "check the data and the search ranges (e.g. raise search.max_iter)",
                )
            best = study.best_trial
            best_record = best.user_attrs[RECORD]
            best_params = ModelParams(**best_record["model_params"])
            threshold = float(best_record["metrics"]["threshold"])
            refit = backend.refit(best_params, threshold)
            test_m = metrics_at(refit.test.curve, refit.test.curve.index_at(threshold)) | area_metrics(refit.test.curve)
            test_m["log_loss"] = refit.test.log_loss
            bayes_m = _bayes_metrics(refit.reference)
            phase("refit_and_test")
            val_m = {k[4:]: v for k, v in best_record["metrics"].items() if k.startswith("val_")}
            wall = time.perf_counter() - t_start
            tracking_uri = _effective_uri(tracking.uri) if tracking.enabled else None
            summary = {
                "study": name,
                "storage": storage_desc,
                "backend": backend.name,
                "dataset": cfg.dataset.label,
                "experiment": cfg.experiment_name,
                "tracking_uri": redact_uri(tracking_uri) if tracking_uri else None,
                "ui_command": _ui_command(tracking_uri),
                "parent_run_id": parent_id,
                "n_finished": len(finished),
                "n_new": n_new,
                "states": dict(states),
                "best_trial": best.number,
                "best_params": best_record["params"],
                "objective": cfg.objective.metric,
                "best_value": best.value,
                "threshold_strategy": cfg.threshold.strategy,
                "threshold": threshold,
                "val_metrics": val_m,
                "test_metrics": test_m,
                "wall_seconds": wall,
                "data": prepared.fingerprint,
                "bayes_metrics": bayes_m,
            }
            model_uri = None
            parent_id = tracker.close()
            summary["parent_run_id"] = parent_id
            phase("drain_writer")
            if parent_id:
                model_uri = _finalize(
                    cfg, backend, study, refit, best_record, val_m, test_m, threshold, summary, parent_id, tracking_uri
                )
            phase("final_logging")
            wall = time.perf_counter() - t_start
            summary["wall_seconds"] = wall
            summary["model_uri"] = model_uri
            summary["phases"] = phases
            log.info("phases (s): %s", phases)
            return SweepResult(
                study_name=name,
                storage=storage_desc,
                experiment=cfg.experiment_name,
                tracking_uri=tracking_uri,
                parent_run_id=parent_id,
                model_uri=model_uri,
                n_finished=len(finished),
                n_new=n_new,
                states=dict(states),
                best_params=best_record["params"],
                best_value=float(best.value),
                val_metrics=val_m,
                test_metrics=test_m,
                threshold=threshold,
                wall_seconds=wall,
                trial_seconds=trial_seconds,
                summary=summary,
                bayes_metrics=bayes_m,
            )
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            tracker.close("KILLED") if tracker.opened else tracker.abandon()
        raise
    except BaseException as exc:
        reason = exc.line() if isinstance(exc, LrsweepError) else f"{type(exc).__name__}: {exc}"
        if tracker.opened:
            with contextlib.suppress(Exception):
                parent_id = tracker.close() or parent_id
            fail_parent(tracking.uri, parent_id, "FAILED", reason)
        else:
            tracker.abandon()
        raise
    finally:
        backend.close()


def _run_trials(
    cfg: Config, backend: Backend, study: Any, tracker: Tracker | NullTracker, done: int, progress: bool | None
) -> tuple[list[float], int]:
    """Run trials until the study holds search.n_trials finished ones (n_jobs threads)."""
    from tqdm import tqdm

    target = cfg.search.n_trials
    todo = max(target - done, 0)
    runner = _TrialRunner(cfg, backend, study, tracker)
    seconds: list[float] = []
    counter = {"left": todo}
    show = cfg.progress if progress is None else progress
    bar = tqdm(
        total=target,
        initial=min(done, target),
        desc="trials",
        unit="trial",
        disable=not show or None,
        dynamic_ncols=True,
        leave=False,
        file=sys.stderr,
    )
    errors: list[BaseException] = []

    def claim() -> bool:
        with runner.lock:
            if counter["left"] <= 0 or errors:
                return False
            counter["left"] -= 1
            return True

    def work() -> None:
        while claim():
            t0 = time.perf_counter()
            try:
                record = runner.run_one()
            except BaseException as exc:
                errors.append(exc)
                return
            with runner.lock:
                seconds.append(time.perf_counter() - t0)
                bar.update(1)
                with contextlib.suppress(ValueError):
                    bar.set_postfix_str(f"best {cfg.objective.metric}={study.best_value:.4f}", refresh=False)
                if record["state"] == "FAIL":
                    log.warning("trial %d failed: %s", record["number"], record["tags"].get("lrsweep.failure"))

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
    return seconds, len(seconds)


def _enqueue_grid(study: Any, cfg: Config, backend: Backend) -> None:
    """Queue the grid points the study does not hold yet (finished, running or waiting)."""
    from optuna.trial import TrialState

    seen = [t.params for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(INTERRUPTED)]
    seen += [t.params for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))]
    points = grid(searched_space(cfg, backend), cfg.threshold, has_solvers=backend.solvers is not None)

    def key(p: dict[str, Any]) -> str:
        return json.dumps({k: round(v, 12) if isinstance(v, float) else v for k, v in p.items()}, sort_keys=True)

    have = {key(p) for p in seen}
    fresh = [p for p in points if key(p) not in have]
    for p in fresh:
        study.enqueue_trial(p, skip_if_exists=False)
    if cfg.search.n_trials > len(points):
        log.warning("the grid has %d points; trials beyond it are drawn at random", len(points))


def _effective_uri(uri: str | None) -> str:
    if uri:
        return uri
    import mlflow

    return str(mlflow.get_tracking_uri())


def _ui_command(uri: str | None) -> str:
    if not uri:
        return ""
    if uri.startswith(("http://", "https://")):
        return f"open {redact_uri(uri)} in a browser"
    if uri in ("sqlite:///mlflow.db", f"sqlite:///{Path.cwd() / 'mlflow.db'}"):
        return "mlflow ui   (in this directory)"
    return f"mlflow ui --backend-store-uri {redact_uri(uri)}"


def _finalize(
    cfg: Config,
    backend: Backend,
    study: Any,
    refit: Any,
    best_record: dict[str, Any],
    val_m: dict[str, float],
    test_m: dict[str, float],
    threshold: float,
    summary: dict[str, Any],
    parent_id: str,
    tracking_uri: str | None,
) -> str | None:
    from lrsweep.report import write_artifacts

    params = {f"best.{k}": v for k, v in best_record["params"].items()}
    metrics = {f"test_{k}": v for k, v in test_m.items() if not math.isnan(v)}
    metrics |= {f"best_val_{k}": v for k, v in val_m.items() if not math.isnan(v)}
    metrics |= {"threshold": threshold, "best_trial": float(best_record["number"])}
    bayes = summary.get("bayes_metrics") or {}
    metrics |= {f"bayes_test_{k}": v for k, v in bayes.items() if not math.isnan(v)}
    if "log_loss" in bayes:
        metrics["test_log_loss_excess"] = test_m["log_loss"] - bayes["log_loss"]  # >= 0 up to noise
    generated = summary.get("data", {}).get("generated") or {}
    for key in ("bayes_log_loss", "bayes_roc_auc"):
        if key in generated:
            metrics[f"table_{key}"] = float(generated[key])
    tags = {"lrsweep.best_run_name": best_record["run_name"], "lrsweep.threshold": f"{threshold:.6g}"}
    with tempfile.TemporaryDirectory() as tmp:
        art = None
        if cfg.tracking.artifacts:
            art = Path(tmp) / "artifacts"
            curve, _ = _best_val_curve(backend, cfg, best_record)
            write_artifacts(
                art,
                val_curve=curve,
                test_scores=refit.test.scores,
                threshold=threshold,
                coefficients=refit.coefficients,
                study=study,
                summary=summary,
            )
        log_model = None
        if cfg.tracking.log_model:
            reqs = pip_requirements(backend)

            def log_model() -> str:
                return backend.log_model(refit, threshold, reqs)

        return finalize_parent(cfg.tracking.uri, parent_id, params, metrics, tags, art, log_model)


def _bayes_metrics(reference: Evaluation | None) -> dict[str, float] | None:
    """Threshold-free figures of a generated table's true model on the test rows: the best any model can do."""
    if reference is None:
        return None
    out = {k: v for k, v in area_metrics(reference.curve).items() if k in ("roc_auc", "pr_auc")}
    out["log_loss"] = reference.log_loss
    return out


def _best_val_curve(backend: Backend, cfg: Config, best_record: dict[str, Any]) -> tuple[Curve, float]:
    """The best configuration's validation curve, for the metric-vs-threshold plot (one more fit)."""
    params = ModelParams(**best_record["model_params"])
    if backend.n_folds == 0:
        ev = backend.evaluate(params)
        return ev.curve, ev.log_loss
    return _pool([backend.evaluate(params, k) for k in range(backend.n_folds)])
