"""The backend protocol: what the sweep needs from scikit-learn or Spark, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from lrsweep.config import Config
from lrsweep.metrics import Curve
from lrsweep.space import ModelParams

__all__ = ["Backend", "Evaluation", "FitInfo", "Prepared", "Refit"]


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
