"""Typed configuration: the schema of every config group, the checks across groups, and study naming.

Hydra composes YAML from the shipped ``lrsweep/conf`` (and a project's own ``conf/``) onto these schemas,
so an unknown key or a wrong type fails at compose time with the key named. Groups whose options carry
different settings have a base schema and one subclass per option, declared beside the code that uses them
and registered by ``cli.py``: ``backend`` (``backends/base.py``, ``backends/spark.py``), ``cluster``
(``clusters.py``) and ``threshold`` (``thresholds.py``). Each schema checks its own values (``check()``);
:func:`validate` runs those checks, then the few that span groups, once, before any data is read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lrsweep.backends.base import BackendConfig
from lrsweep.clusters import ClusterConfig, LocalCluster
from lrsweep.errors import LrsweepError
from lrsweep.launch.config import LaunchConfig
from lrsweep.planning.calibrate import CalibrationConfig
from lrsweep.planning.prices import PricesConfig
from lrsweep.thresholds import F1Threshold, ThresholdConfig

if TYPE_CHECKING:
    from lrsweep.backends.base import Capabilities
    from lrsweep.space import SolverPool

__all__ = [
    "BackendConfig",
    "BudgetConfig",
    "PlanConfig",
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
    "METRIC_DIRECTIONS",
    "MULTICLASS",
    "MULTICLASS_ONLY_METRICS",
    "SAMPLERS",
    "FIDELITIES",
    "SOURCES",
    "choice",
    "search_identity",
    "study_name",
    "validate",
]

PENALTIES = ("none", "l2", "l1", "elasticnet")
# The metrics an objective may name, and whether larger is better.
METRIC_DIRECTIONS: dict[str, Literal["maximize", "minimize"]] = {
    "roc_auc": "maximize",
    "pr_auc": "maximize",
    "log_loss": "minimize",
    "accuracy": "maximize",
    "precision": "maximize",
    "recall": "maximize",
    "f1": "maximize",
    "specificity": "maximize",
    "balanced_accuracy": "maximize",
    # a multi-class target only (lrsweep.multiclass): the per-class figures averaged weighted by class size (the
    # plain names are macro averages there)
    "f1_weighted": "maximize",
    "precision_weighted": "maximize",
    "recall_weighted": "maximize",
}
MULTICLASS_ONLY_METRICS = ("f1_weighted", "precision_weighted", "recall_weighted")
MULTICLASS = ("multinomial", "ovr", "both")  # search.multiclass: how a target of more than two classes is fitted
MAX_CLASSES = 20  # dataset.max_classes' default
SAMPLERS = ("tpe", "random", "grid")
FIDELITIES = ("full", "halving")
PROMOTIONS = ("quota", "asha")  # search.promotion under halving (lrsweep.halving)
RUNG_RESOURCES = ("rows", "iterations")  # search.rung_resource: what a halving rung gives a share of
SOURCES = ("bundled", "file", "generated")


def choice(value: Any, allowed: tuple[str, ...] | list[str], key: str) -> None:
    """Refuse ``value`` unless it is one of ``allowed``, naming the key and the choices."""
    if value not in allowed:
        raise LrsweepError(f"{key}={value!r} is not known", f"use one of: {', '.join(allowed)}")


# -- groups with one schema -----------------------------------------------------------------------------
@dataclass
class DatasetConfig:
    """Defaults: the bundled telco churn data (as conf/dataset/telco_churn.yaml); dataset=csv clears them."""

    # None: the file's name
    name: str | None = "telco_churn"
    # where the table comes from: bundled (shipped in the package, by name) | file (dataset.path) | generated
    # (dataset.generator writes it into the cache on first use, or dataset.path names a table it wrote).
    # None: file when a path is given, else bundled.
    source: str | None = None
    # a local path or a URI (s3://, gs://, https://, file://)
    path: str | None = None
    format: str = "auto"  # auto | csv | parquet
    sep: str | None = None  # a CSV's field separator; None: sniffed from its first lines (one of , ; tab |)
    encoding: str | None = None  # a CSV's text encoding (e.g. latin-1); None: UTF-8, a byte-order mark skipped
    target: str | None = "churn"
    # The label that counts as positive, compared as text ("Yes", "1", "true"); None: inferred for 0/1, yes/no, and
    # a target of more than two classes is fitted as a multi-class problem (search.multiclass); set on such a
    # target, that class is fitted against the rest (binary)
    positive: str | None = "Yes"
    # a multi-class target with more classes than this is refused (a stray id or a numeric column named as target)
    max_classes: int = MAX_CLASSES
    drop: list[str] = field(default_factory=list)
    id_columns: list[str] = field(default_factory=list)
    # None: detect (non-numeric columns are categorical); a list: exactly these are categorical
    categorical: list[str] | None = None
    # Categorical columns hashed into hash_features buckets (Spark FeatureHasher's MurmurHash3 of "column=value",
    # seed 42: the same buckets on both backends) instead of one-hot encoded: for ids with many levels.
    hashed: list[str] = field(default_factory=list)
    hash_features: int = 2**20
    # source=generated: which generator (ctr), how many rows, and the generator's seed (not the sweep's seed)
    generator: str | None = None
    rows: int | None = None
    seed: int = 0

    @property
    def label(self) -> str:
        """The dataset's name in experiment names: ``name``, else the file's stem."""
        if self.name:
            return self.name
        if self.path:
            return Path(self.path.rstrip("/")).name.split(".")[0] or "data"
        return "data"

    @property
    def kind(self) -> str:
        """The source kind, ``source`` or what it defaults to."""
        return self.source or ("file" if self.path else "bundled")

    def check(self) -> None:
        choice(self.format, ("auto", "csv", "parquet"), "dataset.format")
        if self.sep is not None and len(self.sep.replace("\\t", "\t")) != 1:
            raise LrsweepError(f"dataset.sep={self.sep!r} must be one character", "e.g. dataset.sep=';' or '\\t'")
        if self.encoding is not None:
            import codecs

            try:
                codecs.lookup(self.encoding)
            except LookupError:
                problem = f"dataset.encoding={self.encoding!r} is not an encoding Python knows"
                raise LrsweepError(problem, "e.g. dataset.encoding=latin-1") from None
        if self.source is not None:
            choice(self.source, SOURCES, "dataset.source")
        kind = self.kind
        if kind == "file" and not self.path:
            raise LrsweepError("no data file given", "add dataset.path=FILE dataset.target=COLUMN")
        if kind == "bundled" and not self.name:
            raise LrsweepError("no data file given", "add dataset.path=FILE dataset.target=COLUMN")
        if kind == "generated" and not self.generator:
            raise LrsweepError("dataset.source=generated needs dataset.generator", "use dataset=ctr")
        if kind != "generated" and (self.rows is not None or self.generator is not None):
            raise LrsweepError(
                "dataset.rows only applies to a generated table (dataset.source=generated)",
                "use dataset=ctr dataset.rows=N, or remove dataset.rows",
            )
        if kind == "bundled" and self.path is not None:
            raise LrsweepError(
                "dataset.path is set but dataset.source=bundled reads the packaged copy", "use dataset=csv"
            )
        if self.hash_features < 2:
            raise LrsweepError(f"dataset.hash_features={self.hash_features} must be at least 2", "e.g. 1048576 (2**20)")
        if self.rows is not None and self.rows < 100:
            raise LrsweepError(f"dataset.rows={self.rows} is too few to generate", "use dataset.rows=100000 or more")
        if self.seed < 0:
            raise LrsweepError(f"dataset.seed={self.seed} must be >= 0", "use dataset.seed=0")
        if self.max_classes < 3:
            raise LrsweepError(
                f"dataset.max_classes={self.max_classes} must be at least 3", f"use dataset.max_classes={MAX_CLASSES}"
            )
        clash = set(self.hashed) & set(self.drop + self.id_columns)
        if clash:
            raise LrsweepError(f"column(s) {sorted(clash)} are both hashed and dropped", "remove them from one list")
        if not self.target:
            raise LrsweepError("no target column given", "add dataset.target=COLUMN (the binary label to predict)")


@dataclass
class SplitConfig:
    val_size: float = 0.2
    test_size: float = 0.2

    def check(self) -> None:
        for key in ("val_size", "test_size"):
            v = getattr(self, key)
            if not 0.0 < v < 1.0:
                raise LrsweepError(f"split.{key}={v} must lie strictly between 0 and 1", f"e.g. split.{key}=0.2")
        if self.val_size + self.test_size >= 0.9:
            raise LrsweepError(
                f"split.val_size + split.test_size = {self.val_size + self.test_size:.2f} leaves almost nothing to "
                "train on",
                "keep their sum under 0.9",
            )


@dataclass
class CVConfig:
    folds: int = 1  # >1: K-fold CV on train+validation, test held out
    prune: bool = True  # median pruner over folds

    def check(self) -> None:
        if self.folds < 1:
            raise LrsweepError(f"cv.folds={self.folds} must be at least 1", "use cv.folds=1 (no CV) or 5")


@dataclass
class FloatRange:
    low: float = 0.0
    high: float = 1.0
    log: bool = False


@dataclass
class SearchConfig:
    """The search space in the shared vocabulary (see ``space.py``) and how it is searched."""

    name: str = "default"
    n_trials: int = 50
    sampler: str = "tpe"  # tpe | random | grid
    n_jobs: int = 1
    n_startup_trials: int = 10  # TPE random start
    grid_points: int = 5  # grid sampler: values per continuous parameter
    penalties: list[str] = field(default_factory=lambda: list(PENALTIES))
    C: FloatRange = field(default_factory=lambda: FloatRange(1e-4, 1e2, True))
    l1_ratio: FloatRange = field(default_factory=lambda: FloatRange(0.05, 0.95, False))
    # None: every solver that can fit the penalty (backends with a solver choice, i.e. scikit-learn)
    solvers: list[str] | None = None
    class_weight: list[str] = field(default_factory=lambda: ["none", "balanced"])
    max_iter: int = 1000
    tol: float = 1e-4
    # a target of more than two classes: multinomial (one softmax model), ovr (one binary model per class against
    # the rest, the course's one-vs-all), or both (the search tries each); a binary target ignores it
    multiclass: str = "multinomial"
    # full: every trial fits all the training rows; halving: successive halving over nested, seeded fractions of
    # them (1/eta^(rungs-1), ..., 1/eta, all), a successive-halving pruner promoting the best 1/eta of each rung
    fidelity: str = "full"
    eta: int = 3
    rungs: int = 3
    # which trials go on from a rung (lrsweep.halving): quota, the best 1/eta of those that reached it (and its best
    # so far); asha, Optuna's SuccessiveHalvingPruner (the best 1/eta of those that reached it so far: under TPE
    # nearly every late trial)
    promotion: str = "quota"
    # what a rung is a share of: rows, the training rows (nested, seeded); iterations, search.max_iter on all the
    # rows (on Spark a pass over the data, not a row, is the unit of cost: a fit on 1/9 of the rows costs nearly
    # what one on all of them does)
    rung_resource: str = "rows"

    def rung(self, params: Any, fraction: float) -> tuple[Any, float]:
        """A rung's configuration and the share of the training rows it fits: rung_resource=rows, ``params`` on
        ``fraction`` of the rows; iterations, ``params`` with max_iter cut to ``fraction`` of it (at least one),
        on all the rows."""
        if self.rung_resource == "rows" or fraction >= 1.0:
            return params, fraction
        return dataclasses.replace(params, max_iter=max(1, round(params.max_iter * fraction))), 1.0

    def row_rungs(self) -> list[float]:
        """The training-row shares of the rungs below the top one, drawn once in the sweep's setup (none unless
        the rungs are over rows)."""
        return self.fractions()[:-1] if self.rung_resource == "rows" else []

    def fractions(self) -> list[float]:
        """The training-row fraction of each rung, smallest first (one rung of all the rows without halving)."""
        if self.fidelity != "halving":
            return [1.0]
        return [float(self.eta) ** -(self.rungs - 1 - r) for r in range(self.rungs)]

    def check(self) -> None:
        if self.n_trials <= 0:
            raise LrsweepError(f"search.n_trials={self.n_trials} must be at least 1", "set search.n_trials=50, say")
        if self.n_jobs <= 0:
            raise LrsweepError(f"search.n_jobs={self.n_jobs} must be at least 1", "set search.n_jobs=1")
        choice(self.sampler, SAMPLERS, "search.sampler")
        choice(self.multiclass, MULTICLASS, "search.multiclass")
        if self.grid_points < 1:
            raise LrsweepError("search.grid_points must be at least 1", "set search.grid_points=5")
        if not self.penalties:
            raise LrsweepError("search.penalties is empty", f"list some of: {', '.join(PENALTIES)}")
        for p in self.penalties:
            choice(p, PENALTIES, "a penalty in search.penalties")
        C = self.C
        if C.low <= 0 or C.high <= 0 or math.isnan(C.low) or math.isnan(C.high):
            raise LrsweepError(
                f"C must be > 0 (got search.C.low={C.low}, search.C.high={C.high})",
                "use a positive range such as search.C.low=1e-4 search.C.high=100; search.penalties=[none] fits no "
                "penalty",
            )
        if C.low > C.high:
            raise LrsweepError("search.C.low is above search.C.high", "swap them")
        if "elasticnet" in self.penalties:
            lo, hi = self.l1_ratio.low, self.l1_ratio.high
            if not (0.0 <= lo <= 1.0 and 0.0 <= hi <= 1.0):
                raise LrsweepError(
                    f"l1_ratio must lie in [0, 1] (got search.l1_ratio.low={lo}, search.l1_ratio.high={hi})",
                    "use e.g. search.l1_ratio.low=0.05 search.l1_ratio.high=0.95",
                )
            if lo > hi:
                raise LrsweepError("search.l1_ratio.low is above search.l1_ratio.high", "swap them")
            if self.l1_ratio.log and lo <= 0:
                raise LrsweepError(
                    "a log-scaled l1_ratio range needs search.l1_ratio.low > 0", "raise low or set log=false"
                )
        if self.max_iter <= 0:
            raise LrsweepError(f"search.max_iter={self.max_iter} must be at least 1", "set search.max_iter=1000")
        if self.tol <= 0:
            raise LrsweepError(f"search.tol={self.tol} must be > 0", "set search.tol=1e-4")
        if not self.class_weight:
            raise LrsweepError("search.class_weight is empty", "use [none], [balanced] or [none,balanced]")
        for cw in self.class_weight:
            choice(cw, ("none", "balanced"), "a value in search.class_weight")
        if self.solvers is not None and not self.solvers:
            raise LrsweepError("search.solvers is empty", "remove it (null = every compatible solver)")
        choice(self.fidelity, FIDELITIES, "search.fidelity")
        choice(self.promotion, PROMOTIONS, "search.promotion")
        choice(self.rung_resource, RUNG_RESOURCES, "search.rung_resource")
        if self.eta < 2:
            raise LrsweepError(f"search.eta={self.eta} must be at least 2", "use search.eta=3 (keep the best third)")
        if self.rungs < 2:
            raise LrsweepError(
                f"search.rungs={self.rungs} must be at least 2 (one rung is search.fidelity=full)", "use search.rungs=3"
            )
        if self.fidelity == "halving" and float(self.eta) ** (self.rungs - 1) > 1e4:
            raise LrsweepError(
                f"search.eta={self.eta} with search.rungs={self.rungs} starts on 1/{self.eta ** (self.rungs - 1):,} "
                "of the rows",
                "use fewer rungs (search.rungs=3) or a smaller search.eta",
            )


@dataclass
class ObjectiveConfig:
    metric: str = "roc_auc"


@dataclass
class StudyConfig:
    # None: derived from the experiment and the parts of the config that define the search
    name: str | None = None
    resume: bool = True
    # None: an Optuna journal file per study under ``dir`` (much cheaper per trial than sqlite)
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
    # a model registry name: the best model becomes a version of it, with the alias "best"
    register: str | None = None

    def check(self) -> None:
        choice(self.mode, ("background", "inline"), "tracking.mode")
        if self.register is not None and not self.log_model:
            raise LrsweepError("tracking.register needs the model logged", "drop tracking.log_model=false")


@dataclass
class BudgetConfig:
    """Limits a sweep keeps to: it starts no trial whose predicted spend would pass them."""

    max_usd: float | None = None  # needs a priced cluster (cluster=emr)
    max_minutes: float | None = None  # wall minutes of the sweep (on EMR: from the cluster request)
    # one trial's predicted seconds (`lrsweep launch` sets it from its plan); None: learnt from this sweep's trials
    trial_seconds: float | None = None

    def check(self) -> None:
        for key in ("max_usd", "max_minutes", "trial_seconds"):
            value = getattr(self, key)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise LrsweepError(f"budget.{key}={value} is impossible", f"give a positive budget.{key}, or null")


@dataclass
class PlanConfig:
    """`lrsweep plan`: how the runtime model is calibrated and what evidence it may use."""

    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    # refine the model with the per-trial times finished sweeps on the same cluster type logged to MLflow
    history: bool = True
    # measure a reachable cluster's own overheads (cluster=standalone: per Spark job, per setup) with a short
    # probe on it before planning (lrsweep.planning.probe); history, when there is enough, replaces it
    probe: bool = True
    # the plan run a launched sweep follows (set by `lrsweep launch`; the sweep's parent run links to it)
    run_id: str | None = None


@dataclass
class Config:
    backend: BackendConfig = field(default_factory=BackendConfig)
    cluster: ClusterConfig = field(default_factory=LocalCluster)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    threshold: ThresholdConfig = field(default_factory=F1Threshold)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    cv: CVConfig = field(default_factory=CVConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    study: StudyConfig = field(default_factory=StudyConfig)
    prices: PricesConfig = field(default_factory=PricesConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    launch: LaunchConfig = field(default_factory=LaunchConfig)
    seed: int = 42
    progress: bool = True
    debug: bool = False

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or f"lrsweep-{self.dataset.label}"


# -- checks ---------------------------------------------------------------------------------------------
def validate(cfg: Config, caps: Capabilities | None = None) -> SolverPool:
    """Raise LrsweepError naming the first impossible value and its fix; return the search's solver pool.

    ``caps``: what the chosen backend can do (its solvers); None looks it up from ``cfg.backend.name``.
    """
    from lrsweep.space import solver_pool

    if caps is None:
        from lrsweep.backends import capabilities_of

        caps = capabilities_of(cfg.backend.name)
    cfg.backend.check()
    cfg.search.check()
    cfg.threshold.check()
    choice(cfg.objective.metric, tuple(METRIC_DIRECTIONS), "objective.metric")
    cfg.split.check()
    cfg.cv.check()
    cfg.dataset.check()
    cfg.tracking.check()
    cfg.cluster.check(cfg.backend.name)
    cfg.budget.check()
    cfg.prices.check()
    if cfg.budget.max_usd is not None and cfg.cluster.name != "emr":
        raise LrsweepError(
            f"budget.max_usd needs a priced cluster; cluster={cfg.cluster.name} has no price",
            "use cluster=emr, or budget.max_minutes for a time limit",
        )
    if cfg.search.fidelity == "halving" and cfg.cv.folds > 1:
        raise LrsweepError(
            f"search.fidelity=halving and cv.folds={cfg.cv.folds} both prune trials (by rows, by folds)",
            "choose one: cv.folds=1 with halving, or search.fidelity=full with CV",
        )
    # across groups: the search's solvers against the backend's, on this data
    return solver_pool(cfg.search, caps, sparse=bool(cfg.dataset.hashed))


# -- study naming ---------------------------------------------------------------------------------------
# The study name hashes the search-defining config. Fields added after a study format was first released
# count only when set away from their defaults, so studies made before them keep their names (and resume).
_LATER_DATASET_FIELDS = ("hashed", "hash_features", "rows", "seed", "sep", "encoding", "max_classes")
_NEWER_DATASET_FIELDS = ("source", "generator")
# Every strategy's knobs sat in one threshold schema when study names were first derived; the names still
# hash that flat record: the chosen strategy's own knobs, the others' defaults.
_FLAT_THRESHOLD = {
    "strategy": "f1",
    "min_recall": 0.8,
    "min_precision": 0.8,
    "cost_fp": 1.0,
    "cost_fn": 5.0,
    "value": 0.5,
    "low": 0.05,
    "high": 0.95,
}


def _dataset_identity(ds: DatasetConfig) -> dict[str, Any]:
    fresh = DatasetConfig(name=None, target=None, positive=None)
    out = {
        k: v
        for k, v in dataclasses.asdict(ds).items()
        if k not in _NEWER_DATASET_FIELDS and (k not in _LATER_DATASET_FIELDS or v != getattr(fresh, k))
    }
    # Before source kinds, a generated table was the dataset named "ctr": configs that still mean what they
    # meant then keep their names; any other source or generator counts.
    legacy = ("generated", "ctr") if ds.name == "ctr" else ("file" if ds.path else "bundled", None)
    if (ds.kind, ds.generator) != legacy:
        out |= {"source": ds.kind, "generator": ds.generator}
    return out


# search fields added after study names were first derived: they count only when halving is asked for
_LATER_SEARCH_FIELDS = ("fidelity", "eta", "rungs", "promotion", "rung_resource")


def _search_identity(search: SearchConfig) -> dict[str, Any]:
    out = {k: v for k, v in dataclasses.asdict(search).items() if k not in ("n_trials", "n_jobs")}
    if search.fidelity == "full":
        for k in _LATER_SEARCH_FIELDS:
            out.pop(k)
    if search.multiclass == SearchConfig.multiclass:  # added later: counts when set away from its default
        out.pop("multiclass")
    return out


def search_identity(cfg: Config) -> dict[str, Any]:
    """The parts of the config that define which trials a study holds (not how many, nor where logged)."""
    threshold = dict(_FLAT_THRESHOLD)
    threshold.update(dataclasses.asdict(cfg.threshold))
    if threshold.get("of_class") is None:  # added later: counts when set
        threshold.pop("of_class", None)
    return {
        "backend": cfg.backend.name,
        "dataset": _dataset_identity(cfg.dataset),
        "split": dataclasses.asdict(cfg.split),
        "cv": dataclasses.asdict(cfg.cv),
        "search": _search_identity(cfg.search),
        "threshold": threshold,
        "objective": cfg.objective.metric,
        "seed": cfg.seed,
    }


def study_name(cfg: Config) -> str:
    """``<experiment>-<backend>-<search>-<8 hex>``: the same search resumes the same study."""
    if cfg.study.name:
        return cfg.study.name
    digest = hashlib.sha256(json.dumps(search_identity(cfg), sort_keys=True, default=str).encode()).hexdigest()
    return f"{cfg.experiment_name}-{cfg.backend.name}-{cfg.search.name}-{digest[:8]}"
