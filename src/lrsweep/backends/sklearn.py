"""scikit-learn backend: preprocessing fitted once per sweep part, one LogisticRegression fit per trial.

It has no settings of its own (the base ``BackendConfig``). Its solver table, :data:`SOLVER_PENALTIES`, is the
``solvers`` capability the search draws from: which penalty families each solver can fit.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.linalg import LinAlgWarning
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from lrsweep.backends.base import BackendConfig, Capabilities, Evaluation, FitInfo, Refit, coefficient_frame
from lrsweep.clusters import ClusterConfig
from lrsweep.data import DataHandle, DataSummary, Split, Table
from lrsweep.datasets import Reference
from lrsweep.errors import LrsweepError
from lrsweep.hashing import SparkFeatureHasher
from lrsweep.labelled import ClassThreshold, Labelled
from lrsweep.metrics import curve_from_scores, log_loss, multiclass_log_loss
from lrsweep.space import WIDE_ONE_HOT, ModelParams

__all__ = ["SklearnBackend", "SOLVER_PENALTIES", "make_preprocessor", "coefficient_table"]

log = logging.getLogger("lrsweep")

# Which penalty families each solver can fit (scikit-learn 1.9: liblinear refuses C=inf and elastic net;
# lbfgs, newton-* and sag refuse any L1 part; saga fits them all).
SOLVER_PENALTIES: dict[str, tuple[str, ...]] = {
    "lbfgs": ("none", "l2"),
    "newton-cg": ("none", "l2"),
    "newton-cholesky": ("none", "l2"),
    "sag": ("none", "l2"),
    "saga": ("none", "l2", "l1", "elasticnet"),
    "liblinear": ("l2", "l1"),
}


def make_preprocessor(
    numeric: list[str], categorical: list[str], hashed: list[str] | None = None, n_features: int = 2**20,
    sparse: bool = False,
) -> ColumnTransformer:  # fmt: skip
    """Impute + scale numerics; impute + one-hot categoricals (unknown levels at predict time ignored); hash the
    ``hashed`` columns into ``n_features`` buckets as Spark's FeatureHasher does (missing: no token).

    With hashed columns or ``sparse`` (a very wide one-hot) the output is a sparse CSR matrix, else a dense array.
    """
    hashed = hashed or []
    sparse = sparse or bool(hashed)
    parts: list[tuple[str, Any, list[str]]] = [
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        (
            "cat",
            make_pipeline(
                SimpleImputer(strategy="most_frequent"),
                OneHotEncoder(handle_unknown="ignore", sparse_output=sparse),
            ),
            categorical,
        ),
    ]
    if hashed:
        parts.append(("hash", SparkFeatureHasher(n_features), hashed))
    return ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False, sparse_threshold=float(sparse))


def coefficient_table(pre: ColumnTransformer, clf: Any, classes: list[str] | None = None) -> pd.DataFrame:
    """Coefficients on the original feature names (column, level), with odds ratios.

    Numeric coefficients are per standard deviation of the training data (the scaler's), so the odds
    ratio reads "odds multiply by this per 1 SD". Hashed buckets follow (see ``coefficient_frame``). A multi-class
    model (``classes``; a multinomial LogisticRegression or a OneVsRestClassifier of them): one column per class.
    """
    rows: list[tuple[str, str, str]] = [("(intercept)", "", "")]
    n_hashed = 0
    for name, _, cols in pre.transformers_:
        if name == "num":
            rows += [(c, "", "per 1 SD") for c in cols]
        elif name == "cat" and len(cols):
            enc = pre.named_transformers_["cat"][-1]
            for col, levels in zip(cols, enc.categories_, strict=True):
                rows += [(col, str(lev), "one-hot") for lev in levels]
        elif name == "hash" and len(cols):
            n_hashed = pre.named_transformers_["hash"].n_features
    if isinstance(clf, OneVsRestClassifier):
        coef = np.vstack([e.coef_[0] for e in clf.estimators_])
        intercept = np.array([e.intercept_[0] for e in clf.estimators_])
    else:
        coef, intercept = np.atleast_2d(clf.coef_), np.ravel(clf.intercept_)
    width = coef.shape[1] - n_hashed
    named = np.column_stack([intercept, coef[:, :width]])
    hashed = coef[:, width:] if n_hashed else None
    if not classes:
        return coefficient_frame(rows, named[0], None if hashed is None else hashed[0])
    return coefficient_frame(rows, named, hashed, classes)


def _logistic_regressions(clf: Any) -> list[LogisticRegression]:
    """The LogisticRegression(s) inside a fitted model: itself, a pipeline's or threshold wrapper's, one per class."""
    while not isinstance(clf, (LogisticRegression, OneVsRestClassifier)):
        clf = clf.estimator_ if hasattr(clf, "estimator_") else clf[-1]
    return list(clf.estimators_) if isinstance(clf, OneVsRestClassifier) else [clf]


def _contiguous(X: Any) -> Any:
    return X.tocsr() if sp.issparse(X) else np.ascontiguousarray(X)


class SklearnBackend:
    name = "sklearn"
    capabilities = Capabilities(
        solvers=SOLVER_PENALTIES,
        requirements=("scikit-learn", "pandas", "numpy", "scipy", "cloudpickle"),
        flavour="sklearn",
        # newton-cholesky builds a dense n_features^2 Hessian: 8 TiB for 2**20 hashed buckets
        dense_solvers=("newton-cholesky",),
    )

    def __init__(
        self, settings: BackendConfig | None = None, *, cluster: ClusterConfig | None = None, seed: int = 42,
        app_name: str = "lrsweep",
    ) -> None:  # fmt: skip
        self.settings = settings or BackendConfig()
        self.seed = seed
        self.table: Table | None = None
        self.split: Split | None = None
        self.reference: Reference | None = None
        # (X_fit, y_fit, X_score, y_score) per fold, preprocessed once; index 0 is train/validation
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._blas: Any = None
        self._wide = False  # a one-hot wider than WIDE_ONE_HOT columns: sparse features
        self._order: dict[int, np.ndarray] = {}  # per fold: the seeded order of its fitting rows (halving)
        self._rungs: dict[tuple[int, float], tuple[Any, np.ndarray]] = {}  # (fold, fraction) -> (X, y) of a rung
        self.classes: list[str] = []  # a multi-class target's labels (codes 0..K-1); empty: binary

    # -- prepare, once per sweep ----------------------------------------------------------------------
    def prepare(self, data: DataHandle) -> DataSummary:
        # One BLAS thread for the whole sweep: on matrices this size threading costs more than it gives,
        # and the other core is left to the MLflow writer / n_jobs.
        self._blas = threadpool_limits(limits=1, user_api="blas")
        table, split = data.pandas()
        self.table, self.split, self.reference = table, split, data.reference
        self.classes = list(table.classes)
        width = sum(int(table.X[c].nunique()) for c in table.categorical)
        self._wide = width > WIDE_ONE_HOT
        if self._wide:
            log.info("one-hot features: %s columns, kept sparse (above %s)", f"{width:,}", f"{WIDE_ONE_HOT:,}")
        pairs = split.folds if split.folds else [(split.train, split.val)]
        for fit_pos, score_pos in pairs:
            pre = self._preprocessor()
            Xa = pre.fit_transform(table.X.iloc[fit_pos])  # fitted on the fitting part only: no leakage
            Xb = pre.transform(table.X.iloc[score_pos])
            self._parts.append((_contiguous(Xa), table.y[fit_pos], _contiguous(Xb), table.y[score_pos]))
        return DataSummary(
            fingerprint=table.fingerprint,
            rows=split.rows,
            features=DataSummary.features_of(table.numeric, table.categorical, table.hashed),
            dropped=table.dropped,
            input_example=table.X.iloc[split.train[:5]].copy(),
            sparse=bool(table.hashed) or self._wide,
            classes=list(table.classes),
        )

    def _preprocessor(self) -> ColumnTransformer:
        assert self.table is not None
        t = self.table
        return make_preprocessor(t.numeric, t.categorical, t.hashed, t.hash_features, sparse=self._wide)

    @property
    def n_folds(self) -> int:
        return len(self.split.folds) if self.split else 0

    # -- per trial -----------------------------------------------------------------------------------
    def native_params(self, params: ModelParams) -> dict[str, Any]:
        return {
            "C": params.C,
            "l1_ratio": params.l1_ratio,
            "solver": params.solver or "lbfgs",
            "class_weight": None if params.class_weight == "none" else params.class_weight,
            "max_iter": params.max_iter,
            "tol": params.tol,
            "random_state": self.seed,
        }

    def _classifier(self, params: ModelParams) -> Any:
        """LogisticRegression; a multi-class target: its own multinomial loss, or one per class against the rest
        (OneVsRestClassifier, the course's one-vs-all) as ``params.multiclass`` says."""
        lr = LogisticRegression(**self.native_params(params))
        if self.classes and params.multiclass == "ovr":
            return OneVsRestClassifier(lr)
        return lr

    def _fit(self, clf: Any, X: Any, y: np.ndarray, max_iter: int) -> FitInfo:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # recorded as converged=False instead
            # newton-cholesky on collinear one-hot columns (telco's "No internet service" x7) warns that the
            # Hessian is singular and falls back to lbfgs on every such fit; the fit is still recorded
            warnings.filterwarnings("ignore", category=LinAlgWarning)
            clf.fit(X, y)
        seconds = time.perf_counter() - t0
        n_iter = max(int(np.max(lr.n_iter_)) for lr in _logistic_regressions(clf))
        return FitInfo(seconds, n_iter, n_iter < max_iter)

    def evaluate(self, params: ModelParams, fold: int | None = None, fraction: float = 1.0) -> Evaluation:
        Xa, ya, Xb, yb = self._parts[fold or 0]
        if fraction < 1.0:
            Xa, ya = self._rung(fraction, fold)
        clf = self._classifier(params)
        info = self._fit(clf, Xa, ya, params.max_iter)
        return self._scored(clf.predict_proba(Xb), yb, info)

    def _scored(self, proba: np.ndarray, y: np.ndarray, info: FitInfo) -> Evaluation:
        """A held-out part's Evaluation from the model's probabilities (a multi-class one keeps all K columns)."""
        if not np.all(np.isfinite(proba)):
            raise FloatingPointError("the fit produced non-finite probabilities")
        if self.classes:
            return Evaluation(None, multiclass_log_loss(y, proba), len(y), info, (y, proba))
        p = proba[:, 1] if proba.ndim == 2 else proba
        return Evaluation(curve_from_scores(y, p), log_loss(y, p), len(y), info, (y, p))

    def prepare_rungs(self, fractions: Sequence[float]) -> None:
        for fraction in fractions:
            self._rung(fraction, None)

    def _rung(self, fraction: float, fold: int | None) -> tuple[Any, np.ndarray]:
        """A rung's fitting rows, copied out once per sweep (not once per trial); two threads racing here make
        the same copy."""
        key = (fold or 0, float(fraction))
        if key not in self._rungs:
            Xa, ya = self._parts[fold or 0][:2]
            rows = self.fraction_rows(fraction, fold)
            self._rungs[key] = (_contiguous(Xa[rows]), ya[rows])
        return self._rungs[key]

    def fraction_rows(self, fraction: float, fold: int | None = None) -> np.ndarray:
        """Positions (in the fitting part) of the first ``fraction`` of its rows in a seeded, stratified order:
        every class's rows shuffled and interleaved in proportion, so a prefix keeps the class shares and each
        smaller fraction lies inside every larger one."""
        y = self._parts[fold or 0][1]
        order = self._order.get(fold or 0)
        if order is None:
            rng = np.random.default_rng([self.seed, 1])
            key = np.empty(len(y))
            for c in np.unique(y):
                idx = np.flatnonzero(y == c)
                key[idx] = (rng.permutation(len(idx)) + rng.random(len(idx))) / len(idx)
            order = self._order[fold or 0] = np.argsort(key, kind="stable")
        n = max(int(round(fraction * len(y))), 2)
        rows = np.sort(order[:n])
        if len(np.unique(y[rows])) < max(2, len(self.classes)):
            raise LrsweepError(
                f"{fraction:.3g} of the training rows ({n:,}) hold "
                + ("a single class" if not self.classes else "only some of the classes"),
                "use fewer search.rungs or a smaller search.eta",
            )
        return rows

    # -- after the search ----------------------------------------------------------------------------
    def refit(self, params: ModelParams, threshold: float, of_class: int | None = None) -> Refit:
        assert self.table is not None and self.split is not None
        t, s = self.table, self.split
        pipe = Pipeline([("preprocess", self._preprocessor()), ("model", self._classifier(params))])
        pos = s.trainval
        model: Any
        if self.classes:  # argmax, or (threshold.of_class) a threshold on one class, as chosen on validation
            info = self._fit(pipe, t.X.iloc[pos], t.y[pos], params.max_iter)
            fitted = model = pipe
            if of_class is not None:
                model = ClassThreshold(pipe, of_class, threshold)
            labels: tuple[str, ...] = tuple(self.classes)
        else:
            # FixedThresholdClassifier makes the logged model's predict() use the threshold chosen on validation
            model = FixedThresholdClassifier(pipe, threshold=threshold, response_method="predict_proba")
            info = self._fit(model, t.X.iloc[pos], t.y[pos], params.max_iter)
            fitted = model.estimator_
            labels = (t.negative or "0", t.positive)  # predict answers "Yes" / "No"
        yt = t.y[s.test]
        test = self._scored(model.predict_proba(t.X.iloc[s.test]), yt, info)
        table = coefficient_table(fitted.named_steps["preprocess"], fitted.named_steps["model"], self.classes)
        example = t.X.iloc[s.train[:5]].copy()
        # numbers as doubles in the signature: a CSV reader's integers, or integers read as floats, both load
        example[t.numeric] = example[t.numeric].astype(float)
        labelled = Labelled(model, labels)
        return Refit(labelled, test, table, example, labelled.predict(example), self._reference(yt), labelled.labels)

    def _reference(self, yt: np.ndarray) -> Evaluation | None:
        """A generated table's true model on the test rows: the best any model could score there."""
        assert self.table is not None and self.split is not None
        ref = self.reference
        if ref is None:
            return None
        if any(c not in self.table.X.columns for c in ref.columns):
            log.info("no Bayes-optimal reference: the sweep dropped some of the true model's columns")
            return None
        return self._scored(ref.probabilities(self.table.X.iloc[self.split.test]), yt, FitInfo(0.0, 0, True))

    def close(self) -> None:
        self._parts.clear()
        self._rungs.clear()
        if self._blas is not None:
            self._blas.restore_original_limits()
            self._blas = None
