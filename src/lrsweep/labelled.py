"""A fitted classifier that answers in the dataset's own labels.

Models are fitted on a 0/1 target (1 = ``dataset.positive``). The logged scikit-learn model wraps the fitted
one so that ``predict`` returns the labels of the data (``"Yes"`` / ``"No"``), not 0/1, and ``predict_proba``
keeps its columns (the positive label's probability is column 1, as ``classes_`` says). Pickled by value into
the model (see tracking._lrsweep_code_by_value), so it loads where lrsweep is not installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = ["Labelled"]


class Labelled(ClassifierMixin, BaseEstimator):
    """``model`` (fitted on 0/1) with ``labels = (negative, positive)``: predict maps 0/1 to them."""

    def __init__(self, model: Any = None, labels: tuple[str, str] = ("0", "1")) -> None:
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
