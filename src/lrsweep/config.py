"""Typed configuration: one dataclass per Hydra config group, and the checks Hydra cannot do.

Hydra composes YAML from ``lrsweep/conf`` onto these schemas (registered in the ConfigStore by
``cli.py``), so an unknown key or a wrong type fails at compose time with the key named. What a
schema cannot express (C > 0, l1_ratio in [0, 1], a solver able to fit the penalty, ...) is checked
by :func:`validate`, once, before any data is read or any run is created.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lrsweep.errors import LrsweepError

__all__ = [
    "BackendConfig",
    "CVConfig",
    "ClusterConfig",
    "Config",
    "DatasetConfig",
    "FloatRange",
    "ObjectiveConfig",
    "SearchConfig",
    "SplitConfig",
    "StudyConfig",
    "ThresholdConfig",
    "TrackingConfig",
    "PENALTIES",
    "SOLVER_PENALTIES",
    "METRIC_DIRECTIONS",
    "THRESHOLD_STRATEGIES",
    "search_identity",
    "validate",
]

# Which penalty families each scikit-learn solver can fit (NOTES.md, scikit-learn 1.9 behaviour checked:
# liblinear refuses C=inf and elastic net; lbfgs/newton-*/sag refuse any L1 part).
PENALTIES = ("none", "l2", "l1", "elasticnet")
SOLVER_PENALTIES: dict[str, tuple[str, ...]] = {
    "lbfgs": ("none", "l2"),
    "newton-cg": ("none", "l2"),
    "newton-cholesky": ("none", "l2"),
    "sag": ("none", "l2"),
    "saga": ("none", "l2", "l1", "elasticnet"),
    "liblinear": ("l2", "l1"),
}
# The metrics an objective may name, and whether larger is better.
METRIC_DIRECTIONS: dict[str, str] = {
    "roc_auc": "maximize",
    "pr_auc": "maximize",
    "log_loss": "minimize",
    "accuracy": "maximize",
    "precision": "maximize",
    "recall": "maximize",
    "f1": "maximize",
    "specificity": "maximize",
    "balanced_accuracy": "maximize",
}
THRESHOLD_STRATEGIES = ("f1", "youden", "recall_at", "precision_at", "cost", "fixed", "searched")
SAMPLERS = ("tpe", "random", "grid")


@dataclass
class ClusterConfig:
    """Where backend=spark runs (the scikit-learn backend ignores it): conf/cluster/{local,standalone}.yaml."""

    name: str = "local"
    # local[*] | local[N] | spark://HOST:PORT | yarn; cluster=standalone leaves it null, to be given
    master: str | None = "local[*]"
    # extra Spark settings, e.g. {spark.executor.memory: 4g}; credential-like values are redacted when logged
    spark_conf: dict[str, str] = field(default_factory=dict)


@dataclass
class BackendConfig:
    name: str = "sklearn"
    # Spark only: held-out parts up to this many rows are collected for exact curves (as scikit-learn's);
    # larger ones get a curve of `bins` probability bins aggregated in Spark. 0: always binned.
    exact_max_rows: int = 100_000
    bins: int = 10_000
    # Spark only: a Parquet input at least this large (MB) is read by Spark directly (seeded hash split,
    # approximate medians) instead of through pandas. None: always through pandas.
    spark_read_min_mb: float | None = 256.0
    aggregation_depth: int = 2  # Spark LogisticRegression's treeAggregate depth
    # Spark only: cached frames get at most ceil(rows / rows_per_partition) partitions. Every task of every
    # L-BFGS pass has a fixed cost, so small data fits faster in fewer tasks (telco, local[2]: 1 partition
    # fits in half the time of 2).
    rows_per_partition: int = 100_000


@dataclass
class DatasetConfig:
    """Defaults: the bundled telco churn data (as conf/dataset/telco_churn.yaml); dataset=csv clears them."""

    # None: the file's name
    name: str | None = "telco_churn"
    # None: the copy bundled inside the package (datasets/<name>.csv.gz)
    path: str | None = None
    format: str = "auto"  # auto | csv | parquet
    target: str | None = "churn"
    # The label that counts as positive, compared as text ("Yes", "1", "true"); None: inferred for 0/1, yes/no
    positive: str | None = "Yes"
    drop: list[str] = field(default_factory=list)
    id_columns: list[str] = field(default_factory=list)
    # None: detect (non-numeric columns are categorical); a list: exactly these are categorical
    categorical: list[str] | None = None
    # Categorical columns hashed into hash_features buckets (Spark FeatureHasher's MurmurHash3 of "column=value",
    # seed 42: the same buckets on both backends) instead of one-hot encoded: for ids with many levels.
    hashed: list[str] = field(default_factory=list)
    hash_features: int = 2**20
    # Generated tables only (dataset=ctr): rows to generate and the generator's seed (not the sweep's seed).
    rows: int | None = None
    seed: int = 0

    @property
    def label(self) -> str:
        """The dataset's name in experiment names: ``name``, else the file's stem."""
        if self.name:
            return self.name
        if self.path:
            return Path(self.path).name.split(".")[0] or "data"
        return "data"


@dataclass
class SplitConfig:
    val_size: float = 0.2
    test_size: float = 0.2


@dataclass
class CVConfig:
    folds: int = 1  # >1: K-fold CV on train+validation, test held out
    prune: bool = True  # median pruner over folds


@dataclass
class FloatRange:
    low: float = 0.0
    high: float = 1.0
    log: bool = False


@dataclass
class SearchConfig:
    name: str = "default"
    n_trials: int = 50
    sampler: str = "tpe"  # tpe | random | grid
    n_jobs: int = 1
    n_startup_trials: int = 10  # TPE random start
    grid_points: int = 5  # grid sampler: values per continuous parameter
    penalties: list[str] = field(default_factory=lambda: list(PENALTIES))
    C: FloatRange = field(default_factory=lambda: FloatRange(1e-4, 1e2, True))
    l1_ratio: FloatRange = field(default_factory=lambda: FloatRange(0.05, 0.95, False))
    # None: every solver that can fit the penalty (scikit-learn only; Spark has no solver choice)
    solvers: list[str] | None = None
    class_weight: list[str] = field(default_factory=lambda: ["none", "balanced"])
    max_iter: int = 1000
    tol: float = 1e-4


@dataclass
class ThresholdConfig:
    strategy: str = "f1"
    min_recall: float = 0.8  # recall_at
    min_precision: float = 0.8  # precision_at
    cost_fp: float = 1.0  # cost
    cost_fn: float = 5.0  # cost
    value: float = 0.5  # fixed
    low: float = 0.05  # searched
    high: float = 0.95  # searched


@dataclass
class ObjectiveConfig:
    metric: str = "roc_auc"


@dataclass
class StudyConfig:
    # None: derived from the experiment and the parts of the config that define the search
    name: str | None = None
    resume: bool = True
    # None: an Optuna journal file per study under ``dir`` (1-3 ms per trial, vs ~20 ms for sqlite)
    storage: str | None = None
    dir: str = "lrsweep_studies"


@dataclass
class TrackingConfig:
    enabled: bool = True
    # None: MLflow's own default (sqlite:///mlflow.db in the working directory)
    uri: str | None = None
    # None: "lrsweep-<dataset.name>"
    experiment: str | None = None
    # background: a writer process does every MLflow call; inline: in the sweep's own thread
    mode: str = "background"
    log_model: bool = True
    artifacts: bool = True


@dataclass
class Config:
    backend: BackendConfig = field(default_factory=BackendConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    study: StudyConfig = field(default_factory=StudyConfig)
    seed: int = 42
    progress: bool = True
    debug: bool = False

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or f"lrsweep-{self.dataset.label}"


def _choice(value: str, allowed: tuple[str, ...] | list[str], key: str) -> None:
    if value not in allowed:
        raise LrsweepError(f"{key}={value!r} is not known", f"use one of: {', '.join(allowed)}")


def compatible_solvers(penalty: str, solvers: list[str] | None) -> list[str]:
    """The solvers (from ``solvers``, or all) able to fit ``penalty``, in a stable order."""
    pool = list(SOLVER_PENALTIES) if solvers is None else solvers
    return [s for s in pool if penalty in SOLVER_PENALTIES[s]]


def validate(cfg: Config, *, backend_solvers: bool = True) -> None:
    """Raise LrsweepError naming the first impossible value and its fix."""
    s = cfg.search
    if s.n_trials <= 0:
        raise LrsweepError(f"search.n_trials={s.n_trials} must be at least 1", "set search.n_trials=50, say")
    if s.n_jobs <= 0:
        raise LrsweepError(f"search.n_jobs={s.n_jobs} must be at least 1", "set search.n_jobs=1")
    _choice(s.sampler, SAMPLERS, "search.sampler")
    if s.grid_points < 1:
        raise LrsweepError("search.grid_points must be at least 1", "set search.grid_points=5")
    if not s.penalties:
        raise LrsweepError("search.penalties is empty", f"list some of: {', '.join(PENALTIES)}")
    for p in s.penalties:
        _choice(p, PENALTIES, "a penalty in search.penalties")
    if s.C.low <= 0 or s.C.high <= 0 or math.isnan(s.C.low) or math.isnan(s.C.high):
        raise LrsweepError(
            f"C must be > 0 (got search.C.low={s.C.low}, search.C.high={s.C.high})",
            "use a positive range such as search.C.low=1e-4 search.C.high=100; search.penalties=[none] fits no penalty",
        )
    if s.C.low > s.C.high:
        raise LrsweepError("search.C.low is above search.C.high", "swap them")
    if "elasticnet" in s.penalties:
        lo, hi = s.l1_ratio.low, s.l1_ratio.high
        if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
            raise LrsweepError(
                f"l1_ratio must lie in [0, 1] (got search.l1_ratio.low={lo}, search.l1_ratio.high={hi})",
                "use e.g. search.l1_ratio.low=0.05 search.l1_ratio.high=0.95",
            )
        if lo > hi:
            raise LrsweepError("search.l1_ratio.low is above search.l1_ratio.high", "swap them")
        if s.l1_ratio.log and lo <= 0:
            raise LrsweepError(
                "a log-scaled l1_ratio range needs search.l1_ratio.low > 0", "raise low or set log=false"
            )
    if s.max_iter <= 0:
        raise LrsweepError(f"search.max_iter={s.max_iter} must be at least 1", "set search.max_iter=1000")
    if s.tol <= 0:
        raise LrsweepError(f"search.tol={s.tol} must be > 0", "set search.tol=1e-4")
    for cw in s.class_weight:
        _choice(cw, ("none", "balanced"), "a value in search.class_weight")
    if not s.class_weight:
        raise LrsweepError("search.class_weight is empty", "use [none], [balanced] or [none,balanced]")
    if backend_solvers:
        if s.solvers is not None:
            if not s.solvers:
                raise LrsweepError("search.solvers is empty", "remove it (null = every compatible solver)")
            for sol in s.solvers:
                _choice(sol, tuple(SOLVER_PENALTIES), "a solver in search.solvers")
        for p in s.penalties:
            if not compatible_solvers(p, s.solvers):
                able = [k for k, v in SOLVER_PENALTIES.items() if p in v]
                raise LrsweepError(
                    f"no solver in search.solvers={s.solvers} can fit the {p} penalty",
                    f"add one of {', '.join(able)} to search.solvers, or drop {p} from search.penalties",
                )

    t = cfg.threshold
    _choice(t.strategy, THRESHOLD_STRATEGIES, "threshold.strategy")
    for key in ("min_recall", "min_precision", "value", "low", "high"):
        v = getattr(t, key)
        if not 0.0 <= v <= 1.0:
            raise LrsweepError(f"threshold.{key}={v} must lie in [0, 1]", f"set threshold.{key} between 0 and 1")
    if t.low >= t.high:
        raise LrsweepError("threshold.low must be below threshold.high", "e.g. threshold.low=0.05 threshold.high=0.95")
    if t.cost_fp < 0 or t.cost_fn < 0 or t.cost_fp + t.cost_fn == 0:
        raise LrsweepError("threshold.cost_fp and threshold.cost_fn must be >= 0 and not both 0", "e.g. cost_fn=5")

    _choice(cfg.objective.metric, tuple(METRIC_DIRECTIONS), "objective.metric")
    sp = cfg.split
    for key in ("val_size", "test_size"):
        v = getattr(sp, key)
        if not 0.0 < v < 1.0:
            raise LrsweepError(f"split.{key}={v} must lie strictly between 0 and 1", f"e.g. split.{key}=0.2")
    if sp.val_size + sp.test_size >= 0.9:
        raise LrsweepError(
            f"split.val_size + split.test_size = {sp.val_size + sp.test_size:.2f} leaves almost nothing to train on",
            "keep their sum under 0.9",
        )
    if cfg.cv.folds < 1:
        raise LrsweepError(f"cv.folds={cfg.cv.folds} must be at least 1", "use cv.folds=1 (no CV) or 5")
    if cfg.cv.folds == 1 and cfg.cv.prune is False:
        pass  # pruning only means something with folds
    ds = cfg.dataset
    _choice(ds.format, ("auto", "csv", "parquet"), "dataset.format")
    if ds.path is None and ds.name is None:
        raise LrsweepError("no data file given", "add dataset.path=FILE dataset.target=COLUMN")
    if ds.hash_features < 2:
        raise LrsweepError(f"dataset.hash_features={ds.hash_features} must be at least 2", "e.g. 1048576 (2**20)")
    if ds.rows is not None and ds.rows < 100:
        raise LrsweepError(f"dataset.rows={ds.rows} is too few to generate", "use dataset.rows=100000 or more")
    if ds.seed < 0:
        raise LrsweepError(f"dataset.seed={ds.seed} must be >= 0", "use dataset.seed=0")
    if ds.hashed and cfg.backend.name == "sklearn" and "newton-cholesky" in (s.solvers or []):
        raise LrsweepError(
            f"newton-cholesky cannot fit hashed features: it builds a dense {ds.hash_features}^2 Hessian",
            "drop newton-cholesky from search.solvers (without search.solvers it is left out by itself)",
        )
    clash = set(ds.hashed) & set(ds.drop + ds.id_columns)
    if clash:
        raise LrsweepError(f"column(s) {sorted(clash)} are both hashed and dropped", "remove them from one list")
    if not cfg.dataset.target:
        raise LrsweepError("no target column given", "add dataset.target=COLUMN (the binary label to predict)")
    _choice(cfg.tracking.mode, ("background", "inline"), "tracking.mode")
    cl = cfg.cluster
    if cfg.backend.name == "spark" and not cl.master:
        raise LrsweepError(f"cluster={cl.name} needs the master's URL", "add cluster.master=spark://HOST:7077")
    if cfg.backend.name == "spark" and cl.name == "standalone" and not str(cl.master).startswith("spark://"):
        raise LrsweepError(
            f"cluster.master={cl.master} is not a standalone master's URL", "use cluster.master=spark://HOST:7077"
        )


_LATER_DATASET_FIELDS = ("hashed", "hash_features", "rows", "seed")


def search_identity(cfg: Config) -> dict[str, Any]:
    """The parts of the config that define which trials a study holds (not how many, nor where logged)."""
    # Dataset fields added after the first release count only when set, so older studies keep their names.
    fresh = DatasetConfig(name=None, target=None, positive=None)
    dataset = {
        k: v
        for k, v in dataclasses.asdict(cfg.dataset).items()
        if k not in _LATER_DATASET_FIELDS or v != getattr(fresh, k)
    }
    ident = {
        "backend": cfg.backend.name,
        "dataset": dataset,
        "split": dataclasses.asdict(cfg.split),
        "cv": dataclasses.asdict(cfg.cv),
        "search": {k: v for k, v in dataclasses.asdict(cfg.search).items() if k not in ("n_trials", "n_jobs")},
        "threshold": dataclasses.asdict(cfg.threshold),
        "objective": cfg.objective.metric,
        "seed": cfg.seed,
    }
    return ident


def study_name(cfg: Config) -> str:
    """``<experiment>-<backend>-<search>-<8 hex>``: the same search resumes the same study."""
    if cfg.study.name:
        return cfg.study.name
    digest = hashlib.sha256(json.dumps(search_identity(cfg), sort_keys=True, default=str).encode()).hexdigest()
    return f"{cfg.experiment_name}-{cfg.backend.name}-{cfg.search.name}-{digest[:8]}"
