"""The plan of a Spark sweep: how long it will take (with a range), what it will cost, what a budget affords.

:func:`make_plan` calibrates the runtime model on this machine (or reuses a cached calibration), corrects it
with the history of finished sweeps on the same cluster type, predicts the sweep on the cluster's cores,
adds the cluster's start-up and prices the whole with the billing rules. :meth:`Plan.text` is what
``lrsweep plan`` prints; :meth:`Plan.record` is its MLflow run.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from lrsweep.clusters import EmrCluster
from lrsweep.config import Config, study_name, validate
from lrsweep.errors import LrsweepError
from lrsweep.planning.calibrate import Calibration, Estimate
from lrsweep.planning.cost import bill, cluster_type, executor_cores, node_groups, startup_seconds
from lrsweep.planning.history import History
from lrsweep.planning.predict import SweepEstimate
from lrsweep.redact import redact_uri

__all__ = ["Plan", "make_plan", "plan_table", "check_budget", "duration"]

log = logging.getLogger("lrsweep")


def _unit(seconds: float) -> tuple[float, str]:
    if seconds < 90:
        return 1.0, "s"
    if seconds < 90 * 60:
        return 60.0, "min"
    return 3600.0, "h"


def duration(seconds: float) -> str:
    """42 s, 12.5 min, 3.1 h."""
    k, unit = _unit(seconds)
    return f"{seconds / k:.0f} {unit}" if unit == "s" else f"{seconds / k:.1f} {unit}"


def _span(e: Estimate, kind: str = "time") -> str:
    """``mid (low - high unit)`` in one unit: "6.3 min (5.1 - 7.7 min)", "0.33 USD (0.30 - 0.35 USD)"."""
    if kind == "usd":
        d = 2 if e.mid >= 0.1 else 4
        return f"{e.mid:.{d}f} USD ({e.low:.{d}f} - {e.high:.{d}f} USD)"
    k, unit = _unit(e.mid)
    d = 0 if unit == "s" else 1
    return f"{e.mid / k:.{d}f} {unit} ({e.low / k:.{d}f} - {e.high / k:.{d}f} {unit})"


@dataclass
class Plan:
    cluster: str  # described for a person
    cluster_type: str
    cores: int
    speed: float  # the per-core speed used (1.0 when history replaced the assumption)
    rows: int
    n_trials: int
    sweep: SweepEstimate  # on the cluster, seconds
    startup_seconds: float
    total: Estimate  # start-up + sweep, seconds
    history: History | None
    evidence: list[str]
    study: str
    dataset: str
    hourly_usd: float | None = None
    usd: Estimate | None = None
    trial_usd: Estimate | None = None  # what one more trial adds
    budget_usd: float | None = None
    budget_minutes: float | None = None
    affordable: int | None = None  # trials the budget affords at the central estimate
    affordable_high: int | None = None  # ... if every step takes its high estimate
    prices: str | None = None
    assumption: str = ""
    run_id: str | None = None  # its MLflow run
    calibration: dict[str, Any] = field(default_factory=dict)
    probe: dict[str, Any] | None = None  # the cluster probe's measurements (lrsweep.planning.probe)

    # -- what a budget affords -----------------------------------------------------------------------
    def _trials_within(self, seconds: float, which: str) -> int:
        fixed = getattr(self.sweep.setup, which) + getattr(self.sweep.refit, which)
        per = getattr(self.sweep.trial, which)
        return max(0, math.floor((seconds - self.startup_seconds - fixed) / per)) if per > 0 else 0

    def _budget_seconds(self) -> float | None:
        limits = []
        if self.budget_usd is not None and self.hourly_usd:
            limits.append(self.budget_usd / self.hourly_usd * 3600.0)
        if self.budget_minutes is not None:
            limits.append(self.budget_minutes * 60.0)
        return min(limits) if limits else None

    def afford(self) -> None:
        seconds = self._budget_seconds()
        if seconds is not None:
            self.affordable = self._trials_within(seconds, "mid")
            self.affordable_high = self._trials_within(seconds, "high")

    # -- for people ------------------------------------------------------------------------------------
    def text(self) -> str:
        s = self.sweep
        lines = [
            f"lrsweep plan: {self.n_trials} Spark trials on {self.dataset} ({self.rows:,} rows), {self.cluster}",
            f"  {'per trial':<13} {_span(s.trial)}, mean over {s.samples} draws of the search space",
            f"  {'setup':<13} {_span(s.setup)}, once per sweep: session, data, preprocessing, cache",
            f"  {'refit + test':<13} {_span(s.refit)}",
            f"  {'sweep':<13} {_span(s.total)}",
        ]
        if self.startup_seconds:
            lines.append(
                f"  {'+ start-up':<13} {_span(self.total)}, with cluster.startup_minutes="
                f"{self.startup_seconds / 60:g} (billed)"
            )
        if self.usd is not None and self.hourly_usd is not None:
            lines.append(
                f"  {'cost':<13} {_span(self.usd, 'usd')} at {self.hourly_usd:.3f} USD/h for the whole cluster "
                "(EC2 + EMR surcharge per instance-hour, primary node included, per second, 1 min minimum)"
            )
            if self.trial_usd is not None:
                lines.append(f"  {'':<13} each trial adds {_span(self.trial_usd, 'usd')}")
        else:
            lines.append(f"  {'cost':<13} not priced: time only on cluster={self.cluster_type}")
        if self.affordable is not None:
            limit = " and ".join(
                x for x in (
                    f"budget.max_usd={self.budget_usd:g}" if self.budget_usd is not None else "",
                    f"budget.max_minutes={self.budget_minutes:g}" if self.budget_minutes is not None else "",
                ) if x
            )  # fmt: skip
            verdict = "within" if self.affordable >= self.n_trials else "OVER"
            lines.append(
                f"  {'budget':<13} {limit} affords {self.affordable} trials ({self.affordable_high} if every step "
                f"takes its high estimate): {self.n_trials} planned, {verdict} budget"
            )
        lines.append(f"  {'assumption':<13} {self.assumption}")
        for i, e in enumerate(self.evidence):
            lines.append(f"  {'evidence' if i == 0 else '':<13} {e}")
        if self.prices:
            lines.append(f"  {'prices':<13} {self.prices}")
        if self.run_id:
            lines.append(f"  {'MLflow':<13} plan run {self.run_id} (the sweep's parent run will link to it)")
        return "\n".join(lines)

    def row(self) -> dict[str, str]:
        """One line of the comparison table a multirun prints."""
        return {
            "cluster": self.cluster,
            "cores": str(self.cores),
            "per trial": _span(self.sweep.trial),
            "total": _span(self.total),
            "cost": _span(self.usd, "usd") if self.usd is not None else "-",
            "affords": "-" if self.affordable is None else str(self.affordable),
        }

    def as_dict(self) -> dict[str, Any]:
        def est(e: Estimate | None) -> dict[str, float] | None:
            return None if e is None else {"low": e.low, "mid": e.mid, "high": e.high}

        s = self.sweep
        return {
            "cluster": self.cluster,
            "cluster_type": self.cluster_type,
            "cores": self.cores,
            "speed": self.speed,
            "rows": self.rows,
            "n_trials": self.n_trials,
            "seconds": {
                "trial": est(s.trial),
                "setup": est(s.setup),
                "refit": est(s.refit),
                "trials": est(s.trials),
                "sweep": est(s.total),
                "startup": self.startup_seconds,
                "total": est(self.total),
            },  # fmt: skip
            "usd": est(self.usd),
            "trial_usd": est(self.trial_usd),
            "hourly_usd": self.hourly_usd,
            "budget": {"max_usd": self.budget_usd, "max_minutes": self.budget_minutes},
            "affordable_trials": self.affordable,
            "affordable_trials_high": self.affordable_high,
            "assumption": self.assumption,
            "evidence": self.evidence,
            "history": self.history.as_dict() if self.history else None,
            "probe": self.probe,
            "prices": self.prices,
            "study": self.study,
        }

    def record(self, cfg: Config) -> Any:
        """The plan as an MLflow run (lrsweep.tracking.PlanRecord)."""
        from lrsweep.tracking import PlanRecord

        s = self.sweep
        metrics: dict[str, float] = {}
        for name, e in (("trial", s.trial), ("setup", s.setup), ("sweep", s.total), ("total", self.total)):
            metrics |= {f"pred_{name}_seconds": e.mid, f"pred_{name}_seconds_low": e.low}
            metrics[f"pred_{name}_seconds_high"] = e.high
        if self.usd is not None:
            metrics |= {"pred_usd": self.usd.mid, "pred_usd_low": self.usd.low, "pred_usd_high": self.usd.high}
        if self.affordable is not None:
            metrics["affordable_trials"] = float(self.affordable)
        params: dict[str, Any] = {
            "cluster": self.cluster, "cluster_type": self.cluster_type, "cores": self.cores,
            "core_speed_used": self.speed, "rows": self.rows, "search.n_trials": self.n_trials,
            "backend": cfg.backend.name, "dataset": cfg.dataset.label,
        }  # fmt: skip
        if isinstance(cfg.cluster, EmrCluster):
            c = cfg.cluster
            params |= {
                "cluster.instance_type": c.instance_type, "cluster.core_nodes": c.core_nodes,
                "cluster.task_nodes": c.task_nodes, "cluster.region": c.region,
                "prices": f"{cfg.prices.name} {cfg.prices.date}",
            }  # fmt: skip
        if self.budget_usd is not None:
            params["budget.max_usd"] = self.budget_usd
        if self.budget_minutes is not None:
            params["budget.max_minutes"] = self.budget_minutes
        return PlanRecord(
            experiment=cfg.experiment_name,
            study=self.study,
            run_name=f"plan {self.cluster_type} x{self.cores} cores, {self.n_trials} trials",
            params=params,
            metrics=metrics,
            tags={"lrsweep.cluster_type": self.cluster_type, "lrsweep.dataset": cfg.dataset.label},
            texts={
                "plan.txt": self.text(),
                "plan.json": json.dumps(self.as_dict(), indent=2),
                "calibration.json": json.dumps(self.calibration, indent=2, default=str),
            },
        )


def _describe(cfg: Config, cores: int) -> str:
    c = cfg.cluster
    if isinstance(c, EmrCluster):
        groups = node_groups(c, cfg.prices)
        parts = [f"{g.count} {g.role} {g.instance_type}" for g in groups]
        where = f"existing cluster {c.cluster_id}" if c.cluster_id else "transient"
        return f"EMR {c.region} ({where}): {' + '.join(parts)}, {cores} executor cores"
    return f"{c.name} {c.master} ({cores} cores)"


def _scale(e: Estimate, k: float, add: float = 0.0) -> Estimate:
    return Estimate(low=e.low * k + add, mid=e.mid * k + add, high=e.high * k + add)


def _history(cfg: Config, cal: Calibration, kind: str) -> History | None:
    from lrsweep.planning.history import learn
    from lrsweep.tracking import past_sweeps

    if not (cfg.plan.history and cfg.tracking.enabled):
        return None
    past, setups = [], []
    try:
        for sha in _data_shas(cfg):
            trials, done = past_sweeps(cfg.tracking.uri, cluster_type=kind, data_sha256=sha)
            past += trials
            setups += done
    except Exception as exc:  # history refines a plan; an unreachable store must not stop it
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        log.warning("history not read from MLflow (%s): %s", tracking_line(cfg), redact_uri(first))
        return History(
            kind, 0, 0, 1.0, 0.0, used=False, note=f"not read: MLflow at {tracking_line(cfg)} did not answer"
        )
    return learn(cal, past, kind, setups)


def _data_shas(cfg: Config) -> list[str]:
    """The data's fingerprints as a sweep records them (whole-file SHA-256; Parquet read by Spark: the footer's)."""
    from lrsweep.data import uri
    from lrsweep.data.source import resolve_source

    src = resolve_source(cfg.dataset)
    shas = [uri.sha256(src.location)]
    if src.format == "parquet":
        shas.append(uri.footer_sha256(src.location))
    return list(dict.fromkeys(shas))


def make_plan(cfg: Config, *, calibration: Calibration | None = None) -> Plan:
    """Calibrate (or reuse), correct with history, predict, price. Raises LrsweepError for what cannot be planned."""
    from lrsweep.planning.calibrate import calibrate
    from lrsweep.planning.predict import predict_sweep
    from lrsweep.planning.probe import probe_cluster

    if cfg.backend.name != "spark":
        raise LrsweepError(
            f"lrsweep plan predicts Spark sweeps; backend={cfg.backend.name} runs on this machine",
            "add backend=spark (and cluster=emr, standalone or local)",
        )
    validate(cfg)
    c = cfg.cluster
    emr = isinstance(c, EmrCluster)
    if isinstance(c, EmrCluster):
        node_groups(c, cfg.prices)  # an unknown instance type or region fails before any calibration
    cores = executor_cores(c, cfg.prices)
    if cores is None:
        raise LrsweepError(
            f"cluster={c.name} does not say how many cores its executors have", "add cluster.cores=N (in all)"
        )
    cal = calibration or calibrate(cfg, log=log)
    kind = cluster_type(c)
    hist = _history(cfg, cal, kind)
    assumed = c.core_speed if isinstance(c, EmrCluster) else 1.0
    setup_correction = 1.0
    probe = None if (hist is not None and hist.used) else probe_cluster(cfg, cal, cores, say=log)
    if hist is not None and hist.used:
        speed, correction, spread = 1.0, hist.ratio, hist.spread
        setup_correction = hist.setup_ratio  # 1.0 when no sweep recorded its setup
        assumption = (
            f"per-core speed taken from history ({hist.trials} measured trials on {kind}), "
            f"not cluster.core_speed={assumed:g}"
        )
    elif probe is not None:
        speed, correction, spread = 1.0, probe.trial_ratio, probe.spread
        setup_correction = probe.setup_ratio
        assumption = (
            f"one core of {c.name} works as fast as one core here (calibrated on this machine), "
            "plus the cluster's own overheads per Spark job and per setup (measured by a probe on it)"
        )
    else:
        speed, correction, spread = assumed, 1.0, 0.0
        what = f"one {c.instance_type} vCPU" if isinstance(c, EmrCluster) else f"one core of {c.name}"
        assumption = f"{what} = {speed:g} x one core of this machine (cluster.core_speed)"
        if not emr:
            assumption = f"{what} works as fast as one core here (calibrated on this machine)"
    est = predict_sweep(
        cfg, cal, rows=cal.rows, cores=cores, speed=speed, correction=correction, correction_spread=spread,
        setup_correction=setup_correction,
    )  # fmt: skip
    startup = startup_seconds(c)
    evidence = list(cal.evidence())
    if cfg.search.fidelity == "halving":
        from lrsweep.planning.predict import rung_shares

        unit = "rows" if cfg.search.rung_resource == "rows" else "iterations"
        shares = ", ".join(
            f"{f:.3g} of the {unit} by {s:.3g} of the trials"
            for f, s in zip(cfg.search.fractions(), rung_shares(cfg), strict=True)
        )
        evidence.append(f"successive halving (search.eta={cfg.search.eta}): a trial's rungs fit {shares} (expected)")
    if probe is not None:
        evidence.append(probe.line())
    if hist is not None:
        evidence.append(hist.line())
    plan = Plan(
        cluster=_describe(cfg, cores),
        cluster_type=kind,
        cores=cores,
        speed=speed,
        rows=cal.rows,
        n_trials=cfg.search.n_trials,
        sweep=est,
        startup_seconds=startup,
        total=_scale(est.total, 1.0, startup),
        history=hist,
        evidence=evidence,
        study=study_name(cfg),
        dataset=cfg.dataset.label,
        budget_usd=cfg.budget.max_usd,
        budget_minutes=cfg.budget.max_minutes,
        assumption=assumption,
        calibration=cal.to_dict(),
        probe=probe.to_dict() if probe is not None else None,
    )
    if isinstance(c, EmrCluster):
        plan.usd = Estimate(*(bill(c, cfg.prices, getattr(est.total, k)).usd for k in ("low", "mid", "high")))
        plan.hourly_usd = bill(c, cfg.prices, 0).hourly
        plan.trial_usd = _scale(est.trial, plan.hourly_usd / 3600.0)
        plan.prices = cfg.prices.described()
    plan.afford()
    if plan.affordable == 0:
        one = plan.startup_seconds + est.setup.mid + est.refit.mid + est.trial.mid
        cost = f"{bill(c, cfg.prices, one - startup).usd:.2f} USD, " if isinstance(c, EmrCluster) else ""
        raise LrsweepError(
            f"the budget affords no trial: start-up, setup, one trial and the refit take {cost}{duration(one)}",
            "raise budget.max_usd / budget.max_minutes, or plan a smaller cluster",
        )
    return plan


def check_budget(plan: Plan) -> None:
    """Refuse (one line) a plan whose central estimate passes its budget: nothing is launched."""
    if plan.affordable is None or plan.affordable >= plan.n_trials:
        return
    over = []
    if plan.budget_usd is not None and plan.usd is not None and plan.usd.mid > plan.budget_usd:
        over.append(f"its cost {_span(plan.usd, 'usd')} passes budget.max_usd={plan.budget_usd:g}")
    if plan.budget_minutes is not None and plan.total.mid > plan.budget_minutes * 60:
        over.append(f"its time {_span(plan.total)} passes budget.max_minutes={plan.budget_minutes:g}")
    if not over:
        over.append(f"the budget affords {plan.affordable} of them")
    raise LrsweepError(
        f"not launched: {plan.n_trials} trials on {plan.cluster_type} x{plan.cores} cores: {'; '.join(over)}",
        f"the budget affords {plan.affordable}: use search.n_trials={plan.affordable}, or raise the budget",
    )


def plan_table(plans: list[Plan]) -> str:
    """Several plans (a multirun over cluster sizes or types) side by side: time against money."""
    rows = [p.row() for p in plans]
    heads = list(rows[0])
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in heads}
    out = ["", "  ".join(h.ljust(widths[h]) for h in heads), "  ".join("-" * widths[h] for h in heads)]
    out += ["  ".join(r[h].ljust(widths[h]) for h in heads) for r in rows]
    return "\n".join(out)


def tracking_line(cfg: Config) -> str:
    return redact_uri(cfg.tracking.uri or "sqlite:///mlflow.db")
