"""Backends behind one contract (``base.Backend``); choosing one is the ``backend`` config group.

Adding a backend: a module here with its class (and, if it has settings of its own, a ``BackendConfig``
subclass), one line in :data:`BACKENDS`, a ``conf/backend/<name>.yaml``, and the conformance suite passing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lrsweep.backends.base import Backend, BackendConfig, Capabilities, Evaluation, FitInfo, Refit
from lrsweep.errors import LrsweepError

if TYPE_CHECKING:
    from lrsweep.config import Config

__all__ = [
    "Backend",
    "BackendConfig",
    "Capabilities",
    "Evaluation",
    "FitInfo",
    "Refit",
    "BACKENDS",
    "backend_class",
    "capabilities_of",
    "make_backend",
    "schemas",
]

# name -> (module, backend class, settings schema); imported on use, so `import lrsweep` needs neither
# pyspark nor Java (the Spark module itself imports pyspark only inside functions)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "sklearn": ("lrsweep.backends.sklearn", "SklearnBackend", "lrsweep.backends.base:BackendConfig"),
    "spark": ("lrsweep.backends.spark", "SparkBackend", "lrsweep.backends.spark:SparkConfig"),
}


def _entry(name: str) -> tuple[str, str, str]:
    if name not in BACKENDS:
        raise LrsweepError(f"backend {name!r} is not known", f"use backend={' or backend='.join(BACKENDS)}")
    return BACKENDS[name]


def backend_class(name: str) -> Any:
    module, cls, _ = _entry(name)
    return getattr(importlib.import_module(module), cls)


def capabilities_of(name: str) -> Capabilities:
    """What backend ``name`` can do, without making one (no Spark session, no pyspark needed)."""
    caps: Capabilities = backend_class(name).capabilities
    return caps


def schemas() -> dict[str, type[BackendConfig]]:
    """Option name -> its settings schema (registered by the CLI for the ``backend`` group)."""
    out = {}
    for name, (_, _, schema) in BACKENDS.items():
        module, attr = schema.split(":")
        out[name] = getattr(importlib.import_module(module), attr)
    return out


def make_backend(cfg: Config) -> Backend:
    """The backend ``cfg.backend`` names, with its settings, the cluster and the seed."""
    cls = backend_class(cfg.backend.name)
    backend: Backend = cls(cfg.backend, cluster=cfg.cluster, seed=cfg.seed, app_name=f"lrsweep {cfg.experiment_name}")
    return backend
