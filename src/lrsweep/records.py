"""The records a sweep produces: one per trial, and the sweep's result.

A :class:`TrialRecord` is kept in the Optuna journal (as the trial's ``lrsweep_record`` user attribute, a
plain dict) and sent to the tracker; MLflow can always be rebuilt from the journal. :class:`SweepResult`
is what ``run_sweep`` returns, what the summary prints and what ``summary.json`` holds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrialRecord", "SweepResult", "Step"]

# (metric name, value, step): one fold's score, reported to Optuna and logged as a metric step
Step = tuple[str, float, int]


@dataclass
class TrialRecord:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL
    run_name: str  # "trial-007 C=0.12 l1_ratio=0.50 saga"
    params: dict[str, Any]  # logged: the shared vocabulary, then the backend's own names ("spark.regParam")
    model_params: dict[str, Any] | None  # the ModelParams fields, to rebuild the configuration
    metrics: dict[str, float]
    steps: list[Step] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    start_ms: int = 0
    end_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The journal form (JSON-able)."""
        out = dataclasses.asdict(self)
        out["steps"] = [list(s) for s in self.steps]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrialRecord:
        """A record read back from the journal (also those written before the record had every field)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["steps"] = [(str(n), float(v), int(s)) for n, v, s in d.get("steps") or []]
        return cls(**kw)


@dataclass
class SweepResult:
    study_name: str
    storage: str  # the journal's path (or the redacted storage URL)
    backend: str
    dataset: str
    experiment: str
    objective: str
    n_finished: int  # finished trials in the study (this run and earlier ones)
    n_new: int  # trials run by this invocation
    states: dict[str, int]
    best_trial: int
    best_params: dict[str, Any]
    best_value: float
    threshold_strategy: str
    threshold: float
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    data: dict[str, Any]  # the data fingerprint
    wall_seconds: float = 0.0
    # generated tables: the true model on the same test rows (roc_auc, pr_auc, log_loss), the best achievable
    bayes_metrics: dict[str, float] | None = None
    tracking_uri: str | None = None  # redacted
    ui_command: str = ""
    parent_run_id: str | None = None
    model_uri: str | None = None
    trial_seconds: list[float] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    stop_reason: str | None = None  # why the sweep stopped starting trials before search.n_trials (a budget)
    spend_usd: float | None = None  # what the cluster cost (priced clusters)
    experiment_id: str | None = None
    ui_url: str | None = None  # the MLflow UI's address (after ui_command, for a local store)
    # successive halving: how many finished trials stopped at each rung ("1/9", "1/3", "all": their share of rows)
    rungs: dict[str, int] = field(default_factory=dict)
    rung_resource: str = "rows"  # what the rungs are shares of: rows or iterations
    # a multi-class target: its class labels (codes 0..K-1), the class a threshold applies to (None: argmax), and
    # the K x K test confusion matrix (rows: true class, columns: predicted)
    classes: list[str] = field(default_factory=list)
    of_class: str | None = None
    test_confusion: list[list[int]] = field(default_factory=list)
    nothing_to_do: str = ""  # set when the call had nothing to run or log: the line saying so and what to do

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
