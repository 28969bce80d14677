"""Independent references for the tests: what lrsweep should compute, built from scikit-learn's own pieces.

Nothing here imports lrsweep's preprocessing, fitting or metrics code: the pipeline is assembled from
scikit-learn primitives as the README describes it (median / most-frequent imputation, scaling, one-hot with
unknown levels ignored), and metrics come from ``sklearn.metrics`` on raw labels and scores.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["a", "b"]
CATEGORICAL = ["c"]


def synthetic_table(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """A small table whose parts have visibly different statistics: "a" is continuous with a distinct value on
    every row (tests use it to recognise rows), "b" is skewed with gaps, "c" categorical with gaps."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = rng.exponential(2.0, size=n)
    c = rng.choice(np.array(["x", "y", "z"], dtype=object), size=n, p=[0.45, 0.35, 0.2])
    logit = 1.2 * a - 0.4 * (b - 2.0) + 0.9 * (c == "x") - 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    b[rng.random(n) < 0.12] = np.nan
    c[rng.random(n) < 0.06] = np.nan
    assert len(np.unique(a)) == n
    return pd.DataFrame({"a": a, "b": b, "c": c, "y": y})


def write_table(path: Path, n: int = 300, seed: int = 0) -> pd.DataFrame:
    df = synthetic_table(n, seed)
    df.to_csv(path, index=False)
    return pd.read_csv(path)  # as lrsweep reads it


def preprocessor(numeric: list[str] = NUMERIC, categorical: list[str] = CATEGORICAL) -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), numeric),
            (
                "cat",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="most_frequent")),
                        ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ],
        remainder="drop",
    )


def classifier(p: dict[str, Any], seed: int) -> LogisticRegression:
    """scikit-learn's LogisticRegression for a configuration in lrsweep's vocabulary (C, l1_ratio, solver,
    class_weight none/balanced, max_iter, tol)."""
    cw = p.get("class_weight", "none")
    return LogisticRegression(
        C=float(p["C"]),
        l1_ratio=float(p.get("l1_ratio", 0.0)),
        solver=p.get("solver") or "lbfgs",
        class_weight=None if cw in (None, "none") else cw,
        max_iter=int(p["max_iter"]),
        tol=float(p["tol"]),
        random_state=seed,
    )


def fit(
    X: pd.DataFrame,
    y: np.ndarray,
    rows: np.ndarray,
    p: dict[str, Any],
    seed: int,
    numeric: list[str] = NUMERIC,
    categorical: list[str] = CATEGORICAL,
) -> Pipeline:
    """Preprocessing and classifier fitted on exactly ``rows``."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    pipe = Pipeline([("pre", preprocessor(numeric, categorical)), ("lr", classifier(p, seed))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return pipe.fit(X.iloc[rows], y[rows])


def scores(model: Pipeline, X: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    return model.predict_proba(X.iloc[rows])[:, 1]


def coefficients(model: Pipeline) -> np.ndarray:
    """Intercept first, then the coefficients in column order (numerics, then one-hot levels, sorted)."""
    lr = model.named_steps["lr"]
    return np.r_[lr.intercept_[0], lr.coef_[0]]


def metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Every figure lrsweep reports for a part, from sklearn.metrics on the raw labels and scores."""
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y, pred, labels=[0, 1]).ravel()
    return {
        "roc_auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "log_loss": log_loss(y, p, labels=[0, 1]),
        "accuracy": accuracy_score(y, pred),
        "precision": precision_score(y, pred, zero_division=0),
        "recall": recall_score(y, pred, zero_division=0),
        "f1": f1_score(y, pred, zero_division=0),
        "specificity": tn / (tn + fp),
        "tp": float(tp),
        "fp": float(fp),
        "tn": float(tn),
        "fn": float(fn),
    }


def model_params(shown: dict[str, Any]) -> dict[str, Any]:
    """The configuration in the params lrsweep logs (SweepResult.best_params, a child run's params)."""

    def num(v: Any) -> float:
        return math.inf if str(v) == "inf" else float(v)

    return {
        "C": num(shown.get("C", "inf")),  # no C logged without a penalty
        "l1_ratio": float(shown.get("l1_ratio", 0.0)),
        "solver": shown.get("solver"),
        "class_weight": shown.get("class_weight", "none"),
        "max_iter": int(shown["max_iter"]),
        "tol": float(shown["tol"]),
    }
