"""The backend protocol: what the sweep needs from scikit-learn or Spark, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from lrsweep.config import Config
from lrsweep.metrics import Curve
from lrsweep.space import ModelParams

__all__ = ["Backend", "Evaluation", "FitInfo", "Prepared", "Refit", "coefficient_frame", "HASHED_COEFFICIENT_ROWS"]

# coefficients.csv lists at most this many hashed buckets (largest |coefficient| first): 2**20 rows would be 40 MB
HASHED_COEFFICIENT_ROWS = 10_000


@dataclass
class FitInfo:
    seconds: float
    n_iter: int
    converged: bool


@dataclass
class Evaluation:
    """What one fit scored on a held-out part: the threshold curve and log loss (plus raw scores if small)."""

    curve: Curve
    log_loss: float
    n: int
    fit: FitInfo
    # (labels, scores) where the part is small enough to keep on the driver: plots and pooled CV curves
    scores: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class Prepared:
    """What setup learned about the data, for logging and the summary."""

    fingerprint: dict[str, Any]
    rows: dict[str, int]  # rows per part: train, val, test
    features: dict[str, list[str]]  # numeric, categorical
    dropped: dict[str, str] = field(default_factory=dict)
    input_example: pd.DataFrame | None = None


@dataclass
class Refit:
    """The best configuration refitted on train+validation, and its one evaluation on test."""

    model: Any
    test: Evaluation
    coefficients: pd.DataFrame
    # for a generated table: its true model scored on the same test rows (the best any model could do there)
    reference: Evaluation | None = None


def coefficient_frame(
    rows: list[tuple[str, str, str]], coef: np.ndarray, hashed: np.ndarray | None = None
) -> pd.DataFrame:
    """The coefficient table both backends log: (feature, level, scale, coefficient, odds_ratio).

    ``rows`` name the intercept and the numeric and one-hot columns, ``coef`` holds their values in that order;
    ``hashed`` holds the bucket coefficients, listed as feature "(hashed)", level "bucket N", non-zero ones only,
    at most HASHED_COEFFICIENT_ROWS of them, largest |coefficient| first.
    """
    table = pd.DataFrame(rows, columns=["feature", "level", "scale"])
    table["coefficient"] = np.asarray(coef, dtype=float)
    if hashed is not None:
        nz = np.flatnonzero(hashed)
        nz = nz[np.argsort(-np.abs(hashed[nz]), kind="stable")][:HASHED_COEFFICIENT_ROWS]
        extra = pd.DataFrame(
            {
                "feature": "(hashed)",
                "level": [f"bucket {b}" for b in nz],
                "scale": "token count",
                "coefficient": hashed[nz].astype(float),
            }
        )
        table = pd.concat([table, extra], ignore_index=True)
    table["odds_ratio"] = np.exp(table["coefficient"])
    return table


class Backend(Protocol):
    name: str
    # solver names the backend can choose from; None when it has no solver choice (Spark)
    solvers: tuple[str, ...] | None
    # distributions the logged model needs at serving time (pinned to the installed versions)
    requirements: tuple[str, ...]

    def setup(self, cfg: Config) -> Prepared:
        """Load, validate, split, fit preprocessing and cache: once per sweep."""
        ...

    @property
    def n_folds(self) -> int:
        """0 for one train/validation split, K for K-fold CV."""
        ...

    def evaluate(self, params: ModelParams, fold: int | None = None) -> Evaluation:
        """Fit on the training part (of ``fold``) and score its held-out part."""
        ...

    def refit(self, params: ModelParams, threshold: float) -> Refit:
        """Fit on train+validation, score test once."""
        ...

    def native_params(self, params: ModelParams) -> dict[str, Any]:
        """The backend's own names and values for ``params`` (logged beside the shared ones)."""
        ...

    def log_model(self, refit: Refit, threshold: float, pip_requirements: list[str]) -> str:
        """Log the fitted model in the active MLflow run with its own flavour; return the model URI."""
        ...

    def close(self) -> None: ...
