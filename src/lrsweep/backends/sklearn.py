"""scikit-learn backend: preprocessing fitted once per sweep part, one LogisticRegression fit per trial."""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import FixedThresholdClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from lrsweep.backends.base import Evaluation, FitInfo, Prepared, Refit, coefficient_frame
from lrsweep.config import SOLVER_PENALTIES, Config
from lrsweep.data import Split, Table, load_table, split_table
from lrsweep.hashing import SparkFeatureHasher
from lrsweep.metrics import curve_from_scores, log_loss
from lrsweep.space import ModelParams

__all__ = ["SklearnBackend", "make_preprocessor", "coefficient_table", "true_model_scores"]

log = logging.getLogger("lrsweep")


def make_preprocessor(
    numeric: list[str], categorical: list[str], hashed: list[str] | None = None, n_features: int = 2**20
) -> ColumnTransformer:
    """Impute + scale numerics; impute + one-hot categoricals (unknown levels at predict time ignored); hash the
    ``hashed`` columns into ``n_features`` buckets as Spark's FeatureHasher does (missing: no token).

    With hashed columns the output is a sparse CSR matrix, else a dense array.
    """
    hashed = hashed or []
    parts: list[tuple[str, Any, list[str]]] = [
        ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        (
            "cat",
            make_pipeline(
                SimpleImputer(strategy="most_frequent"),
                OneHotEncoder(handle_unknown="ignore", sparse_output=bool(hashed)),
            ),
            categorical,
        ),
    ]
    if hashed:
        parts.append(("hash", SparkFeatureHasher(n_features), hashed))
    return ColumnTransformer(
        parts, remainder="drop", verbose_feature_names_out=False, sparse_threshold=1.0 if hashed else 0.0
    )


def coefficient_table(pre: ColumnTransformer, clf: LogisticRegression) -> pd.DataFrame:
    """Coefficients on the original feature names (column, level), with odds ratios.

    Numeric coefficients are per standard deviation of the training data (the scaler's), so the odds
    ratio reads "odds multiply by this per 1 SD". Hashed buckets follow (see ``coefficient_frame``).
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
    coef = clf.coef_[0]
    named = np.r_[clf.intercept_[0], coef[: len(coef) - n_hashed]]
    return coefficient_frame(rows, named, coef[len(coef) - n_hashed :] if n_hashed else None)


def true_model_scores(table: Table, rows: np.ndarray) -> np.ndarray | None:
    """The generated table's true click probabilities for ``rows``, or None (not generated, columns missing)."""
    if table.generated is None:
        return None
    from lrsweep.datasets.ctr import FEATURE_COLUMNS, true_probabilities

    if any(c not in table.X.columns for c in FEATURE_COLUMNS):
        log.info("no Bayes-optimal reference: the sweep dropped some of the true model's columns")
        return None
    return true_probabilities(table.X.iloc[rows], seed=int(table.generated["params"]["seed"]))


@contextlib.contextmanager
def _hasher_by_value() -> Iterator[None]:
    """Pickle lrsweep.hashing's code into the model, so it loads where lrsweep is not installed."""
    import cloudpickle

    import lrsweep.hashing

    cloudpickle.register_pickle_by_value(lrsweep.hashing)
    try:
        yield
    finally:
        cloudpickle.unregister_pickle_by_value(lrsweep.hashing)


def _contiguous(X: Any) -> Any:
    return X.tocsr() if sp.issparse(X) else np.ascontiguousarray(X)


class SklearnBackend:
    name = "sklearn"
    solvers: tuple[str, ...] | None = tuple(SOLVER_PENALTIES)
    requirements = ("scikit-learn", "pandas", "numpy", "scipy", "cloudpickle")

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        if cfg.dataset.hashed:  # newton-cholesky builds a dense n_features^2 Hessian: 8 TiB for 2**20 buckets
            self.solvers = tuple(s for s in SOLVER_PENALTIES if s != "newton-cholesky")
        self.table: Table | None = None
        self.split: Split | None = None
        # (X_fit, y_fit, X_score, y_score) per fold, preprocessed once; index 0 is train/validation
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._blas: Any = None

    # -- setup, once per sweep ------------------------------------------------------------------------
    def setup(self, cfg: Config) -> Prepared:
        # One BLAS thread for the whole sweep: on matrices this size threading costs more than it gives
        # (median lbfgs trial 37 -> 31 ms), and the other core is left to the MLflow writer / n_jobs.
        self._blas = threadpool_limits(limits=1, user_api="blas")
        table = load_table(cfg.dataset)
        split = split_table(table.y, cfg.split, cfg.cv, cfg.seed)
        self.table, self.split = table, split
        pairs = split.folds if split.folds else [(split.train, split.val)]
        for fit_pos, score_pos in pairs:
            pre = self._preprocessor()
            Xa = pre.fit_transform(table.X.iloc[fit_pos])  # fitted on the fitting part only: no leakage
            Xb = pre.transform(table.X.iloc[score_pos])
            self._parts.append((_contiguous(Xa), table.y[fit_pos], _contiguous(Xb), table.y[score_pos]))
        features = {"numeric": table.numeric, "categorical": table.categorical}
        if table.hashed:
            features["hashed"] = table.hashed
        return Prepared(
            fingerprint=table.fingerprint,
            rows={"train": len(split.train), "val": len(split.val), "test": len(split.test)},
            features=features,
            dropped=table.dropped,
            input_example=table.X.iloc[split.train[:5]].copy(),
        )

    def _preprocessor(self) -> ColumnTransformer:
        assert self.table is not None
        t = self.table
        return make_preprocessor(t.numeric, t.categorical, t.hashed, self.cfg.dataset.hash_features)

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
            "random_state": self.cfg.seed,
        }

    def _classifier(self, params: ModelParams) -> LogisticRegression:
        return LogisticRegression(**self.native_params(params))

    def _fit(self, clf: Any, X: Any, y: np.ndarray, max_iter: int) -> FitInfo:
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # recorded as converged=False instead
            # newton-cholesky on collinear one-hot columns (telco's "No internet service" x7) warns and falls
            # back to lbfgs on every such fit; the fit is still recorded with its convergence
            warnings.filterwarnings("ignore", message="A singular matrix detected")
            clf.fit(X, y)
        seconds = time.perf_counter() - t0
        lr = clf if isinstance(clf, LogisticRegression) else clf.estimator_[-1]
        n_iter = int(np.max(lr.n_iter_))
        return FitInfo(seconds, n_iter, n_iter < max_iter)

    def evaluate(self, params: ModelParams, fold: int | None = None) -> Evaluation:
        Xa, ya, Xb, yb = self._parts[fold or 0]
        clf = self._classifier(params)
        info = self._fit(clf, Xa, ya, params.max_iter)
        p = clf.predict_proba(Xb)[:, 1]
        if not np.all(np.isfinite(p)):
            raise FloatingPointError("the fit produced non-finite probabilities")
        return Evaluation(curve_from_scores(yb, p), log_loss(yb, p), len(yb), info, (yb, p))

    # -- after the search ----------------------------------------------------------------------------
    def refit(self, params: ModelParams, threshold: float) -> Refit:
        assert self.table is not None and self.split is not None
        t, s = self.table, self.split
        pipe = Pipeline([("preprocess", self._preprocessor()), ("model", self._classifier(params))])
        # FixedThresholdClassifier makes the logged model's predict() use the threshold chosen on validation
        model = FixedThresholdClassifier(pipe, threshold=threshold, response_method="predict_proba")
        pos = s.trainval
        info = self._fit(model, t.X.iloc[pos], t.y[pos], params.max_iter)
        yt = t.y[s.test]
        p = model.predict_proba(t.X.iloc[s.test])[:, 1]
        test = Evaluation(curve_from_scores(yt, p), log_loss(yt, p), len(yt), info, (yt, p))
        fitted = model.estimator_
        table = coefficient_table(fitted.named_steps["preprocess"], fitted.named_steps["model"])
        reference = None
        truth = true_model_scores(t, s.test)
        if truth is not None:
            reference = Evaluation(curve_from_scores(yt, truth), log_loss(yt, truth), len(yt), FitInfo(0.0, 0, True))
        return Refit(model, test, table, reference)

    def log_model(self, refit: Refit, threshold: float, pip_requirements: list[str]) -> str:
        import mlflow.sklearn
        from mlflow.models import infer_signature

        assert self.table is not None and self.split is not None
        # The table's own dtypes: a CSV read by pandas gives int64 for complete integer columns, and MLflow's
        # schema check refuses int64 input for a column declared double. Columns with gaps are float already.
        example = self.table.X.iloc[self.split.train[:5]].copy()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Inferred schema contains integer column.*")
            signature = infer_signature(example, refit.model.predict(example))
            # cloudpickle (not skops): skops refuses FixedThresholdClassifier without a trusted-type list
            warnings.filterwarnings("ignore", message=".*pickle or cloudpickle format.*")
            logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
            with _hasher_by_value():
                info = self._log(mlflow, refit, signature, example, pip_requirements, threshold)
        return str(info.model_uri)

    @staticmethod
    def _log(mlflow: Any, refit: Refit, signature: Any, example: Any, reqs: list[str], threshold: float) -> Any:
        return mlflow.sklearn.log_model(
            refit.model,
            name="model",
            signature=signature,
            input_example=example,
            pip_requirements=reqs,  # explicit: inferring them costs 2.6-3.5 s (NOTES.md)
            serialization_format="cloudpickle",
            metadata={"threshold": threshold},
        )

    def close(self) -> None:
        self._parts.clear()
        if self._blas is not None:
            self._blas.restore_original_limits()
            self._blas = None
