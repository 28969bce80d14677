"""A reachable cluster's own overheads, measured on it before a plan: the cluster probe.

A calibration measures this machine in local mode, where Spark's executors live in the driver's JVM. A standalone
cluster runs them in JVMs of their own: every Spark job pays a round trip to them (task launch, results back),
and every sweep's setup waits for executors to start. Local mode never shows either, and both matter on small
and medium tables, where a trial is mostly fixed cost per job: measured on telco churn, a standalone cluster of
two 1-core workers on this very machine took 2.3x local[2]'s setup and 1.4x its trial times.

When the cluster can be reached from here and costs nothing to use while idle (``cluster=standalone``; an EMR
cluster does not exist before `lrsweep launch`), the plan runs one short probe on it, in a child process as the
calibration does: a session on the cluster's master, the calibration's throwaway small sample prepared cold (the
setup a sweep pays), then the calibration's largest sample (at most plan.calibration.max_fraction of the rows)
and a few short fits of it at two lengths. The calibrated model predicts the same runs (same rows, cores, Spark jobs);
what the cluster took beyond the prediction, per fit and per Spark job (non-negative least squares), and beyond
the predicted cold setup, is added to the full-size prediction as the cluster's overhead. The plan applies it as
ratios on the trials (and refit) and on the setup, and says so in its evidence.

The per-row work is left to the calibration (the cluster's cores are assumed as fast as this machine's, the
stated assumption of every non-EMR plan): a faster cluster shows as no overhead, never as a speed-up. History
(full-size sweeps finished on the same cluster type) is better evidence and replaces the probe when there is
enough of it. Probes are cached beside the calibration, per calibration, master and cores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrsweep.clusters import StandaloneCluster

if TYPE_CHECKING:
    from lrsweep.config import Config
    from lrsweep.planning.calibrate import Calibration, FitRun, SetupRun

__all__ = ["ClusterProbe", "probe_cluster", "overheads", "PROBE_LENGTHS"]

log = logging.getLogger("lrsweep")

SCHEMA = 1
PROBE_LENGTHS = (4, 16)  # iterations of the probe's fits: two lengths tell a fit's fixed extra from a job's


@dataclass
class ClusterProbe:
    """What the probe measured on the cluster and the corrections it gives."""

    master: str
    cores: int
    rows: int  # rows of the probed sample
    fits: int
    fit_extra: float  # seconds a fit took beyond the model's prediction, besides its jobs'
    job_extra: float  # seconds each Spark job took beyond the model's prediction
    setup_extra: float  # seconds the cold setup took beyond the model's prediction
    trial_ratio: float = 1.0  # a full-size trial with the overheads over one without
    setup_ratio: float = 1.0
    spread: float = 0.0  # relative scatter of the fits' measured / predicted
    seconds: float = 0.0  # wall time of the probe
    cache_hit: bool = False
    fit_runs: list[dict[str, Any]] = field(default_factory=list)
    setup_runs: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        where = "cached" if self.cache_hit else f"{self.seconds:.0f} s"
        return (
            f"cluster probe on {self.master} ({self.cores} cores, {where}): {self.fits} fits of {self.rows:,} rows "
            f"took {self.job_extra * 1000:.0f} ms per Spark job and {self.fit_extra:.2f} s per fit beyond this "
            f"machine's model, its cold setup {self.setup_extra:+.1f} s; applied as trials x{self.trial_ratio:.2f}, "
            f"setup x{self.setup_ratio:.2f}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **{k: v for k, v in dataclasses.asdict(self).items() if k != "cache_hit"}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClusterProbe:
        if d.get("schema") != SCHEMA:
            raise ValueError(f"probe schema {d.get('schema')} is not {SCHEMA}")
        return cls(**{k: v for k, v in d.items() if k != "schema"})


def overheads(cal: Calibration, fits: list[FitRun], setups: list[SetupRun]) -> tuple[float, float, float, float]:
    """(fit_extra, job_extra, setup_extra, spread) of runs measured on a cluster against ``cal``'s predictions
    for the same runs (measured - predicted = fit_extra + job_extra * jobs), robust to one disturbed fit: per
    configuration fitted at two lengths, the excess's growth per Spark job; their median is ``job_extra``; the
    median of what is left of each fit's excess is ``fit_extra`` (both at least 0). ``setup_extra``: the cold
    setups' median excess (at least 0). ``spread``: the log-scale scatter of the fits around the corrected
    prediction (1.4826 x the median absolute log ratio)."""
    from lrsweep.planning.calibrate import _fit_time, _setup_seconds
    from lrsweep.planning.ernest import Ernest

    scoring = Ernest.from_dict(cal.eval_model)
    warm = [r for r in fits if not r.cold and not r.warmup]
    if not warm:
        raise ValueError("no warm fits measured on the cluster")
    predicted = [
        _fit_time(cal.fit_theta, r.n_fit, r.machines, max(r.jobs, 1), models=r.models, width=r.width)
        + scoring.predict(r.n_held, r.machines)
        for r in warm
    ]
    excess = [r.fit_seconds + r.eval_seconds - p for r, p in zip(warm, predicted, strict=True)]
    by_config: dict[tuple[float, float, str], list[tuple[int, float]]] = {}
    for r, e in zip(warm, excess, strict=True):
        by_config.setdefault((r.C, r.l1_ratio, r.class_weight), []).append((max(r.jobs, 1), e))
    slopes = []
    for runs in by_config.values():
        (j0, e0), (j1, e1) = min(runs), max(runs)
        if j1 > j0:
            slopes.append((e1 - e0) / (j1 - j0))
    job_extra = max(float(statistics.median(slopes)), 0.0) if slopes else 0.0
    fit_extra = max(
        float(statistics.median(e - job_extra * max(r.jobs, 1) for r, e in zip(warm, excess, strict=True))), 0.0
    )
    logs = [
        abs(math.log((r.fit_seconds + r.eval_seconds) / (p + fit_extra + job_extra * max(r.jobs, 1))))
        for r, p in zip(warm, predicted, strict=True)
        if r.fit_seconds + r.eval_seconds > 0 and p + fit_extra > 0
    ]
    spread = 1.4826 * float(statistics.median(logs)) if logs else 0.0
    extras = [
        s.session_seconds + s.data_seconds - cal.session_seconds - _setup_seconds(cal.data_model, s.rows, s.cores)
        for s in setups
        if s.cold
    ]
    setup_extra = max(float(statistics.median(extras)), 0.0) if extras else 0.0
    return fit_extra, job_extra, setup_extra, spread


def corrections(
    cfg: Config, cal: Calibration, cores: int, fit_extra: float, job_extra: float, setup_extra: float
) -> tuple[float, float]:
    """(trial ratio, setup ratio): the full-size sweep's predicted trials (a sample of the search space's
    configurations) and setup with the cluster's overheads added, over the same without."""
    from lrsweep.planning.predict import draw_configs

    parts = cal._parts(cal.rows)
    base = extra = 0.0
    for p in draw_configs(cfg, 32, multiclass=cal.classes > 2):
        models, jobs, _ = cal.fit_jobs(p, parts.n_fit)
        base += cal.trial(p, rows=cal.rows, cores=cores).mid
        extra += parts.folds * (models * fit_extra + job_extra * jobs)
    setup = cal.setup(rows=cal.rows, cores=cores).mid
    trial_ratio = (base + extra) / base if base > 0 else 1.0
    setup_ratio = (setup + setup_extra) / setup if setup > 0 else 1.0
    return trial_ratio, setup_ratio


def _cache_path(cfg: Config, cal: Calibration, master: str, cores: int) -> Path:
    tag = hashlib.sha256(f"{cal.key}|{master}|{cores}".encode()).hexdigest()[:16]
    return Path(cfg.plan.calibration.cache_dir) / f"{cfg.dataset.label}-probe-{tag}.json"


def _spec(cfg: Config, cal: Calibration, cores: int, workdir: Path) -> dict[str, Any]:
    """The child's spec: the calibration's throwaway small sample first (cold), then its largest sample with three
    configurations (the strongest, the middle and the weakest regularisation) at both probe lengths, after a
    throwaway fit."""
    from lrsweep.planning.calibrate import _fractions, _samples, _scaled, _spec, calibration_configs

    c = cfg.plan.calibration
    rows = cal.rows
    fractions = _fractions(c, rows)
    tiny = min(c.min_rows / rows, fractions[0])
    warm_up, top = _samples(cfg, [tiny, max(fractions)], rows, workdir)
    configs = sorted(calibration_configs(cfg, c.configs), key=lambda p: math.inf if math.isinf(p.C) else p.C)
    chosen = list({id(p): p for p in (configs[0], configs[len(configs) // 2], configs[-1])}.values())
    # the calibration's own spec for these samples: the same backend settings, split and seed
    (spec,) = _spec(cfg, rows, [top], chosen, warm_up)[-1:]
    point = spec["points"][0]
    factor = rows / top.rows
    fits = [[dataclasses.asdict(_scaled(p, factor, n)), p.C] for n in PROBE_LENGTHS for p in chosen]
    point["fits"] = [fits[0], *fits]  # the first, run twice: the first fit on a new sample is a throwaway
    point["refit"] = None
    cluster = cfg.cluster
    return spec | {
        "cores": cores,
        "points": [point],
        "probes": 0,
        "repeat_to": 0,
        "together_on": 0,
        "master": cluster.master,
        "spark_conf": dict(cluster.spark_conf),
    }


def probe_cluster(
    cfg: Config, cal: Calibration, cores: int, *, say: logging.Logger | None = None
) -> ClusterProbe | None:
    """The probe of ``cfg.cluster`` (see the module docstring): from the cache or measured now; None when the
    cluster is not one to probe (plan.probe=false, or not a standalone cluster)."""
    from lrsweep.planning.calibrate import FitRun, SetupRun, _spawn, write_cache

    say = say or log
    cluster = cfg.cluster
    if not cfg.plan.probe or not isinstance(cluster, StandaloneCluster) or not cluster.master:
        return None
    master = str(cluster.master)
    path = _cache_path(cfg, cal, master, cores)
    if cfg.plan.calibration.cache and path.is_file():
        try:
            probe = ClusterProbe.from_dict(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            say.warning("ignoring an unreadable cluster probe %s (%s)", path, exc)
        else:
            probe.cache_hit = True
            say.info("cluster probe: cache hit %s", path)
            return probe
    say.info("cluster probe: a few short fits on %s (%d cores)", master, cores)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lrsweep-probe-") as tmp:
        spec = _spec(cfg, cal, cores, Path(tmp))
        out = _spawn(spec, Path(tmp), cfg.plan.calibration.timeout_seconds, f"the cluster probe on {master}")
    fits = [FitRun(**r) for r in out["fits"]]
    first = next(i for i, r in enumerate(fits) if not (r.cold or r.warmup))
    fits.pop(first)  # the throwaway: the executors' first jobs on the new sample (0.9 s slower once on telco)
    setups = [SetupRun(**r) for r in out["setups"]]
    fit_extra, job_extra, setup_extra, spread = overheads(cal, fits, setups)
    trial_ratio, setup_ratio = corrections(cfg, cal, cores, fit_extra, job_extra, setup_extra)
    warm = [r for r in fits if not r.cold and not r.warmup]
    probe = ClusterProbe(
        master=master,
        cores=cores,
        rows=max(s.rows for s in setups),
        fits=len(warm),
        fit_extra=fit_extra,
        job_extra=job_extra,
        setup_extra=setup_extra,
        trial_ratio=trial_ratio,
        setup_ratio=setup_ratio,
        spread=spread,
        seconds=time.perf_counter() - t0,
        fit_runs=out["fits"],
        setup_runs=out["setups"],
    )
    if cfg.plan.calibration.cache:
        write_cache(path, probe.to_dict())
    say.info("cluster probe: measured in %.0f s", probe.seconds)
    return probe
