"""The backend contract: what the sweep needs from a library that fits logistic regression, and nothing more.

A backend is made once per sweep from its own settings (a :class:`BackendConfig` subclass), the cluster
settings and the seed; it receives the sweep's data as a :class:`~lrsweep.data.DataHandle` (never the raw
config), and answers in the shared vocabulary (:class:`~lrsweep.space.ModelParams`) with the shared records
below. It declares what it can do in :class:`Capabilities`; how its model is logged (the MLflow flavour)
lives with tracking, so no backend imports mlflow. ``tests/backends/test_conformance.py`` is the contract
as a test: a new backend is done when it passes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from lrsweep.metrics import Curve

if TYPE_CHECKING:
    from lrsweep.data import DataHandle, DataSummary
    from lrsweep.space import ModelParams

__all__ = [
    "Backend",
    "BackendConfig",
    "Capabilities",
    "Evaluation",
    "FitInfo",
    "Refit",
    "coefficient_frame",
    "HASHED_COEFFICIENT_ROWS",
]


@dataclass
class BackendConfig:
    """The backend group's base schema: ``name`` picks the backend. A backend with settings of its own
    subclasses it (``backends/spark.py``); scikit-learn has none and uses this one."""

    name: str = "sklearn"

    def check(self) -> None:
        pass


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, known before any data is read (the config is checked against it)."""

    # solver -> the penalty families it can fit; None: no solver choice (the library picks its optimiser)
    solvers: Mapping[str, tuple[str, ...]] | None
    # distributions the logged model needs at serving time (pinned to the installed versions when logged)
    requirements: tuple[str, ...]
    # how tracking logs the fitted model: "sklearn" (mlflow.sklearn) | "spark" (mlflow.spark)
    flavour: str
    # solvers that cannot fit sparse features, hashed or a very wide one-hot (they build a dense n_features^2 Hessian)
    dense_solvers: tuple[str, ...] = field(default_factory=tuple)
    # the penalty families the backend fits at all (with a solver table: those some solver fits)
    penalties: tuple[str, ...] = ("none", "l2", "l1", "elasticnet")


# coefficients.csv lists at most this many hashed buckets (largest |coefficient| first): 2**20 rows would be 40 MB
HASHED_COEFFICIENT_ROWS = 10_000


@dataclass
class FitInfo:
    seconds: float
    n_iter: int
    converged: bool


@dataclass
class Evaluation:
    """What one fit scored on a held-out part: the threshold curve and log loss (plus raw scores if small).

    A multi-class target: no curve (None); ``scores`` holds the class codes and the n x K class probabilities,
    always (lrsweep.multiclass reads them)."""

    curve: Curve | None
    log_loss: float
    n: int
    fit: FitInfo
    # (labels, scores) where the part is small enough to keep on the driver: plots and pooled CV curves
    scores: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class Refit:
    """The best configuration refitted on train+validation, and its one evaluation on test."""

    model: Any  # predicts on raw rows with the validation threshold
    test: Evaluation
    coefficients: pd.DataFrame
    input_example: pd.DataFrame  # a few raw rows, and the model's predictions for them (the logged signature)
    example_predictions: np.ndarray
    # for a generated table: its true model scored on the same test rows (the best any model could do there)
    reference: Evaluation | None = None
    # what the model predicts: the target's (negative, positive) labels, or a multi-class target's K labels
    labels: tuple[str, ...] = ("0", "1")


def coefficient_frame(
    rows: list[tuple[str, str, str]],
    coef: np.ndarray,
    hashed: np.ndarray | None = None,
    classes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The coefficient table both backends log: (feature, level, scale, coefficient, odds_ratio).

    ``rows`` name the intercept and the numeric and one-hot columns, ``coef`` holds their values in that order;
    ``hashed`` holds the bucket coefficients, listed as feature "(hashed)", level "bucket N", non-zero ones only,
    at most HASHED_COEFFICIENT_ROWS of them, largest |coefficient| first.

    A multi-class model (``classes``, one label per row of a K x p ``coef`` and ``hashed``): one column per class,
    ``coefficient.<class>`` and ``odds_ratio.<class>`` (one-vs-rest: that class's odds against the rest;
    multinomial: against the classes' geometric mean).
    """
    table = pd.DataFrame(rows, columns=["feature", "level", "scale"])
    names = ["coefficient"] if classes is None else [f"coefficient.{c}" for c in classes]
    coef2 = np.atleast_2d(np.asarray(coef, dtype=float))
    for name, values in zip(names, coef2, strict=True):
        table[name] = values
    if hashed is not None:
        h2 = np.atleast_2d(np.asarray(hashed, dtype=float))
        size = np.abs(h2).max(axis=0)
        nz = np.flatnonzero(size)
        nz = nz[np.argsort(-size[nz], kind="stable")][:HASHED_COEFFICIENT_ROWS]
        extra = pd.DataFrame({"feature": "(hashed)", "level": [f"bucket {b}" for b in nz], "scale": "token count"})
        for name, values in zip(names, h2, strict=True):
            extra[name] = values[nz]
        table = pd.concat([table, extra], ignore_index=True)
    for name in names:
        table[name.replace("coefficient", "odds_ratio", 1)] = np.exp(table[name])
    return table


class Backend(Protocol):
    """Made by ``lrsweep.backends.make_backend``: ``Cls(settings, cluster=..., seed=..., app_name=...)``."""

    name: str
    capabilities: Capabilities
    classes: list[str]  # after prepare: a multi-class target's labels (codes 0..K-1); empty for a binary one

    def prepare(self, data: DataHandle) -> DataSummary:
        """Take the parts, fit preprocessing on each fitting part only, cache: once per sweep."""
        ...

    @property
    def n_folds(self) -> int:
        """0 for one train/validation split, K for K-fold CV."""
        ...

    def evaluate(self, params: ModelParams, fold: int | None = None, fraction: float = 1.0) -> Evaluation:
        """Fit on the training part (of ``fold``) and score its held-out part (all of it).

        ``fraction`` < 1 (successive halving, one train/validation split): fit on that share of the training
        rows only, the same rows for every configuration, each smaller share inside every larger one."""
        ...

    def prepare_rungs(self, fractions: Sequence[float]) -> None:
        """Successive halving: draw, check (two classes) and keep each rung's share of the training rows, once per
        sweep, in its setup; a rung that cannot be fitted is one clear error before any trial runs."""
        ...

    def refit(self, params: ModelParams, threshold: float, of_class: int | None = None) -> Refit:
        """Fit preprocessing and model on train+validation, score test once (and a generated table's
        true model on the same rows). A multi-class target: ``threshold`` applies to class ``of_class`` (None:
        argmax, no threshold)."""
        ...

    def native_params(self, params: ModelParams) -> dict[str, Any]:
        """The backend's own names and values for ``params`` (logged beside the shared ones)."""
        ...

    def close(self) -> None:
        """Release what prepare took (caches, a session it started); safe to call twice."""
        ...
