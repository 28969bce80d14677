"""A third backend in plain numpy and pandas, for the conformance suite (``test_conformance.py``).

It exists to show the backend contract (``lrsweep.backends.base``) can be met without scikit-learn or Spark
estimators, so the suite checks the contract and not one library's habits. It is small on purpose:

- **what it fits**: logistic regression with an L2 penalty or none, in scikit-learn's convention: it minimises
  ``C * sum_i w_i * logloss_i + ||beta||^2 / 2`` with the intercept unpenalised (C=inf: no penalty), ``w_i`` = 1
  or scikit-learn's ``class_weight="balanced"`` (``n / (2 n_class)``). Like Spark it has no solver choice, and it
  declares the penalties it fits (``none``, ``l2``), so a search asking for ``l1`` or ``elasticnet`` is refused
  by the config check before any data is read; ``evaluate``/``refit`` also raise ValueError for an L1 part.
- **how it fits**: damped Newton (full Hessian, Armijo backtracking) on the objective divided by ``C sum w``,
  i.e. mean weighted log-loss + ``||beta||^2 / (2 C sum w)``, until ``max |gradient| <= tol`` (the criterion
  scikit-learn's lbfgs applies to the same scaled objective) or ``max_iter`` Newton steps. A singular Hessian
  (no penalty on collinear one-hot columns) gets the least-squares step.
- **preprocessing**, by hand, fitted on each fitting part only: numerics imputed with the median then scaled
  to mean 0 and population SD 1 (SD 0: left unscaled); categoricals imputed with the most frequent level (ties:
  the smallest), one-hot over the fitting part's levels in sorted order, an unseen or missing level all zeros.
  These are scikit-learn's numbers (``lrsweep.backends.sklearn.make_preprocessor``), so at convergence the
  fitted model equals scikit-learn's.
- **hashed columns** are not supported (its Newton step is dense, n_features^2): ``prepare`` refuses them.
- **the model** (:class:`FakeModel`) is a picklable object with ``predict_proba(frame)`` and ``predict(frame)``
  (0/1 at the threshold, positive iff p >= threshold) on raw rows; the flavour is ``"sklearn"``, so tracking
  logs it with mlflow.sklearn (cloudpickle). Loading it needs this module importable (it is a test fake).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lrsweep.backends.base import BackendConfig, Capabilities, Evaluation, FitInfo, Refit, coefficient_frame
from lrsweep.clusters import ClusterConfig
from lrsweep.data import DataHandle, DataSummary, Split, Table
from lrsweep.datasets import Reference
from lrsweep.labelled import Labelled
from lrsweep.metrics import curve_from_scores, log_loss
from lrsweep.space import ModelParams

__all__ = ["FakeBackend", "FakeModel", "Encoder", "fit_logistic"]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))  # no overflow for large |z|


# -- preprocessing ------------------------------------------------------------------------------------
@dataclass
class Encoder:
    """Median impute + standardise numerics, most-frequent impute + one-hot categoricals (fitted values)."""

    numeric: list[str]
    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    categorical: list[str]
    modes: list[Any]
    levels: list[list[str]]

    @classmethod
    def fit(cls, X: pd.DataFrame, numeric: list[str], categorical: list[str]) -> Encoder:
        medians, means, scales = [], [], []
        for c in numeric:
            x = pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float)
            med = float(np.nanmedian(x)) if np.isfinite(x).any() else 0.0
            x = np.where(np.isnan(x), med, x)
            sd = float(x.std())  # ddof=0, as StandardScaler
            medians.append(med)
            means.append(float(x.mean()))
            scales.append(sd if sd > 0 else 1.0)
        modes, levels = [], []
        for c in categorical:
            seen = X[c].dropna()
            counts = seen.value_counts()
            mode = min(counts.index[counts == counts.max()]) if len(counts) else None
            modes.append(mode)
            levels.append(sorted(seen.unique().tolist()))  # imputation adds no level: the mode is one of them
        return cls(numeric, np.array(medians), np.array(means), np.array(scales), categorical, modes, levels)

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        blocks = []
        if self.numeric:
            x = np.column_stack([pd.to_numeric(X[c], errors="coerce").to_numpy(dtype=float) for c in self.numeric])
            x = np.where(np.isnan(x), self.medians, x)
            blocks.append((x - self.means) / self.scales)
        for c, mode, levels in zip(self.categorical, self.modes, self.levels, strict=True):
            s = X[c].astype(object)
            s = s.where(s.notna(), mode)
            codes = pd.Categorical(s, categories=levels).codes  # -1: unseen (or missing with no mode)
            onehot = np.zeros((len(s), len(levels)))
            known = codes >= 0
            onehot[np.flatnonzero(known), codes[known]] = 1.0
            blocks.append(onehot)
        return np.hstack(blocks) if blocks else np.zeros((len(X), 0))

    def rows(self) -> list[tuple[str, str, str]]:
        """The coefficient table's names, intercept first, in the order of ``transform``'s columns."""
        out = [("(intercept)", "", "")] + [(c, "", "per 1 SD") for c in self.numeric]
        for c, levels in zip(self.categorical, self.levels, strict=True):
            out += [(c, str(lev), "one-hot") for lev in levels]
        return out


# -- the fit ------------------------------------------------------------------------------------------
def balanced(y: np.ndarray) -> np.ndarray:
    """scikit-learn's class_weight="balanced": n / (2 n_class) per row."""
    n, n_pos = len(y), int(y.sum())
    return np.where(y == 1, n / (2.0 * n_pos), n / (2.0 * (n - n_pos)))


def fit_logistic(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, C: float, max_iter: int, tol: float
) -> tuple[np.ndarray, FitInfo]:
    """beta = (intercept, coefficients) minimising mean_w(logloss) + ||coef||^2 / (2 C sum w), by damped Newton."""
    t0 = time.perf_counter()
    A = np.column_stack([np.ones(len(X)), X])
    sw = float(w.sum())
    lam = np.r_[0.0, np.full(X.shape[1], 0.0 if math.isinf(C) else 1.0 / (C * sw))]  # intercept unpenalised
    beta = np.zeros(A.shape[1])

    def objective(b: np.ndarray) -> float:
        z = A @ b
        return float((w * (np.logaddexp(0.0, z) - y * z)).sum() / sw + 0.5 * (lam * b * b).sum())

    n_iter, converged = 0, False
    f = objective(beta)
    while True:
        p = sigmoid(A @ beta)
        grad = A.T @ (w * (p - y)) / sw + lam * beta
        if np.max(np.abs(grad)) <= tol:
            converged = True
            break
        if n_iter >= max_iter:
            break
        hess = (A.T * (w * p * (1.0 - p))) @ A / sw + np.diag(lam)
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        t, slope = 1.0, float(grad @ step)
        while True:  # Armijo backtracking: a full Newton step can overshoot far from the optimum
            candidate = beta - t * step
            f_new = objective(candidate)
            if f_new <= f - 1e-4 * t * slope or t < 1e-10:
                break
            t /= 2.0
        beta, f = candidate, f_new
        n_iter += 1
    return beta, FitInfo(time.perf_counter() - t0, n_iter, converged)


def _check(params: ModelParams) -> None:
    if params.l1_ratio != 0.0:
        raise ValueError(f"the fake backend fits an L2 penalty or none, not l1_ratio={params.l1_ratio}")
    if params.solver is not None:
        raise ValueError(f"the fake backend has no solver choice, not {params.solver!r}")


def _weights(params: ModelParams, y: np.ndarray) -> np.ndarray:
    return balanced(y) if params.class_weight == "balanced" else np.ones(len(y))


# -- the model ----------------------------------------------------------------------------------------
class FakeModel:
    """Preprocessing and coefficients; predicts raw rows, positive iff p >= threshold."""

    def __init__(self, encoder: Encoder, beta: np.ndarray, threshold: float) -> None:
        self.encoder, self.beta, self.threshold = encoder, beta, float(threshold)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = sigmoid(self.beta[0] + self.encoder.transform(X) @ self.beta[1:])
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= self.threshold).astype(np.int64)


# -- the backend --------------------------------------------------------------------------------------
class FakeBackend:
    name = "fake"
    capabilities = Capabilities(
        solvers=None,  # one optimiser (Newton), as Spark picks its own
        requirements=("numpy", "pandas", "cloudpickle"),
        flavour="sklearn",
        penalties=("none", "l2"),
    )

    def __init__(
        self, settings: BackendConfig | None = None, *, cluster: ClusterConfig | None = None, seed: int = 42,
        app_name: str = "lrsweep",
    ) -> None:  # fmt: skip
        self.settings = settings or BackendConfig(name="fake")
        self.seed = seed  # the fit is deterministic: nothing is drawn
        self.classes: list[str] = []  # binary targets only
        self.table: Table | None = None
        self.split: Split | None = None
        self.reference: Reference | None = None
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # per fold: Xa, ya, Xb, yb

    def prepare(self, data: DataHandle) -> DataSummary:
        table, split = data.pandas()
        if table.hashed:
            raise ValueError("the fake backend cannot fit hashed columns (its Newton step is dense)")
        self.table, self.split, self.reference = table, split, data.reference
        for fit_pos, held_pos in split.folds or [(split.train, split.val)]:
            enc = Encoder.fit(table.X.iloc[fit_pos], table.numeric, table.categorical)
            Xa, Xb = enc.transform(table.X.iloc[fit_pos]), enc.transform(table.X.iloc[held_pos])
            self._parts.append((Xa, table.y[fit_pos].astype(float), Xb, table.y[held_pos]))
        return DataSummary(
            fingerprint=table.fingerprint,
            rows=split.rows,
            features=DataSummary.features_of(table.numeric, table.categorical, table.hashed),
            dropped=table.dropped,
            input_example=table.X.iloc[split.train[:5]].copy(),
        )

    @property
    def n_folds(self) -> int:
        return len(self.split.folds) if self.split is not None else 0

    def native_params(self, params: ModelParams) -> dict[str, Any]:
        n_fit = len(self._parts[0][1]) if self._parts else 1
        return {
            "l2_strength": 0.0 if math.isinf(params.C) else 1.0 / (params.C * n_fit),  # per row of the mean loss
            "balanced": params.class_weight == "balanced",
            "max_newton_steps": params.max_iter,
            "gradient_tol": params.tol,
        }

    def evaluate(self, params: ModelParams, fold: int | None = None) -> Evaluation:
        _check(params)
        Xa, ya, Xb, yb = self._parts[fold or 0]
        beta, info = fit_logistic(Xa, ya, _weights(params, ya), params.C, params.max_iter, params.tol)
        p = sigmoid(beta[0] + Xb @ beta[1:])
        if not np.all(np.isfinite(p)):
            raise FloatingPointError("the fit produced non-finite probabilities")
        return Evaluation(curve_from_scores(yb, p), log_loss(yb, p), len(yb), info, (yb, p))

    def prepare_rungs(self, fractions: Any) -> None:
        if len(fractions):
            raise ValueError("the fake backend fits every training row: no successive halving")

    def refit(self, params: ModelParams, threshold: float, of_class: int | None = None) -> Refit:
        assert self.table is not None and self.split is not None, "prepare first"
        _check(params)
        t, s = self.table, self.split
        t0 = time.perf_counter()
        X = t.X.iloc[s.trainval]
        enc = Encoder.fit(X, t.numeric, t.categorical)
        y = t.y[s.trainval].astype(float)
        beta, info = fit_logistic(enc.transform(X), y, _weights(params, y), params.C, params.max_iter, params.tol)
        info.seconds = time.perf_counter() - t0  # preprocessing + fit
        model = FakeModel(enc, beta, threshold)
        yt = t.y[s.test]
        p = model.predict_proba(t.X.iloc[s.test])[:, 1]
        test = Evaluation(curve_from_scores(yt, p), log_loss(yt, p), len(yt), info, (yt, p))
        example = t.X.iloc[s.train[:5]].copy()
        example[t.numeric] = example[t.numeric].astype(float)  # as the scikit-learn backend's signature has them
        labelled = Labelled(model, (t.negative or "0", t.positive))  # predict answers in the data's labels
        return Refit(
            labelled, test, coefficient_frame(enc.rows(), beta), example, labelled.predict(example),
            self._reference(yt), labelled.labels,
        )  # fmt: skip

    def _reference(self, yt: np.ndarray) -> Evaluation | None:
        """A generated table's true model on the test rows."""
        assert self.table is not None and self.split is not None
        ref = self.reference
        if ref is None or any(c not in self.table.X.columns for c in ref.columns):
            return None
        p = ref.probabilities(self.table.X.iloc[self.split.test])
        return Evaluation(curve_from_scores(yt, p), log_loss(yt, p), len(yt), FitInfo(0.0, 0, True), (yt, p))

    def close(self) -> None:
        self._parts.clear()
        self.table = self.split = self.reference = None
