"""What the MLflow runs table shows of a sweep: the parent's name, its params, its note, a trial's params.

Pure functions of the config and the records (no MLflow here): ``sweep.py`` hands their output to the tracker.
The runs table of an experiment that holds many sweeps should tell them apart without opening a run, show
only the settings that mean something for the backend that ran, and let one column sort parents and
children alike.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from lrsweep.config import Config, CVConfig, SearchConfig, SplitConfig

__all__ = [
    "SWEEP_PARAMS",
    "run_name",
    "short_id",
    "logged_config",
    "trial_params",
    "parent_note",
    "model_name",
    "dataset_inputs",
    "flatten",
]

# Config sections that are plumbing (how lrsweep runs), not settings of the sweep's result
_PLUMBING = ("progress", "debug", "tracking", "launch", "plan")
PER_CALL = ("n_trials", "n_jobs")
# what trial_params adds to every trial from its sweep's config
SWEEP_PARAMS = ("seed", "search.name", "threshold.strategy", "cv.folds")


def short_id(study: str) -> str:
    """The study's short id: the 8-hex digest of a derived name, or the name a user gave."""
    tail = study.rsplit("-", 1)[-1]
    if len(tail) == 8 and all(c in "0123456789abcdef" for c in tail):
        return tail
    return study


def _threshold(cfg: Config) -> str:
    knobs = {f.name: getattr(cfg.threshold, f.name) for f in dataclasses.fields(cfg.threshold) if f.name != "strategy"}
    if knobs.get("of_class") is None:  # a multi-class target's class of interest, shown when set
        knobs.pop("of_class", None)
    inside = ",".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in knobs.items())
    return f"{cfg.threshold.strategy}({inside})" if inside else cfg.threshold.strategy


def _differences(cfg: Config) -> list[str]:
    """The search-defining settings away from their defaults, shortly (cv, objective, sampler, split)."""
    out = []
    if cfg.cv.folds != CVConfig().folds:
        out.append(f"cv={cfg.cv.folds}")
    if cfg.objective.metric != "roc_auc":
        out.append(f"objective={cfg.objective.metric}")
    if cfg.search.sampler != SearchConfig().sampler:
        out.append(f"sampler={cfg.search.sampler}")
    split = SplitConfig()
    if (cfg.split.val_size, cfg.split.test_size) != (split.val_size, split.test_size):
        out.append(f"split={cfg.split.val_size:g}/{cfg.split.test_size:g}")
    if cfg.backend.name == "spark":
        out.append(f"cluster={cfg.cluster.name}")
    if cfg.dataset.rows is not None:
        out.append(f"rows={cfg.dataset.rows}")
    if cfg.search.multiclass != SearchConfig().multiclass:
        out.append(f"multiclass={cfg.search.multiclass}")
    return out


def run_name(cfg: Config, study: str) -> str:
    """``default f1 cv=5 seed=42 #3f9a2c1d sklearn telco_churn``: search, threshold strategy, what differs from
    the defaults, seed, the study's short id, backend and dataset. What tells sweeps apart comes first: the UI's
    Run Name column shows some 20 characters (and the Dataset column names the data)."""
    parts = [cfg.search.name, _threshold(cfg), *_differences(cfg), f"seed={cfg.seed}", f"#{short_id(study)}"]
    return " ".join([*parts, cfg.backend.name, cfg.dataset.label])


def model_name(study: str) -> str:
    """The logged model's name: the study's (MLflow model names allow letters, digits, '-', '_' and '.')."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in study)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def logged_config(config: dict[str, Any], *, backend: str, cluster: str) -> dict[str, Any]:
    """The parent's params from the (redacted) config as a dict: the settings of this backend only, no CLI
    plumbing, no unset values. ``cluster.*`` only for Spark; the price table only for a priced cluster
    (its date and source: the prices themselves are in config.yaml)."""
    kept = {k: v for k, v in config.items() if k not in _PLUMBING}
    if backend != "spark":
        kept.pop("cluster", None)
    prices = kept.pop("prices", {}) or {}
    if cluster == "emr":
        kept["prices"] = {k: prices.get(k) for k in ("name", "date", "source", "currency")}
    study = kept.get("study") or {}
    kept["study"] = {k: v for k, v in study.items() if k in ("name", "resume")}
    # how much a call asks (the study's size, threads, budget) changes from call to call: each call's
    # record on the parent run (lrsweep.invocation.NNN) holds it, MLflow params being write-once
    kept["search"] = {k: v for k, v in (kept.get("search") or {}).items() if k not in PER_CALL}
    kept.pop("budget", None)
    return {k: v for k, v in flatten(kept).items() if v is not None}


def trial_params(cfg: Config, shown: dict[str, Any]) -> dict[str, Any]:
    """A trial's params: the configuration (``shown``), what defines its sweep (seed, search, threshold
    strategy, cv) under the parent's names, and ``log10_C`` for a chart's axis (no C when there is no
    penalty: C=inf does not plot)."""
    out = dict(shown)
    C = out.get("C")
    if isinstance(C, float):
        if math.isinf(C):
            out.pop("C")
        elif C > 0:
            out["log10_C"] = round(math.log10(C), 6)
    values = (cfg.seed, cfg.search.name, cfg.threshold.strategy, cfg.cv.folds)
    return out | dict(zip(SWEEP_PARAMS, values, strict=True))


def parent_note(
    *, study: str, n_finished: int, objective: str, best_value: float, best_label: str, threshold: float,
    strategy: str, test: dict[str, float], of_class: str | None = None,
) -> str:  # fmt: skip
    """The parent's description (MLflow's run note, Markdown) in one paragraph; the tracker fills in
    ``{best_run}`` (a link to the best trial's run) and ``{calls}`` (how many lrsweep calls ran the study)."""
    shown = ", ".join(f"{k} {test[k]:.4f}" for k in ("roc_auc", "pr_auc", "f1", "recall", "precision") if k in test)
    if math.isnan(threshold):  # a multi-class target decided by the most probable class
        decision = "each row given its most probable class (macro averages)"
    else:
        on = f" on class {of_class}" if of_class is not None else ""
        decision = f"at the threshold {threshold:.4f}{on} (chosen on validation, {strategy})"
    return (
        f"Study `{study}`: {n_finished} finished trials over {{calls}} call(s) of lrsweep. Best: {{best_run}} "
        f"({best_label}) with validation {objective} {best_value:.4f}. Refitted on train+validation and scored "
        f"once on test {decision}: {shown}."
    )


def dataset_inputs(cfg: Config, data: Any) -> list[dict[str, str]]:
    """The MLflow dataset inputs of a sweep (``data``: its DataSummary): one per part (train, validation,
    test), named ``<dataset>/<part>``, with the data fingerprint as digest, the source, the schema and the
    part's rows (MLflow keeps one input per dataset and run, so each part is its own dataset)."""
    from lrsweep.redact import redact_uri

    fp = data.fingerprint
    kind = cfg.dataset.kind
    if kind == "file" and cfg.dataset.path:
        location = redact_uri(cfg.dataset.path)
        source_type = location.split("://", 1)[0] if "://" in location else "local"
    elif kind == "generated":
        location = f"lrsweep generator {cfg.dataset.generator} rows={cfg.dataset.rows} seed={cfg.dataset.seed}"
        source_type = "code"
    else:
        location = f"lrsweep bundled dataset {cfg.dataset.name}"
        source_type = "code"
    columns = [{"name": c, "type": "double"} for c in data.features.get("numeric", [])]
    columns += [
        {"name": c, "type": "string"} for c in data.features.get("categorical", []) + data.features.get("hashed", [])
    ]
    columns.append({"name": str(cfg.dataset.target), "type": "string"})
    schema = json.dumps({"mlflow_colspec": columns})
    out = []
    for part, context in (("train", "train"), ("val", "validation"), ("test", "test")):
        profile = {
            "num_rows": data.rows.get(part),
            "table_rows": fp.get("rows"),
            "positive_rate": fp.get("positive_rate"),
        }
        out.append(
            {
                "name": f"{cfg.dataset.label}/{context}",
                "digest": str(fp.get("sha256", ""))[:16],
                "source_type": source_type,
                "source": json.dumps({"uri": location}),
                "schema": schema,
                "profile": json.dumps(profile),
                "context": context,
            }
        )
    return out
