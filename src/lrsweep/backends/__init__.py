"""Backends behind one small protocol (``base.Backend``); choosing one is the ``backend`` config group."""

from __future__ import annotations

import importlib

from lrsweep.backends.base import Backend, Evaluation, FitInfo, Prepared, Refit
from lrsweep.config import Config
from lrsweep.errors import LrsweepError

__all__ = ["Backend", "Evaluation", "FitInfo", "Prepared", "Refit", "make_backend", "BACKENDS"]

# name -> "module:Class"; imported on use so that `import lrsweep` needs neither pyspark nor Java
BACKENDS = {
    "sklearn": "lrsweep.backends.sklearn:SklearnBackend",
    "spark": "lrsweep.backends.spark:SparkBackend",
}


def make_backend(cfg: Config) -> Backend:
    target = BACKENDS.get(cfg.backend.name)
    if target is None:
        raise LrsweepError(f"backend {cfg.backend.name!r} is not known", f"use backend={' or backend='.join(BACKENDS)}")
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(cfg)
