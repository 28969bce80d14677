"""A fitted classifier that answers in the dataset's own labels.

Models are fitted on a 0/1 target (1 = ``dataset.positive``), or on class codes 0..K-1 (a multi-class target).
The logged scikit-learn model wraps the fitted one so that ``predict`` returns the labels of the data (``"Yes"`` /
``"No"``; ``"basic"`` / ``"pro"`` / ...), not codes, and ``predict_proba`` keeps its columns (in the order
``classes_`` says: the positive label's probability is column 1). :class:`ClassThreshold` is the K-class
decision with a threshold on one class (``threshold.of_class``). Pickled by value into
the model (see tracking._lrsweep_code_by_value), so it loads where lrsweep is not installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = ["Labelled", "ClassThreshold", "decide"]


def decide(proba: np.ndarray, of_class: int | None, threshold: float) -> np.ndarray:
    """Class codes from K class probabilities: the most probable class, or (``of_class`` given) that class
    whenever its probability reaches ``threshold``, else the most probable other class."""
    proba = np.asarray(proba, dtype=float)
    if of_class is None:
        return proba.argmax(axis=1)
    others = proba.copy()
    others[:, of_class] = -np.inf
    return np.where(proba[:, of_class] >= threshold, of_class, others.argmax(axis=1))


class Labelled(ClassifierMixin, BaseEstimator):
    """``model`` (fitted on 0/1, or codes 0..K-1) with ``labels = (negative, positive)`` (or the K class labels):
    predict maps the codes to them."""

    def __init__(self, model: Any = None, labels: tuple[str, ...] = ("0", "1")) -> None:
        self.model = model
        self.labels = labels

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=object)

    def fit(self, X: Any, y: Any) -> Labelled:  # noqa: N803 -- scikit-learn's names
        raise TypeError("Labelled wraps a fitted model; fit the model itself")

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        return self.classes_[np.asarray(self.model.predict(X)).astype(int)]

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        return np.asarray(self.model.predict_proba(X))


class ClassThreshold(ClassifierMixin, BaseEstimator):
    """A fitted K-class ``model`` whose predict is :func:`decide` with ``of_class`` at ``threshold``."""

    def __init__(self, model: Any = None, of_class: int = 0, threshold: float = 0.5) -> None:
        self.model = model
        self.of_class = of_class
        self.threshold = threshold

    @property
    def classes_(self) -> np.ndarray:
        return np.asarray(self.model.classes_)

    def fit(self, X: Any, y: Any) -> ClassThreshold:  # noqa: N803
        raise TypeError("ClassThreshold wraps a fitted model; fit the model itself")

    def predict(self, X: Any) -> np.ndarray:  # noqa: N803
        return self.classes_[decide(self.model.predict_proba(X), self.of_class, self.threshold)]

    def predict_proba(self, X: Any) -> np.ndarray:  # noqa: N803
        return np.asarray(self.model.predict_proba(X))
