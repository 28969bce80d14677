"""lrsweep: experiment-tracked hyperparameter sweeps of logistic regression.

``import lrsweep`` stays light: it needs neither pyspark nor Java, nor MLflow until a sweep runs.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
