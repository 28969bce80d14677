"""Spark ML backend: the scikit-learn backend's sweep, run on Spark (local mode or a cluster).

Setup, once per sweep: one SparkSession (an active one is reused), the data read once, preprocessing
fitted once per fold on that fold's fitting part, and every fold's (fit, held-out) frames cached and
materialised; hashed features of a fitting frame rewritten over the buckets its rows use
(:mod:`lrsweep.backends.spark_buckets`). A trial then pays only for its LogisticRegression fit (about
iterations + 2 Spark jobs) and one Spark job that scores the held-out part.

Parity with the scikit-learn backend (tests/backends/test_spark.py checks each point):
- :func:`spark_params` translates the shared vocabulary: regParam = 1/(C n_train), elasticNetParam =
  l1_ratio, standardization=False. Spark minimises mean log-loss + regParam * penalty, scikit-learn
  C * summed log-loss + penalty: the same minimiser on the same features.
  class_weight=balanced is a weight column holding n / (2 n_class), whose sum is n, so regParam stays.
- preprocessing computes scikit-learn's numbers (:func:`fit_preprocessing`): exact medians (mean of the
  middle two, as numpy), population standard deviations (ddof=0; Spark's StandardScaler divides by the
  sample std, ddof=1, so it is not used), most frequent level with ties to the smallest, one-hot levels
  in sorted order with an unseen or missing level encoded as all zeros (handle_unknown="ignore").
- held-out metrics come from the same :class:`~lrsweep.metrics.Curve`. Parts up to
  ``backend.exact_max_rows`` rows are collected (two doubles a row) for the exact curve; larger parts
  get a curve of ``backend.bins`` probability bins aggregated in Spark, whose ROC AUC differs from the
  exact one by at most :func:`auc_binning_bound` (half the mass of positive/negative pairs sharing a bin).

A session this backend starts keeps the terminal for lrsweep: its driver JVM writes everything it prints to a
log file of its own under :data:`JVM_LOGS` (see :func:`_quiet_gateway`), at Spark's log level ERROR unless
``cluster.spark_conf`` sets ``spark.log.level``. Failures still reach the user as Python exceptions, a failed
start with the JVM's last words.

pyspark is imported inside functions only: ``import lrsweep.backends.spark`` works without it, and
:class:`SparkBackend` says what to install when pyspark or Java is missing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lrsweep.backends.base import BackendConfig, Capabilities, Evaluation, FitInfo, Refit, coefficient_frame
from lrsweep.backends.spark_buckets import UsedBuckets, compact, expand, vector_struct_sql
from lrsweep.backends.spark_classes import ClassArchive, class_archive
from lrsweep.clusters import ClusterConfig, LocalCluster
from lrsweep.data import DataHandle, DataSummary
from lrsweep.data.spark import FOLD, LABEL, PART, PREFIX, SparkParts, ident, present
from lrsweep.data.split import TEST, TRAIN, VAL, check_every_class
from lrsweep.datasets import Reference
from lrsweep.errors import BackendLost, LrsweepError
from lrsweep.metrics import Curve, curve_from_scores, log_loss, multiclass_log_loss
from lrsweep.space import ModelParams

__all__ = [
    "SparkBackend",
    "SparkConfig",
    "ColumnStats",
    "spark_params",
    "balanced_weights",
    "binned_curve",
    "auc_binning_bound",
    "fit_preprocessing",
    "coefficient_table",
    "require_spark",
    "LABEL",
    "WEIGHT",
    "FEATURES",
]

log = logging.getLogger("lrsweep")

# Columns the backend adds (beside the reader's LABEL, PART, FOLD)
WEIGHT, FEATURES, HASHED = (PREFIX + s for s in ("weight", "features", "hashed"))
PREDICTED_INDEX = PREFIX + "prediction_index"  # the fitted model's 0/1 prediction, before IndexToString
INSTALL = "pip install 'lrsweep[spark]' and a Java 17 runtime (e.g. apt-get install openjdk-17-jre-headless)"
# where the driver JVMs lrsweep starts write their output: beside lrsweep_studies/ and mlflow.db (git-ignored)
JVM_LOGS = Path(".lrsweep") / "spark"


@dataclass
class SparkConfig(BackendConfig):
    """backend=spark's settings (conf/backend/spark.yaml)."""

    name: str = "spark"
    # held-out parts up to this many rows are collected for exact curves (as scikit-learn's); larger ones get
    # a curve of `bins` probability bins aggregated in Spark. 0: always binned.
    exact_max_rows: int = 100_000
    bins: int = 10_000
    # a Parquet input at least this large (MB) is read by Spark directly (seeded hash split, approximate
    # medians) instead of through pandas. None: always through pandas.
    spark_read_min_mb: float | None = 256.0
    aggregation_depth: int = 2  # LogisticRegression's treeAggregate depth
    # cached frames get at most ceil(rows / rows_per_partition) partitions, and at most partitions_per_core per
    # core of the session: every task of every L-BFGS pass has a fixed cost (on hashed features it builds and
    # sends back a dense gradient, a double per bucket the rows use), so small data fits faster in fewer tasks,
    # and more tasks than cores only add that cost (10**6 CTR rows, local[2]: 30.2 s a fit in 2 partitions, 37.9 s
    # in 6, on all 2**20 buckets)
    rows_per_partition: int = 100_000
    partitions_per_core: int = 1
    # one-vs-rest on a multi-class target: this many of its K binomial fits run at once on the session (as Spark's
    # OneVsRest `parallelism`): a fit's passes are short jobs that leave cores idle between them (4-class table,
    # local[2], benchmarks/bench_ovr.py: four at once 1.42x as fast at 3x10^4 rows, 1.37x at 3x10^5), the same
    # models to the bit. Each running fit caches its own blocks of the fitting rows: memory grows with it.
    # 1: one after another
    ovr_parallelism: int = 4
    # hashed features: each fitting part (a fold's, a halving rung's, the refit's) is fitted on the buckets its rows
    # use, the model written back in the hasher's space: the same model, without paying for the unused buckets on
    # every pass (backends/spark_buckets.py). false: fit on all the hasher's buckets
    compact_hashed: bool = True
    # the frames the fits pass over (each fold's fitting and held-out rows, each halving rung, the refit's rows) are
    # kept as local checkpoints (their rows in the executors' block stores, their lineage cut) instead of cached:
    # every task of every L-BFGS pass over a cached frame deserialises the plan that made it (preprocessing, the
    # buckets' vocabulary), most of a small fit's time (CTR 10**6, local[2], one L2 fit of 30 iterations: 1/27 of
    # the rows 5.5 s cached, 1.0 s checkpointed; all rows 12.9-16.4 s, 7.0-8.7 s). The same rows in the same order:
    # the same models. A lost executor loses its checkpointed rows (Spark cannot recompute them): the sweep stops,
    # resumable. false: cached, recomputed from the data when an executor is lost
    local_checkpoint: bool = True
    # a driver JVM this process starts for a local or standalone master maps an archive of the classes the first
    # such JVM on this machine loaded (Java's AppCDS, backends/spark_classes.py): telco churn, local[2], session
    # 4.6-7.1 s -> 2.7-2.9 s, data + preprocessing 8.0-10.8 s -> 6.6-7.0 s. About 200 MB under ~/.cache/lrsweep/jvm.
    # false: every driver JVM loads its classes itself
    class_archive: bool = True
    # a local master's driver JVM, started for a table of at most this many rows, compiles with C1 alone
    # (-XX:TieredStopAtLevel=1): on small data a sweep is Spark's own per-job code run a few thousand times, which
    # the JVM's optimising compiler (C2) spends more time compiling than it saves; on large data the fitting loops
    # run long and need C2 (CTR 10**6, local[2]: a trial 7.8 s with C2, 24 s with C1 alone). Measured with
    # benchmarks/bench_jvm_start.py --what jit. 0: the JVM's default (C1 then C2) whatever the size
    quick_jit_rows: int = 20_000

    def check(self) -> None:
        if self.bins < 2:
            raise LrsweepError(f"backend.bins={self.bins} must be at least 2", "use backend.bins=10000")
        if self.exact_max_rows < 0:
            raise LrsweepError(f"backend.exact_max_rows={self.exact_max_rows} must be >= 0", "use 0 (always binned)")
        if self.aggregation_depth < 2:
            raise LrsweepError(f"backend.aggregation_depth={self.aggregation_depth} must be at least 2", "use 2")
        if self.rows_per_partition < 1:
            raise LrsweepError(f"backend.rows_per_partition={self.rows_per_partition} must be at least 1", "use 100000")
        if self.partitions_per_core < 1:
            raise LrsweepError(
                f"backend.partitions_per_core={self.partitions_per_core} must be at least 1", "use 1 (a task per core)"
            )
        if self.quick_jit_rows < 0:
            raise LrsweepError(
                f"backend.quick_jit_rows={self.quick_jit_rows} must be >= 0", "use 0 (the JVM's default compilers)"
            )
        if self.ovr_parallelism < 1:
            raise LrsweepError(
                f"backend.ovr_parallelism={self.ovr_parallelism} must be at least 1", "use 1 (one fit after another)"
            )


def _machine_gib() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30)
    except (ValueError, OSError, AttributeError):
        return 2


def require_spark() -> None:
    """Raise LrsweepError (one line: what to install) when pyspark or Java is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        raise LrsweepError("backend=spark needs pyspark, which is not installed", INSTALL) from exc
    home = os.environ.get("JAVA_HOME")
    if not (home and (Path(home) / "bin" / "java").exists()) and shutil.which("java") is None:
        raise LrsweepError("backend=spark needs Java, found neither $JAVA_HOME/bin/java nor java on PATH", INSTALL)


_jvm_log: Path | None = None  # the log of the JVM this process started (pyspark keeps one gateway per process)


QUICK_JIT = "-XX:TieredStopAtLevel=1"  # the JVM's quick compiler (C1) alone: see SparkConfig.quick_jit_rows


def quick_jit(master: str, rows: int | None, limit: int) -> bool:
    """Whether a driver JVM started for ``master`` and a table of ``rows`` rows (None: not known before Spark reads
    it, a large input) compiles with C1 alone: a local master (the driver does all the work) and at most ``limit``
    rows (0: never)."""
    return master.startswith("local") and rows is not None and 0 < rows <= limit


def _launches_jvm() -> bool:
    """Whether a new session launches a driver JVM of its own: none running in this process yet (an earlier
    session's), and not started by spark-submit (which hands its JVM over through PYSPARK_GATEWAY_PORT)."""
    from pyspark import SparkContext

    return SparkContext._gateway is None and "PYSPARK_GATEWAY_PORT" not in os.environ


def _quiet_gateway(conf: Any) -> Any:
    """A py4j gateway to a new driver JVM for ``conf``, its stdout and stderr appended to a new ``_jvm_log``.

    Only the JVM's own streams catch everything it prints: "WARNING: Using incubator modules" comes from the java
    launcher before any setting applies (Spark's launcher always adds --add-modules=jdk.incubator.vector, for its
    vectorised BLAS, and Java has no switch to silence the warning), native BLAS loaders print from C, and log4j's
    console appender, Spark's start-up notices and Python workers (through the JVM) write there too. None when this
    process already has a JVM, an earlier session's or spark-submit's: its output goes where it went.
    """
    global _jvm_log
    from pyspark.java_gateway import launch_gateway

    if not _launches_jvm():
        return None
    folder = JVM_LOGS
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only working directory (studies and tracking elsewhere): the temporary folder
        folder = Path(tempfile.mkdtemp(prefix="lrsweep-spark-"))
    _jvm_log = folder / f"driver-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    with open(_jvm_log, "ab") as out:  # the JVM holds its own descriptor
        return launch_gateway(conf, popen_kwargs={"stdout": out, "stderr": subprocess.STDOUT})


class _Py4jRootRecords(logging.Filter):
    """py4j's gateway logs a lost JVM connection on the root logger, a traceback per call ("Exception while sending
    command."): the sweep says in one line that the driver stopped (:class:`BackendLost`), so these are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "root" and f"py4j{os.sep}" in record.pathname)


def _last_words(path: Path | None, n: int = 3) -> str:
    """The last ``n`` lines the JVM wrote to ``path`` as one line ("" if none), leaving out stack frames and the
    launcher's incubator notice (printed at every start, it explains nothing)."""
    try:
        lines = path.read_text(errors="replace").splitlines() if path else []
    except OSError:
        return ""
    said = [ln.strip() for ln in lines if ln.strip() and not ln[:1].isspace() and "Using incubator modules" not in ln]
    return " / ".join(said[-n:])[-400:]


# -- the shared vocabulary in Spark's words -----------------------------------------------------------
def class_weights(counts: Sequence[int]) -> list[float]:
    """scikit-learn's class_weight="balanced" for K classes: n / (K n_k), which sum to n over the rows."""
    n = sum(counts)
    return [n / (len(counts) * c) for c in counts]


def balanced_weights(n_neg: int, n_pos: int) -> tuple[float, float]:
    """scikit-learn's class_weight="balanced": n / (2 n_class) for (negatives, positives); they sum to n."""
    w_neg, w_pos = class_weights([n_neg, n_pos])
    return w_neg, w_pos


def _balanced_weight(counts: Sequence[int], label: Any = None) -> Any:
    """The WEIGHT column of class_weight=balanced for rows of these class counts, by ``label`` (default: the LABEL
    column; class codes 0..K-1, binary 0 and 1)."""
    from pyspark.sql import functions as F

    code = (F.col(LABEL) if label is None else label).cast("int")
    return F.element_at(F.array(*[F.lit(v) for v in class_weights(counts)]), code + 1).alias(WEIGHT)


def spark_params(params: ModelParams, n_train: int, aggregation_depth: int = 2) -> dict[str, Any]:
    """Spark LogisticRegression parameters giving the model scikit-learn fits for ``params``.

    ``n_train`` is the number of rows of the part being fitted (with balanced weights, their sum).
    """
    if n_train <= 0:
        raise ValueError(f"n_train must be positive, got {n_train}")
    out: dict[str, Any] = {
        "regParam": 0.0 if math.isinf(params.C) else 1.0 / (params.C * n_train),
        "elasticNetParam": float(params.l1_ratio),
        "maxIter": int(params.max_iter),
        "tol": float(params.tol),
        "standardization": False,  # features are already scaled: penalise w as scikit-learn does
        "fitIntercept": True,
        # a multi-class target: multinomial is one softmax model; ovr fits one binomial model per class
        "family": "multinomial" if params.multiclass == "multinomial" else "binomial",
        "aggregationDepth": int(aggregation_depth),
    }
    if params.class_weight == "balanced":
        out["weightCol"] = WEIGHT
    return out


# -- curves from Spark aggregates (pure numpy) ---------------------------------------------------------
def binned_curve(bins: np.ndarray, pos: np.ndarray, neg: np.ndarray, n_bins: int) -> Curve:
    """The curve at bin lower edges, from per-bin counts (bin b holds scores in [b/n_bins, (b+1)/n_bins)).

    "score >= b/n_bins" holds for every score of bins >= b, so each point is exact at its edge; only
    non-empty bins become points (merge_curves of parts sharing ``n_bins`` is then exact).
    """
    bins, pos, neg = (np.asarray(a, dtype=np.int64) for a in (bins, pos, neg))
    order = np.argsort(bins)[::-1]
    keep = (pos[order] + neg[order]) > 0
    b, p, q = bins[order][keep], pos[order][keep], neg[order][keep]
    return Curve(np.r_[np.inf, b / n_bins], np.r_[0, np.cumsum(p)], np.r_[0, np.cumsum(q)], int(p.sum()), int(q.sum()))


def auc_binning_bound(curve: Curve) -> float:
    """Largest ROC AUC error from treating the scores of one curve step as tied.

    The trapezoid over a step counts each (positive, negative) pair inside it as half ordered, the exact
    AUC as 0, 1/2 or 1: the error is at most half the share of such pairs, sum_b pos_b neg_b / (2 P N).
    """
    if curve.pos == 0 or curve.neg == 0:
        return float("nan")
    dtp = np.diff(np.asarray(curve.tp, dtype=float))
    dfp = np.diff(np.asarray(curve.fp, dtype=float))
    return float(np.sum(dtp * dfp) / (2.0 * curve.pos * curve.neg))


# -- preprocessing: scikit-learn's numbers as a Spark ML PipelineModel ---------------------------------
def _text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _double(value: float) -> str:
    return f"CAST('{float(value)!r}' AS DOUBLE)"  # repr round-trips exactly; a bare 0.1 would be DECIMAL


def _num_col(i: int) -> str:
    return f"{PREFIX}num_{i}"


def _cat_col(j: int) -> str:
    return f"{PREFIX}cat_{j}"


@dataclass(frozen=True)
class ColumnStats:
    """What preprocessing learns from a fitting part (one Spark aggregation)."""

    n: int
    n_pos: int
    numeric: dict[str, tuple[float, float, float]]  # column -> (median, mean, scale), moments after imputation
    modes: dict[str, str | None]  # column -> most frequent level


def _is_constant(var: float, mean: float, n: int) -> bool:
    """scikit-learn's StandardScaler test (sklearn.preprocessing._data._is_constant_feature): scale 1 then."""
    eps = np.finfo(np.float64).eps
    return bool(var <= n * eps * var + (n * mean * eps) ** 2)


def column_stats(df: Any, numeric: list[str], categorical: list[str], *, exact: bool = True) -> ColumnStats:
    """Medians, means, ddof=0 scales and modes of a fitting part, in one pass.

    ``exact``: exact medians (Spark's ``median``, interpolated like numpy); else ``percentile_approx``
    (rank error 1e-4), for data too large to hold a column's distinct values per partition.
    """
    from pyspark.sql import functions as F

    aggs = [F.count(F.lit(1)).alias("n"), F.sum(F.col(LABEL)).alias("pos")]
    for i, c in enumerate(numeric):
        x = F.expr(present(c))
        median = F.median(x) if exact else F.percentile_approx(x, 0.5, 10_000)
        aggs += [F.count(x).alias(f"c{i}"), F.avg(x).alias(f"a{i}"), F.var_pop(x).alias(f"v{i}"), median.alias(f"m{i}")]
    for j, c in enumerate(categorical):
        # deterministic: ties go to the smallest level, as SimpleImputer(strategy="most_frequent")
        aggs.append(F.mode(F.col(ident(c)).cast("string"), deterministic=True).alias(f"k{j}"))
    row = df.agg(*aggs).first()
    n = int(row["n"])
    stats: dict[str, tuple[float, float, float]] = {}
    for i, c in enumerate(numeric):
        n_obs = int(row[f"c{i}"])
        if n_obs == 0:  # all missing in this part (load_table drops columns all missing overall)
            stats[c] = (0.0, 0.0, 1.0)
            continue
        med, mean_o, var_o = float(row[f"m{i}"]), float(row[f"a{i}"]), float(row[f"v{i}"])
        # moments of the imputed column: the observed values plus (n - n_obs) copies of the median (Chan et al.)
        missing = n - n_obs
        delta = med - mean_o
        mean = mean_o + delta * missing / n
        var = (var_o * n_obs + delta * delta * n_obs * missing / n) / n
        stats[c] = (med, mean, 1.0 if _is_constant(var, mean, n) else math.sqrt(var))
    modes = {c: row[f"k{j}"] for j, c in enumerate(categorical)}
    return ColumnStats(n, int(row["pos"] or 0), stats, modes)


def preprocessing_sql(numeric: list[str], categorical: list[str], stats: ColumnStats) -> str:
    """Impute and scale numerics, impute categoricals: one projection with the fitted values as literals."""
    cols = ["*"]
    for i, c in enumerate(numeric):
        med, mean, scale = stats.numeric[c]
        expr = f"(coalesce({present(c)}, {_double(med)}) - {_double(mean)}) / {_double(scale)}"
        cols.append(f"{expr} AS {ident(_num_col(i))}")
    for j, c in enumerate(categorical):
        mode = stats.modes[c]
        fill = "CAST(NULL AS STRING)" if mode is None else _text(mode)
        cols.append(f"coalesce(CAST({ident(c)} AS STRING), {fill}) AS {ident(_cat_col(j))}")
    return "SELECT " + ", ".join(cols) + " FROM __THIS__"


def fit_preprocessing(
    df: Any,
    numeric: list[str],
    categorical: list[str],
    *,
    exact: bool = True,
    hashed: list[str] | None = None,
    n_features: int = 2**20,
) -> tuple[Any, ColumnStats]:
    """Fit scikit-learn's preprocessing (``sklearn.make_preprocessor``) on ``df``: a PipelineModel of built-in
    stages (so a logged model loads wherever pyspark does) writing the vector column FEATURES.

    Stages: SQLTransformer (median impute + ddof=0 scaling of numerics, most-frequent impute of
    categoricals, with the values learned here), StringIndexer (levels sorted, unseen kept as one extra
    index), OneHotEncoder (dropLast drops exactly that extra index: unseen -> all zeros), FeatureHasher for the
    ``hashed`` columns (not imputed: a missing value makes no token, as in ``lrsweep.hashing``), VectorAssembler.
    """
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import FeatureHasher, OneHotEncoder, SQLTransformer, StringIndexer, VectorAssembler

    stats = column_stats(df, numeric, categorical, exact=exact)
    stages: list[Any] = [SQLTransformer(statement=preprocessing_sql(numeric, categorical, stats))]
    ohe = [f"{PREFIX}ohe_{j}" for j in range(len(categorical))]
    if categorical:
        idx = [f"{PREFIX}idx_{j}" for j in range(len(categorical))]
        cats = [_cat_col(j) for j in range(len(categorical))]
        stages.append(
            StringIndexer(inputCols=cats, outputCols=idx, stringOrderType="alphabetAsc", handleInvalid="keep")
        )
        stages.append(OneHotEncoder(inputCols=idx, outputCols=ohe, dropLast=True, handleInvalid="error"))
    inputs = [_num_col(i) for i in range(len(numeric))] + ohe
    if hashed:
        # Hashed only (the CTR case): the hasher writes FEATURES itself. VectorAssembler would expand the hasher's
        # compact metadata into one named attribute per bucket (2**20 of them), shipped with every task of every
        # L-BFGS pass (many times the pass itself). Mixed inputs keep the assembler, see _num_attrs_only().
        out = FEATURES if not inputs else HASHED
        stages.append(FeatureHasher(inputCols=hashed, categoricalCols=hashed, numFeatures=n_features, outputCol=out))
        inputs.append(HASHED)
    if inputs != [HASHED]:
        stages.append(VectorAssembler(inputCols=inputs, outputCol=FEATURES))
    return Pipeline(stages=stages).fit(df), stats


def _num_attrs_only(df: Any, hashed: bool) -> Any:
    """``df`` with FEATURES' metadata reduced to its size when hashed buckets are among the features.

    A VectorAssembler over hashed buckets names every bucket in the column's metadata (see fit_preprocessing);
    the frames a sweep caches carry just ``num_attrs``, which is all LogisticRegression reads.
    """
    if not hashed:
        return df
    from pyspark.sql import functions as F

    size = int(df.select(FEATURES).first()[0].size)
    return df.withColumn(FEATURES, F.col(FEATURES).alias(FEATURES, metadata={"ml_attr": {"num_attrs": size}}))


def coefficient_table(
    pre: Any, lr_model: Any, numeric: list[str], categorical: list[str], classes: list[str] | None = None
) -> pd.DataFrame:
    """Coefficients on the original feature names, laid out as ``sklearn.coefficient_table``'s (a multi-class
    model, ``classes``: a multinomial LogisticRegressionModel or a list of one binomial model per class, one column
    per class)."""
    from pyspark.ml.feature import FeatureHasher, StringIndexerModel

    rows: list[tuple[str, str, str]] = [("(intercept)", "", "")]
    rows += [(c, "", "per 1 SD") for c in numeric]
    indexer = next((s for s in pre.stages if isinstance(s, StringIndexerModel)), None)
    if indexer is not None:
        for col, levels in zip(categorical, indexer.labelsArray, strict=True):
            rows += [(col, str(lev), "one-hot") for lev in levels]
    hasher = next((s for s in pre.stages if isinstance(s, FeatureHasher)), None)
    n_hashed = hasher.getNumFeatures() if hasher is not None else 0
    if not classes:
        coef = lr_model.coefficients.toArray()
        named = np.r_[lr_model.intercept, coef[: len(coef) - n_hashed]]
        return coefficient_frame(rows, named, coef[len(coef) - n_hashed :] if n_hashed else None)
    if isinstance(lr_model, list):  # one-vs-rest: each class's binomial model
        matrix = np.vstack([m.coefficients.toArray() for m in lr_model])
        intercepts = np.array([m.intercept for m in lr_model])
    else:
        matrix, intercepts = lr_model.coefficientMatrix.toArray(), lr_model.interceptVector.toArray()
    width = matrix.shape[1] - n_hashed
    named = np.column_stack([intercepts, matrix[:, :width]])
    return coefficient_frame(rows, named, matrix[:, width:] if n_hashed else None, classes)


@dataclass
class _Fold:
    fit: Any  # cached: FEATURES, LABEL, WEIGHT
    held: Any  # cached: FEATURES, LABEL
    n_fit: int
    n_held: int
    class_rows: list[int] | None = None  # a multi-class target: the fitting rows of each class
    space: UsedBuckets | None = None  # fit's features compacted to the buckets its rows use (None: as hashed)


def release(df: Any) -> None:
    """Free a frame :meth:`SparkBackend._kept` kept: a cached one's cache, a local checkpoint's blocks (the
    checkpointed RDD under the frame's plan; Spark's DataFrame API has no call for it)."""
    if df.is_cached:
        df.unpersist()
        return
    plan = df._jdf.queryExecution().analyzed()
    if plan.getClass().getSimpleName() == "LogicalRDD":
        plan.rdd().unpersist(False)


def with_dense_coefficients(lr_model: Any) -> Any:
    """A binary LogisticRegressionModel predicting exactly as ``lr_model``, its coefficients held dense.

    Spark stores the fitted coefficients compressed: on hashed features most of the 2**20 buckets are zero, so a
    sparse vector, and every row's margin is then a sparse-sparse dot product that walks all the model's nonzero
    coefficients (423,299 of them at 10**6 CTR rows: 200,000 held-out rows scored in 22.1 s; dense: 1.8 s, the
    same probabilities to the bit: the same products, summed in the same order). Spark keeps the model's
    constructor to itself; through the JVM it is public. ``lr_model`` as it is when it holds dense coefficients.
    """
    from pyspark import SparkContext
    from pyspark.ml.classification import LogisticRegressionModel

    j = lr_model._java_obj
    matrix = j.coefficientMatrix()
    if j.numClasses() != 2 or matrix.numRows() != 1 or not matrix.getClass().getName().endswith("SparseMatrix"):
        return lr_model
    jvm: Any = SparkContext._jvm  # set while a session is up, as it is for any fitted model
    cls = jvm.org.apache.spark.ml.classification.LogisticRegressionModel
    dense = LogisticRegressionModel(cls(j.uid(), matrix.toDense(), j.interceptVector(), 2, False))
    lr_model._copyValues(dense)  # every param (columns, threshold, ...) as set on the fitted model
    return dense


# -- a multi-class target's probabilities and decision, as built-in stages -------------------------------
def class_probability_stages(model: Any) -> list[Any]:
    """Stages writing a multi-class model's per-class probabilities as the vector column ``probability``
    (columns in class-code order), built-in only so the logged model loads wherever pyspark does.

    A multinomial LogisticRegressionModel writes it itself (its softmax). One-vs-rest (a list of one binomial model
    per class): each model writes its own probability pair, a VectorAssembler and VectorSlicer keep every class's
    "this class" probability, and a Normalizer (L1) makes them sum to 1, as scikit-learn's OneVsRestClassifier
    normalises its models' probabilities.
    """
    from pyspark.ml.feature import Normalizer, VectorAssembler, VectorSlicer

    if not isinstance(model, list):
        model.setPredictionCol("").setRawPredictionCol("").setProbabilityCol("probability")
        return [model]
    pairs = [f"{PREFIX}p_{k}" for k in range(len(model))]
    for m, col in zip(model, pairs, strict=True):
        m.setPredictionCol("").setRawPredictionCol("").setProbabilityCol(col)
    both, ones = PREFIX + "p_pairs", PREFIX + "p_ones"
    return [
        *model,
        VectorAssembler(inputCols=pairs, outputCol=both),
        VectorSlicer(inputCol=both, outputCol=ones, indices=[2 * k + 1 for k in range(len(model))]),
        Normalizer(inputCol=ones, outputCol="probability", p=1.0),
    ]


def decision_sql(of_class: int | None, threshold: float) -> str:
    """A SQLTransformer statement writing PREDICTED_INDEX from ``probability``: the most probable class (the first
    of ties, as numpy's argmax), or class ``of_class`` whenever its probability reaches ``threshold``, else the
    most probable other class (lrsweep.labelled.decide, the rule the sweep scored)."""
    v, p = ident(PREFIX + "v"), ident(PREFIX + "p")
    as_struct = vector_struct_sql("probability")
    dense = (
        f"CASE WHEN {v}.type = 1 THEN {v}.values ELSE transform(sequence(0, {v}.size - 1), "
        f"i -> coalesce(element_at(map_from_arrays({v}.indices, {v}.values), i), 0D)) END"
    )
    if of_class is None:
        decision = f"array_position({p}, array_max({p})) - 1"
    else:
        others = f"transform({p}, (x, i) -> IF(i = {int(of_class)}, -1D, x))"
        decision = (
            f"CASE WHEN {p}[{int(of_class)}] >= {_double(threshold)} THEN {int(of_class)} "
            f"ELSE array_position({others}, array_max({others})) - 1 END"
        )
    return (
        f"SELECT *, CAST({decision} AS DOUBLE) AS {ident(PREDICTED_INDEX)} FROM "
        f"(SELECT *, {dense} AS {p} FROM (SELECT *, {as_struct} AS {v} FROM __THIS__))"
    )


# -- the backend --------------------------------------------------------------------------------------
def set_inclusive_threshold(lr_model: Any, threshold: float) -> None:
    """Make a binary Spark LogisticRegressionModel predict 1 iff p >= ``threshold`` (the sweep's rule), p its
    "probability" column exactly.

    Spark predicts 1 iff p > threshold, so it gets the next double below. And it predicts from the raw margin
    against log(t / (1 - t)) whenever a rawPrediction column is made, which disagrees with p >= t in the last
    bits (seen for 15 of 80 test scores used as thresholds); with no rawPrediction column it compares p itself."""
    t = min(max(float(threshold), 0.0), 1.0)
    lr_model.setThreshold(float(np.nextafter(t, -np.inf)) if t > 0 else 0.0)
    lr_model.setRawPredictionCol("")


class SparkBackend:
    name = "spark"
    capabilities = Capabilities(
        solvers=None,  # L-BFGS / OWL-QN, chosen by Spark from the penalty
        requirements=("pyspark", "pandas", "numpy", "pyarrow"),
        flavour="spark",
    )

    def __init__(
        self, settings: SparkConfig | None = None, *, cluster: ClusterConfig | None = None, seed: int = 42,
        app_name: str = "lrsweep",
    ) -> None:  # fmt: skip
        require_spark()
        self.settings = settings if isinstance(settings, SparkConfig) else SparkConfig()
        self.classes: list[str] = []  # after prepare: a multi-class target's labels (codes 0..K-1); empty: binary
        self.cluster = cluster or LocalCluster()
        self.seed = seed
        self.app_name = app_name
        self.spark: Any = None
        self._owns_session = False
        self.jvm_log: Path | None = None  # where the session's JVM writes its output, when lrsweep started it
        self._parts: SparkParts | None = None
        self._base: Any = None  # the parts' frame, cached
        self.reference: Reference | None = None
        self._folds: list[_Fold] = []
        self._cv = False
        self.timings: dict[str, float] = {}
        # successive halving: (fold, fraction) -> (the cached fitting rows of that rung, their count, a
        # multi-class target's rows of each class in it, and where its compacted hashed features sit)
        self._rungs: dict[tuple[int, float], tuple[Any, int, list[int] | None, UsedBuckets | None]] = {}
        self._rungs_lock = threading.Lock()
        self._lost: BackendLost | None = None  # why the session's driver stopped (see _driver_guard)
        self._lost_lock = threading.Lock()
        self.driver_memory: str | None = None  # the heap lrsweep gave the driver JVM it started
        self._archive: ClassArchive | None = None  # the class archive the driver JVM it started maps or writes

    # -- prepare, once per sweep ----------------------------------------------------------------------
    def _session(self, rows: int | None = None) -> tuple[Any, bool]:
        """The active session, or a new one on cluster.master; ``rows``: the table's (None: not known yet, read
        by Spark), which picks a local driver JVM's compilers (SparkConfig.quick_jit_rows)."""
        from pyspark import SparkConf, SparkContext
        from pyspark.sql import SparkSession

        master = str(self.cluster.master)
        active = SparkSession.getActiveSession()
        if active is None and SparkContext._active_spark_context is not None:
            active = SparkSession.builder.getOrCreate()
        if active is not None:
            if active.sparkContext.master != master:
                log.info("reusing the active SparkSession (master %s, not %s)", active.sparkContext.master, master)
            return active, False
        conf = {
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.execution.arrow.pyspark.enabled": "true",
            # Spark warns at every L-BFGS pass on small data ("task of very large size"): the JVM's log keeps errors
            # only. Applied as the context starts, so a level in spark_conf wins.
            "spark.log.level": "ERROR",
        }
        if master.startswith("local"):
            # Python workers (mapInPandas) run this interpreter, with lrsweep and pandas, not whatever python3 is
            # first on PATH. On a cluster the executors' Python is the cluster's (PYSPARK_PYTHON there).
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            # In local mode the driver JVM does all the work: Spark's 1 GiB default runs out on hashed features
            # (2**20 coefficients per aggregation buffer). Half the machine's memory, unless spark_conf says.
            conf["spark.driver.memory"] = f"{max(1, _machine_gib() // 2)}g"
            # A driver out of heap (concurrent fits of 2**20 coefficients hold 1-2 GiB each) loses the scheduler's
            # event-loop threads and then waits forever with its jobs queued and no task running. Exiting instead
            # (as Spark's executors do on an OutOfMemoryError) ends the sweep with a line that says so, resumable.
            # The default options, which Spark puts before spark.driver.extraJavaOptions: a user's own extra options
            # keep the flag. (A cluster's driver keeps the cluster's own settings.)
            conf["spark.driver.defaultJavaOptions"] = "-XX:+ExitOnOutOfMemoryError"
            if not os.environ.get("SPARK_LOCAL_IP"):
                # No network needed: listen on loopback only. The driver's RPC follows these settings; the web UI
                # binds to $SPARK_LOCAL_IP (all interfaces without it), read by the JVM this session launches.
                conf |= {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"}
                os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        settings = conf | {k: str(v) for k, v in self.cluster.spark_conf.items()}  # the user's settings win
        self.driver_memory = settings.get("spark.driver.memory")
        launches = _launches_jvm()
        self._archive = class_archive(master, settings) if self.settings.class_archive and launches else None
        # beside the default options (the user's extraJavaOptions come after them, and win)
        extra = [self._archive.java_option] if self._archive is not None else []
        extra += [QUICK_JIT] if launches and quick_jit(master, rows, self.settings.quick_jit_rows) else []
        if extra:
            own = settings.get("spark.driver.defaultJavaOptions", "")
            settings["spark.driver.defaultJavaOptions"] = " ".join([own, *extra]).strip()
        spark_conf = SparkConf().setMaster(master).setAppName(self.app_name).setAll(list(settings.items()))
        try:
            gateway = _quiet_gateway(spark_conf)  # None: pyspark's own launch, or the JVM already running
            SparkContext(conf=spark_conf, gateway=gateway)
            spark = SparkSession.builder.getOrCreate()
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            said = _last_words(_jvm_log)
            where = f"; Spark's log: {_jvm_log}" if said else ""
            raise LrsweepError(
                f"cannot start Spark (cluster.master={master}): {first}" + (f" (the JVM: {said})" if said else ""),
                f"check cluster.master and the Java runtime; {INSTALL}{where}",
            ) from exc
        self.jvm_log = _jvm_log
        logging.getLogger("py4j").setLevel(logging.WARNING)  # "Closing down clientserver connection" at stop
        root = logging.getLogger()
        if _Py4jRootRecords not in {type(f) for f in root.filters}:
            root.addFilter(_Py4jRootRecords())
        return spark, True

    def _direct(self, data: DataHandle) -> bool:
        """Parquet inputs of at least spark_read_min_mb are read by Spark itself, never through pandas."""
        limit, src = self.settings.spark_read_min_mb, data.source
        if limit is None or src.format != "parquet":
            return False
        size = src.size_bytes
        return size is not None and size >= limit * 2**20

    def prepare(self, data: DataHandle) -> DataSummary:
        t0 = time.perf_counter()
        direct = self._direct(data)  # (a remote input's size is a request: asked once)
        # a table converted from pandas is read first: its rows pick the driver JVM's compilers (quick_jit_rows)
        rows = None if direct else len(data.pandas()[0].y)
        t1 = time.perf_counter()
        self.spark, self._owns_session = self._session(rows)
        with self._driver_guard():
            return self._prepare(data, direct, session_seconds=time.perf_counter() - t1, read_seconds=t1 - t0)

    def _prepare(self, data: DataHandle, direct: bool, *, session_seconds: float, read_seconds: float) -> DataSummary:
        from pyspark.sql import functions as F

        t1 = time.perf_counter()
        parts: SparkParts = data.spark(self.spark, direct=direct)
        self._parts, self.reference = parts, data.reference
        self.classes = list(parts.classes)
        base = parts.frame
        if not base.is_cached:  # read once: every fold and the refit start from it
            # in at most partitions_per_core tasks per core: a frame made from pandas comes in a partition per Arrow
            # batch of 10,000 rows (100 at 10**6 rows), and each pass over it (the refit's preprocessing, the test
            # part, a generated table's reference scored by Python workers) paid a task per batch. Not fewer than
            # the cores (rows_per_partition is for the fit frames, where a task's dense gradient is the fixed
            # cost): passes over the table are row work that every core can share.
            base = base.coalesce(self._partitions(sys.maxsize)).cache()
        self._base = base
        part, fold = F.col(PART), F.col(FOLD)
        self._cv = data.cv.folds > 1
        if self._cv:
            pairs = [((fold != k) & (fold >= 0), fold == k) for k in range(data.cv.folds)]
        else:
            pairs = [(part == TRAIN, part == VAL)]
        for k, (fit_rows, held_rows) in enumerate(pairs):
            name = f"the held-out rows of CV fold {k}" if self._cv else "the validation part"
            self._folds.append(self._prepare_fold(self._base.where(fit_rows), self._base.where(held_rows), name))
        data_seconds = read_seconds + time.perf_counter() - t1  # the pandas table's reading counts as data
        self.timings = {"session": session_seconds, "data_and_preprocessing": data_seconds}
        where = f" (Spark's log: {self.jvm_log})" if self.jvm_log else ""
        log.info("spark setup: session %.1f s, data + preprocessing + cache %.1f s%s", *self.timings.values(), where)
        return DataSummary(
            fingerprint=parts.fingerprint,
            rows=parts.rows,
            features=DataSummary.features_of(parts.numeric, parts.categorical, parts.hashed),
            dropped=parts.dropped,
            input_example=parts.input_example,
            classes=list(parts.classes),
        )

    def _with_features(self, fit_raw: Any) -> tuple[Any, Any, ColumnStats, list[int] | None]:
        """Preprocessing fitted on ``fit_raw``, ``fit_raw`` transformed with balanced weights attached, and (a
        multi-class target) the rows of each class."""
        assert self._parts is not None
        d = self._parts
        pre, stats = fit_preprocessing(
            fit_raw, d.numeric, d.categorical, exact=d.exact, hashed=d.hashed, n_features=d.hash_features
        )
        class_rows = None
        if self.classes:
            got = {int(r[LABEL]): int(r["count"]) for r in fit_raw.groupBy(LABEL).count().collect()}
            class_rows = [got.get(k, 0) for k in range(len(self.classes))]
            if min(class_rows) == 0:
                missing = self.classes[class_rows.index(0)]
                raise LrsweepError(
                    f"a fitting part holds no row of class {missing!r}", "use a larger data set or fewer CV folds"
                )
            weight = _balanced_weight(class_rows)  # multinomial's (one-vs-rest makes its own per class)
        else:
            if stats.n_pos in (0, stats.n):
                raise LrsweepError("a fitting part holds a single class", "use a larger data set or fewer CV folds")
            weight = _balanced_weight([stats.n - stats.n_pos, stats.n_pos])
        features = _num_attrs_only(pre.transform(fit_raw).select(FEATURES, LABEL, weight), bool(d.hashed))
        return pre, features, stats, class_rows

    def _partitions(self, rows: int) -> int:
        """Partitions of a cached frame of ``rows`` rows: ceil(rows / rows_per_partition), at most
        partitions_per_core per core of the session (its default parallelism)."""
        cores = max(1, int(self.spark.sparkContext.defaultParallelism)) if self.spark is not None else 1
        by_rows = math.ceil(rows / self.settings.rows_per_partition)
        return max(1, min(by_rows, cores * self.settings.partitions_per_core))

    def _prepare_fold(self, fit_raw: Any, held_raw: Any, name: str = "the validation part") -> _Fold:
        pre, fit, stats, class_rows = self._with_features(fit_raw)
        if self.classes and self._cv:  # a fold's held-out rows must hold every class (the row hash does not stratify)
            got = {int(r[LABEL]): int(r["count"]) for r in held_raw.groupBy(LABEL).count().collect()}
            check_every_class(np.array([got.get(k, 0) for k in range(len(self.classes))]), name, self.classes)
        k = self._partitions(stats.n)  # coalesce never adds partitions: a smaller input keeps its own
        fit, space, n_fit = self._compacted(fit.coalesce(k))
        hashed = bool(self._parts and self._parts.hashed)
        held, n_held = self._kept(_num_attrs_only(pre.transform(held_raw).select(FEATURES, LABEL), hashed).coalesce(k))
        return _Fold(fit, held, n_fit, n_held, class_rows, space)

    @property
    def _hashed_compacted(self) -> bool:
        """Whether fitting frames are rewritten over the buckets their rows use (hashed features)."""
        return bool(self._parts and self._parts.hashed and self.settings.compact_hashed)

    def _kept(self, df: Any, n: int | None = None) -> tuple[Any, int]:
        """``df`` computed now and kept for the passes to come, and its rows (counted unless ``n`` says them): a
        local checkpoint (lineage cut: see SparkConfig.local_checkpoint) or cached. Released with :func:`release`."""
        if self.settings.local_checkpoint:
            kept = df.localCheckpoint(eager=True)  # computed here
            return kept, kept.count() if n is None else n
        kept = df.cache()
        return kept, kept.count()  # the count computes the cache

    def _compacted(self, fit: Any) -> tuple[Any, UsedBuckets | None, int]:
        """``fit`` kept (:meth:`_kept`) and counted; with hashed features first rewritten over the buckets its rows
        use (read from a cache of ``fit``, not from the data: one preprocessing pass)."""
        if not self._hashed_compacted:
            kept, n = self._kept(fit)
            return kept, None, n
        fit = fit.cache()
        n = fit.count()
        compacted, space = self._used_buckets(fit)
        kept, _ = self._kept(compacted, n)
        fit.unpersist()
        return kept, space, n

    def _used_buckets(self, fit: Any, base: UsedBuckets | None = None) -> tuple[Any, UsedBuckets | None]:
        """``fit`` (a fitting part to be cached, hashed features) over the buckets its rows use, or as it is."""
        assert self._parts is not None
        if not self._hashed_compacted:
            return fit, None
        size = base.width if base is not None else int(fit.schema[FEATURES].metadata["ml_attr"]["num_attrs"])
        head = base.head if base is not None else size - self._parts.hash_features
        return compact(fit, FEATURES, size, head, base)

    @property
    def n_folds(self) -> int:
        return len(self._folds) if self._cv else 0

    # -- per trial -----------------------------------------------------------------------------------
    def _for_target(self, params: ModelParams) -> ModelParams:
        """``params`` as this target is fitted: a binary target is one binomial model whatever the mode, a
        multi-class one without a mode multinomial (search.multiclass's default). The planner's calibration draws
        configurations without the data at hand, with a mode or without."""
        if not self.classes and params.multiclass is not None:
            return dataclasses.replace(params, multiclass=None)
        if self.classes and params.multiclass is None:
            return dataclasses.replace(params, multiclass="multinomial")
        return params

    def native_params(self, params: ModelParams) -> dict[str, Any]:
        n_train = self._folds[0].n_fit if self._folds else 1
        return spark_params(params, n_train, self.settings.aggregation_depth)

    def _fit(
        self, params: ModelParams, df: Any, n_fit: int, class_rows: list[int] | None, space: UsedBuckets | None = None
    ) -> tuple[Any, FitInfo]:
        """The model of ``params``: one LogisticRegression (binomial, or a multi-class target's multinomial), or
        (one-vs-rest) a list of one binomial model per class, each fitted on "this class or not" with, under
        class_weight=balanced, that binary problem's own balanced weights, as scikit-learn's OneVsRestClassifier.
        ``space``: ``df``'s features are compacted there (the models are written back in the hasher's space)."""
        from pyspark.sql import functions as F

        if not self.classes or params.multiclass != "ovr":
            return self._fit_lr(params, df, n_fit, space)
        assert class_rows is not None

        def one(k: int) -> tuple[Any, FitInfo]:
            is_k = F.col(LABEL) == float(k)
            weight = _balanced_weight([sum(class_rows) - class_rows[k], class_rows[k]], is_k)  # this binary problem's
            return self._fit_lr(params, df.select(FEATURES, is_k.cast("double").alias(LABEL), weight), n_fit, space)

        t0 = time.perf_counter()
        at_once = min(self.settings.ovr_parallelism, len(class_rows))
        if at_once > 1:  # the same models as one after another: each fit is deterministic on its own
            from concurrent.futures import ThreadPoolExecutor

            from pyspark import inheritable_thread_target

            # the caller's Spark local properties (job group, scheduler pool) go with the fits into the pool's
            # threads, captured here: their jobs are counted and scheduled as the caller's
            target = inheritable_thread_target(self.spark)(one)
            with ThreadPoolExecutor(at_once, thread_name_prefix="lrsweep-ovr") as pool:
                fitted = list(pool.map(target, range(len(class_rows))))
        else:
            fitted = [one(k) for k in range(len(class_rows))]
        infos = [info for _, info in fitted]
        n_iter = max(i.n_iter for i in infos)
        seconds = time.perf_counter() - t0  # the K fits' wall
        return [m for m, _ in fitted], FitInfo(seconds, n_iter, all(i.converged for i in infos))

    def _fit_lr(
        self, params: ModelParams, df: Any, n_fit: int, space: UsedBuckets | None = None
    ) -> tuple[Any, FitInfo]:
        from pyspark.ml.classification import LogisticRegression

        lr = LogisticRegression(
            featuresCol=FEATURES, labelCol=LABEL, **spark_params(params, n_fit, self.settings.aggregation_depth)
        )
        t0 = time.perf_counter()
        model = lr.fit(df)
        n_iter = int(model.summary.totalIterations)
        model = with_dense_coefficients(model) if space is None else expand(model, space)
        seconds = time.perf_counter() - t0
        return model, FitInfo(seconds, n_iter, n_iter < params.max_iter)

    def _held_out(
        self, scored: Any, n: int, p: Any = None
    ) -> tuple[Curve, float, tuple[np.ndarray, np.ndarray] | None]:
        """Curve, log loss and (when small enough to collect) the scores of a transformed held-out part.

        ``p``: the positive-class probability column (default: the model's ``probability[1]``).
        """
        from pyspark.ml.functions import vector_to_array
        from pyspark.sql import functions as F

        if p is None:
            p = vector_to_array(F.col("probability"))[1]
        if n <= self.settings.exact_max_rows:
            pdf = scored.select(F.col(LABEL), p.alias("p")).toPandas()
            y, s = pdf[LABEL].to_numpy().astype(np.int64), pdf["p"].to_numpy(dtype=float)
            if not np.all(np.isfinite(s)):
                raise FloatingPointError("the fit produced non-finite probabilities")
            return curve_from_scores(y, s), log_loss(y, s), (y, s)
        bins = self.settings.bins
        eps = float(np.finfo(np.float64).eps)  # sklearn.metrics.log_loss clips both columns to [eps, 1-eps]

        def clipped(q: Any) -> Any:
            return F.least(F.greatest(q, F.lit(eps)), F.lit(1.0 - eps))

        y = F.col(LABEL)
        loss = -F.when(y == 1.0, F.log(clipped(p))).otherwise(F.log(clipped(1.0 - p)))
        b = F.when(F.isnan(p), -1).otherwise(F.least(F.floor(p * bins), F.lit(bins - 1))).cast("int")
        rows = (
            scored.select(b.alias("b"), y.alias("y"), loss.alias("loss"))
            .groupBy("b")
            .agg(F.sum("y").alias("pos"), F.count(F.lit(1)).alias("n"), F.sum("loss").alias("loss"))
            .collect()
        )
        got = np.array([(r["b"], r["pos"], r["n"] - r["pos"], r["loss"]) for r in rows], dtype=float).reshape(-1, 4)
        if (got[:, 0] < 0).any():
            raise FloatingPointError("the fit produced non-finite probabilities")
        curve = binned_curve(got[:, 0], got[:, 1], got[:, 2], bins)
        return curve, float(got[:, 3].sum() / got[:, 1:3].sum()), None

    def _held_out_classes(self, scored: Any, n: int, info: FitInfo) -> Evaluation:
        """A multi-class target's held-out evaluation: the class codes and the n x K probabilities (the
        ``probability`` column :func:`class_probability_stages` writes), collected to the driver."""
        from pyspark.ml.functions import vector_to_array
        from pyspark.sql import functions as F

        pdf = scored.select(F.col(LABEL), vector_to_array(F.col("probability")).alias("p")).toPandas()
        y = pdf[LABEL].to_numpy().astype(np.int64)
        proba = np.vstack(pdf["p"].to_numpy()) if len(pdf) else np.empty((0, len(self.classes)))
        if not np.all(np.isfinite(proba)):
            raise FloatingPointError("the fit produced non-finite probabilities")
        return Evaluation(None, multiclass_log_loss(y, proba), n, info, (y, proba))

    def _scored(self, model: Any, frame: Any, n: int, info: FitInfo) -> Evaluation:
        """``frame`` (FEATURES, LABEL) scored by ``model`` (as ``_fit`` made it)."""
        if not self.classes:
            curve, loss, scores = self._held_out(model.transform(frame), n)
            return Evaluation(curve, loss, n, info, scores)
        stages = class_probability_stages(model)
        for stage in stages:
            frame = stage.transform(frame)
        return self._held_out_classes(frame, n, info)

    def evaluate(self, params: ModelParams, fold: int | None = None, fraction: float = 1.0) -> Evaluation:
        params = self._for_target(params)
        with self._driver_guard():
            part = self._folds[fold or 0]
            rung = self._rung(fraction, fold) if fraction < 1.0 else (part.fit, part.n_fit, part.class_rows, part.space)
            model, info = self._fit(params, *rung)
            return self._scored(model, part.held, part.n_held, info)

    @contextlib.contextmanager
    def _driver_guard(self) -> Any:
        """An error raised because the session's driver stopped (its JVM exited, its context was stopped) becomes
        :class:`BackendLost`, which stops the sweep (its trials are run again on resume) instead of failing this
        configuration and every one after it."""
        try:
            yield
        except LrsweepError:
            raise
        except Exception as exc:
            if "CHECKPOINT_RDD_BLOCK_ID_NOT_FOUND" in str(exc):  # the session lives on, without the sweep's rows
                raise BackendLost(
                    "Spark lost rows the sweep kept as a local checkpoint (the executor holding them stopped)",
                    "run the same command again: finished trials are kept; where executors come and go (spot "
                    "instances, autoscaling) add backend.local_checkpoint=false (Spark then recomputes lost rows)",
                ) from exc
            with self._lost_lock:
                if self._lost is None:
                    why = self._driver_lost()
                    if why is None:
                        raise
                    self._lost = self._lost_error(why)
                    # forgotten at once: MLflow's client, made next to record the failure, looks up the active
                    # Spark session (for a model registry URI) and would fail on the dead one
                    self._forget_session()
                lost = self._lost
            raise BackendLost(lost.problem, lost.fix) from exc  # each thread its own (concurrent trials)

    def _driver_lost(self) -> str | None:
        """Why the session's driver can run nothing more, or None while it can."""
        from pyspark import SparkContext

        if self.spark is None:
            return None
        try:
            if self.spark.sparkContext._jsc.sc().isStopped():
                return "its SparkContext was stopped"
            return None
        except Exception:
            pass
        proc = getattr(SparkContext._gateway, "proc", None) if self._owns_session else None
        with contextlib.suppress(subprocess.TimeoutExpired):
            if proc is not None and proc.wait(timeout=5) is not None:  # its exit status, once it is reaped
                return f"its JVM exited with status {proc.returncode}"
        return "the connection to its JVM is lost"

    def _lost_error(self, why: str) -> BackendLost:
        again = "then run the same command again: finished trials are kept"
        log_text = ""
        with contextlib.suppress(OSError):
            log_text = self.jvm_log.read_text(errors="replace")[-20000:] if self.jvm_log else ""
        if "OutOfMemoryError" in log_text:
            return BackendLost(
                f"the Spark driver ran out of memory ({self.driver_memory or 'its'} heap) and stopped",
                "run fewer fits at once (search.n_jobs, backend.ovr_parallelism) or give the driver more memory "
                f"(e.g. '+cluster.spark_conf={{spark.driver.memory: 16g}}'), {again}",
            )
        where = f"; Spark's log: {self.jvm_log}" if self.jvm_log else ""
        return BackendLost(f"the Spark driver stopped: {why}", f"{again}{where}")

    def prepare_rungs(self, fractions: Sequence[float]) -> None:
        with self._driver_guard():
            for fraction in fractions:
                self.fraction_rows(fraction)

    def fraction_rows(self, fraction: float, fold: int | None = None) -> tuple[Any, int]:
        """The first ``fraction`` of the fitting part's rows (cached, with their count): a row is in when its
        seeded uniform draw is below ``fraction``, so each smaller fraction lies inside every larger one and every
        configuration fits the same rows. Made once per fraction (concurrent trials wait for the first)."""
        rows, n, _, _ = self._rung(fraction, fold)
        return rows, n

    def _rung(self, fraction: float, fold: int | None) -> tuple[Any, int, list[int] | None, UsedBuckets | None]:
        """:meth:`fraction_rows`, with a multi-class target's rows of each class in the rung (None: binary) and
        where the rung's features sit (hashed features: the buckets the rung's rows use; None: as the fold's)."""
        from pyspark.sql import functions as F

        key = (fold or 0, float(fraction))
        with self._rungs_lock:
            if key not in self._rungs:
                part = self._folds[fold or 0]
                u = F.rand(self.seed)  # the same draw for every row on every call: the cached part is fixed
                drawn = part.fit.withColumn("_lrsweep_u", u).where(F.col("_lrsweep_u") < fraction).drop("_lrsweep_u")
                # its classes' rows in one pass, checked before anything is cached
                got = {int(r[LABEL]): int(r["count"]) for r in drawn.groupBy(LABEL).count().collect()}
                counts = [got.get(k, 0) for k in range(max(2, len(self.classes)))]
                n = sum(counts)
                if n < 2 or min(counts) == 0:
                    raise LrsweepError(
                        f"{fraction:.3g} of the training rows ({n:,}) hold "
                        + ("a single class" if not self.classes else "only some of the classes"),
                        "use fewer search.rungs or a smaller search.eta",
                    )
                # class_weight=balanced for the rows the rung fits, as scikit-learn weighs a rung's rows
                drawn = drawn.select(FEATURES, LABEL, _balanced_weight(counts))
                drawn, space = self._used_buckets(drawn, part.space)
                rows, _ = self._kept(drawn.coalesce(self._partitions(n)), n)  # fewer rows in fewer tasks, made now
                self._rungs[key] = (rows, n, counts if self.classes else None, space)
            return self._rungs[key]

    # -- after the search ----------------------------------------------------------------------------
    def refit(self, params: ModelParams, threshold: float, of_class: int | None = None) -> Refit:
        with self._driver_guard():
            return self._refit(self._for_target(params), threshold, of_class)

    def _refit(self, params: ModelParams, threshold: float, of_class: int | None) -> Refit:
        from pyspark.sql import functions as F

        t0 = time.perf_counter()
        pre, train, stats, class_rows = self._with_features(self._base.where(F.col(PART) != TEST))
        # kept (and compacted) as the trials' frames are: fitted as they were (what the planner's model of a fit says)
        train, space, _ = self._compacted(train.coalesce(self._partitions(stats.n)))
        try:
            if self.classes:
                return self._refit_classes(params, threshold, of_class, pre, train, stats.n, class_rows, space, t0)
            return self._refit_binary(params, threshold, pre, train, stats.n, space, t0)
        finally:
            release(train)  # kept for the fit's passes only

    def _refit_binary(
        self, params: ModelParams, threshold: float, pre: Any, train: Any, n: int, space: UsedBuckets | None,
        t0: float,
    ) -> Refit:  # fmt: skip
        """refit for a binary target: the logged PipelineModel writes ``prediction`` in the data's labels with the
        sweep's threshold."""
        from pyspark.ml import PipelineModel
        from pyspark.ml.feature import IndexToString
        from pyspark.sql import functions as F

        assert self._parts is not None
        d, base = self._parts, self._base
        lr_model, info = self._fit_lr(params, train, n, space)
        info.seconds = time.perf_counter() - t0  # preprocessing + fit, as the scikit-learn pipeline's fit
        set_inclusive_threshold(lr_model, threshold)  # the logged model's "prediction" uses the sweep's threshold
        # "prediction" answers in the data's labels ("Yes" / "No"): MLflow's pyfunc returns that column
        lr_model.setPredictionCol(PREDICTED_INDEX)
        labels = IndexToString(inputCol=PREDICTED_INDEX, outputCol="prediction", labels=list(d.labels))
        model = PipelineModel(stages=[*pre.stages, lr_model, labels])
        n_test = d.rows["test"]
        test_raw = base.where(F.col(PART) == TEST)
        curve, loss, scores = self._held_out(model.transform(test_raw), n_test)
        table = coefficient_table(pre, lr_model, d.numeric, d.categorical)
        example = d.input_example.copy()
        predicted: Any = model.transform(self.spark.createDataFrame(example)).select("prediction").toPandas()
        return Refit(
            model, Evaluation(curve, loss, n_test, info, scores), table, example,
            predicted["prediction"].to_numpy(), self._reference(test_raw, n_test), d.labels,
        )  # fmt: skip

    def _refit_classes(
        self, params: ModelParams, threshold: float, of_class: int | None, pre: Any, train: Any, n: int,
        class_rows: list[int] | None, space: UsedBuckets | None, t0: float,
    ) -> Refit:  # fmt: skip
        """refit for a multi-class target: the logged PipelineModel writes ``probability`` (per class) and
        ``prediction`` (the class label, by argmax or the threshold on ``of_class``)."""
        from pyspark.ml import PipelineModel
        from pyspark.ml.feature import IndexToString, SQLTransformer
        from pyspark.sql import functions as F

        assert self._parts is not None
        d = self._parts
        fitted, info = self._fit(params, train, n, class_rows, space)
        info.seconds = time.perf_counter() - t0
        stages = [
            *pre.stages,
            *class_probability_stages(fitted),
            SQLTransformer(statement=decision_sql(of_class, threshold)),
            IndexToString(inputCol=PREDICTED_INDEX, outputCol="prediction", labels=list(self.classes)),
        ]
        model = PipelineModel(stages=stages)
        n_test = d.rows["test"]
        test_raw = self._base.where(F.col(PART) == TEST)
        test = self._held_out_classes(model.transform(test_raw), n_test, info)
        table = coefficient_table(pre, fitted, d.numeric, d.categorical, self.classes)
        example = d.input_example.copy()
        rows = model.transform(self.spark.createDataFrame(example)).select("prediction").collect()
        predicted = np.array([r["prediction"] for r in rows], dtype=object)
        return Refit(
            model, test, table, example, predicted, self._reference(test_raw, n_test), tuple(self.classes)
        )  # fmt: skip

    def _reference(self, test_raw: Any, n: int) -> Evaluation | None:
        """A generated table's true model scored on the test rows (in Spark: Python workers score the rows)."""
        from pyspark.sql import functions as F

        assert self._parts is not None
        ref = self.reference
        if ref is None:
            return None
        cols = list(ref.columns)
        if any(c not in self._parts.features for c in cols):
            log.info("no Bayes-optimal reference: the sweep dropped some of the true model's columns")
            return None

        k = len(self.classes)

        def true_p(batches: Any) -> Any:
            for pdf in batches:
                p = ref.probabilities(pdf[cols])
                out = {f"p{j}": p[:, j] for j in range(k)} if k else {"p": p}
                yield pd.DataFrame(out | {LABEL: pdf[LABEL]})

        names = [f"p{j}" for j in range(k)] if k else ["p"]
        scored = test_raw.select(*[F.col(ident(c)) for c in cols], F.col(LABEL)).mapInPandas(
            true_p, schema=", ".join(f"{c} double" for c in names) + f", {ident(LABEL)} double"
        )
        try:
            if k:  # a multi-class table's true model: its K probabilities, as a model's
                from pyspark.ml.functions import array_to_vector

                probs = scored.withColumn("probability", array_to_vector(F.array(*[F.col(c) for c in names])))
                return self._held_out_classes(probs, n, FitInfo(0.0, 0, True))
            curve, loss, scores = self._held_out(scored, n, F.col("p"))
        except Exception as exc:  # a reference figure must not cost the sweep's result
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            log.warning("no Bayes-optimal reference: scoring the true model in Spark failed (%s)", first[:300])
            return None
        return Evaluation(curve, loss, n, FitInfo(0.0, 0, True), scores)

    def _forget_session(self) -> None:
        """Drop the stopped driver's session (pyspark's own stop, which warns that the JVM is gone), and its gateway
        when the JVM exited, so that a new session can start in this process."""
        import warnings

        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        self._rungs.clear()
        self._folds.clear()
        self._base = self._parts = None
        if self.spark is not None and self._owns_session:
            sc = self.spark.sparkContext
            with warnings.catch_warnings(), contextlib.suppress(Exception):
                warnings.simplefilter("ignore", RuntimeWarning)
                sc.stop()
            with SparkContext._lock:  # (stop may fail before it gets there, on a dead gateway)
                if SparkContext._active_spark_context is sc:
                    SparkContext._active_spark_context = None
            SparkSession._instantiatedSession = None
            SparkSession._activeSession = None
            proc = getattr(SparkContext._gateway, "proc", None)
            if proc is not None and proc.poll() is not None:
                SparkContext._gateway = SparkContext._jvm = None
        self.spark = None

    def close(self) -> None:
        if self._lost is not None:  # the dead session was forgotten when it was found: nothing to release
            return
        for rows, *_ in self._rungs.values():
            release(rows)
        self._rungs.clear()
        for f in self._folds:
            release(f.fit)
            release(f.held)
        self._folds.clear()
        if self._base is not None:
            self._base.unpersist()
            self._base = None
        self._parts = None
        if self.spark is not None and self._owns_session:
            self.spark.stop()
            if self._archive is not None and self._archive.dump is not None:
                self._end_jvm_for_archive()
        self.spark = None

    def _end_jvm_for_archive(self) -> None:
        """The JVM writes its class archive as it exits: end it now (the next session in this process starts a new
        one, which maps the archive) and publish what it wrote. Closing on Ctrl-C or SIGTERM: the JVM is ended
        without writing it (a stop must not wait for it; the next session writes it)."""
        from pyspark import SparkContext

        assert self._archive is not None
        gateway: Any = SparkContext._gateway
        archive, self._archive = self._archive, None
        SparkContext._gateway = SparkContext._jvm = None
        with contextlib.suppress(Exception):
            gateway.close()  # this side's connections only
        proc = getattr(gateway, "proc", None)
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):
            archive.abandon(proc)
        else:
            archive.finish(proc)
