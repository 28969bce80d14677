"""A whole sweep's time from a calibration: setup once, every trial, the refit, each with a range.

The trials are the search space's own configurations, drawn as the sweep draws them: :func:`lrsweep.space.suggest`
on an in-memory Optuna study with a ``RandomSampler`` seeded with the sweep's seed. That sampler is what a
``search.sampler=random`` sweep uses, and what TPE uses for its first ``search.n_startup_trials`` trials, so those
trials are predicted for the very configurations the sweep will run; later TPE trials (which follow the results)
are predicted as the search space's average. Time is dominated by iterations, and iterations by the
regularisation, so a sweep of weakly regularised configurations costs more than its trial count says.

The range combines three kinds of error, each on a log scale: the calibration's shared error (the fit residuals,
a noise floor for run-to-run variation, extrapolation beyond the measured rows and cores, the history
correction's spread), which moves every trial together; each trial's own iteration error (leave-one-out error
of the iteration model), which partly cancels over many trials; and, for trials not known in advance, the spread
of trial times over the search space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lrsweep.planning.calibrate import Calibration, Estimate, Z

if TYPE_CHECKING:
    from lrsweep.config import Config
    from lrsweep.space import ModelParams

__all__ = [
    "SweepEstimate",
    "predict_sweep",
    "draw_configs",
    "known_trials",
    "rung_shares",
    "MIN_SAMPLES",
    "MAX_SAMPLES",
]

# the per-trial average over the search space uses at least this many draws
MIN_SAMPLES = 64
# draws at most: a sweep of more trials counts the ones beyond as the draws' mean (drawing costs ~1 ms each, so a
# plan of 100,000 random trials would take minutes for a figure the first few thousand already fix)
MAX_SAMPLES = 2_000


@dataclass
class SweepEstimate:
    n_trials: int
    setup: Estimate
    trial: Estimate  # one trial, the mean over the search space
    trials: Estimate  # all n_trials trials
    refit: Estimate
    total: Estimate  # setup + trials + refit
    samples: int  # search-space draws the per-trial mean averages
    known: int = 0  # trials predicted for the exact configurations the sweep will run
    iterations: float = 0.0  # mean predicted iterations per fit over the draws

    def to_dict(self) -> dict[str, object]:
        return {
            "n_trials": self.n_trials,
            "samples": self.samples,
            "known": self.known,
            "iterations": self.iterations,
            **{k: getattr(self, k).to_dict() for k in ("setup", "trial", "trials", "refit", "total")},
        }


def draw_configs(cfg: Config, n: int, *, multiclass: bool = False) -> list[ModelParams]:
    """The first ``n`` configurations a seeded RandomSampler proposes for ``cfg.search`` (as the sweep draws;
    ``multiclass``: for a target of more than two classes, with search.multiclass's modes)."""
    import optuna

    from lrsweep.backends import capabilities_of
    from lrsweep.space import solver_pool, suggest

    pool = solver_pool(cfg.search, capabilities_of(cfg.backend.name), sparse=bool(cfg.dataset.hashed))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=cfg.seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(suggest(trial, cfg.search, cfg.threshold, pool, multiclass=multiclass))
        study.tell(trial, 0.0)
    return out


def known_trials(cfg: Config) -> int:
    """How many of the sweep's trials a seeded RandomSampler reproduces: all for sampler=random, the startup
    trials for TPE, none for grid (its points are queued in their own order)."""
    s = cfg.search
    if s.sampler == "random":
        return s.n_trials
    if s.sampler == "tpe":
        return min(s.n_trials, s.n_startup_trials)
    return 0


def _log_sd(values: list[float]) -> float:
    logs = [math.log(v) for v in values if v > 0]
    if len(logs) < 2:
        return 0.0
    mean = sum(logs) / len(logs)
    return math.sqrt(sum((v - mean) ** 2 for v in logs) / (len(logs) - 1))


def rung_shares(cfg: Config) -> list[float]:
    """The expected share of a sweep's trials that run each rung of successive halving: 1, 1/eta, 1/eta^2, ...
    (search.promotion=quota keeps to about that, plus each new best of a rung; [1.0] without halving). Optuna's
    asynchronous rule (promotion=asha) promotes more under TPE: measured 1, 0.6, 0.45 on CTR, which this does not
    predict."""
    return [float(cfg.search.eta) ** -r for r in range(len(cfg.search.fractions()))]


def _trial_parts(
    cfg: Config, cal: Calibration, p: ModelParams, rows: int, cores: int, speed: float
) -> tuple[float, float]:
    """(mid seconds, log-scale sd) of one trial: with halving, its rungs weighted by the share of trials that
    run them (a rung fits its share of the training rows and scores all of validation); with search.n_jobs=K, its
    share of the sweep's wall when K run at once."""
    fractions = cfg.search.fractions()
    k = cfg.search.n_jobs
    if len(fractions) == 1:
        return cal.trial_parts(p, rows=rows, cores=cores, speed=speed, together=k)
    mid, var = 0.0, 0.0
    for share, fraction in zip(rung_shares(cfg), fractions, strict=True):
        q, rows_share = cfg.search.rung(p, fraction)  # as the sweep fits the rung
        m, sd = cal.trial_parts(q, rows=rows, cores=cores, speed=speed, fraction=rows_share, together=k)
        mid += share * m
        var += (share * m * sd) ** 2
    return mid, math.sqrt(var) / mid if mid > 0 else 0.0


def predict_sweep(
    cfg: Config,
    cal: Calibration,
    *,
    rows: int,
    cores: int,
    speed: float = 1.0,
    correction: float = 1.0,
    correction_spread: float = 0.0,
    setup_correction: float = 1.0,
) -> SweepEstimate:
    """Setup, trials (``cfg.search.n_trials``), refit and their total on ``cores`` executor cores, each
    ``speed`` times as fast as one core here. ``correction`` multiplies trial and refit times (a factor learnt
    from finished sweeps), ``correction_spread`` (log scale) widens their range; ``setup_correction`` multiplies
    the setup (learnt from the same sweeps' setups)."""
    if rows < 1 or cores < 1 or not speed > 0 or not correction > 0 or correction_spread < 0:
        raise ValueError("rows, cores, speed and correction must be positive, correction_spread >= 0")
    if not setup_correction > 0:
        raise ValueError("setup_correction must be positive")
    n = cfg.search.n_trials
    samples = max(min(n, MAX_SAMPLES), MIN_SAMPLES)
    configs = draw_configs(cfg, samples, multiclass=cal.classes > 2)
    parts = [_trial_parts(cfg, cal, p, rows, cores, speed) for p in configs]
    mids = [m * correction for m, _ in parts]
    ind = [sd for _, sd in parts]
    shared = math.sqrt(cal.model_sd(rows, cores) ** 2 + correction_spread**2)
    mean = sum(mids) / len(mids)
    space_sd = _log_sd(mids)
    mean_ind = math.sqrt(sum(s * s for s in ind) / len(ind))

    # one trial of the space: its shared error, its own, and where in the space it falls
    trial = Estimate.spread(mean, math.sqrt(shared**2 + mean_ind**2 + space_sd**2))

    # the sweep's trials: the known ones exactly, the rest as the space's mean
    known = min(known_trials(cfg), n, samples)
    # the sweep's fresh JVM compiles Spark's code paths during its first fits: once per sweep
    total_mid = sum(mids[:known]) + (n - known) * mean + cal.cold_start_seconds * correction / speed
    var_ind = sum((m * s) ** 2 for m, s in zip(mids[:known], ind[:known], strict=True))
    var_ind += (n - known) * (mean**2) * (mean_ind**2 + space_sd**2)
    rel_ind = math.sqrt(var_ind) / total_mid if total_mid > 0 else 0.0
    trials = Estimate.spread(total_mid, math.sqrt(shared**2 + rel_ind**2))

    setup = cal.setup(rows=rows, cores=cores, speed=speed).scaled(setup_correction)
    # the refit's configuration is the best one, unknown before the sweep: the average over the draws (a fit on
    # the cluster, corrected as the trials are)
    refits = [cal.refit(p, rows=rows, cores=cores, speed=speed).scaled(correction) for p in configs[: min(samples, 32)]]
    r_mid = sum(r.mid for r in refits) / len(refits)
    r_sd = max(math.log(r.high / r.mid) / Z for r in refits if r.mid > 0)
    refit = Estimate.spread(r_mid, math.sqrt(r_sd**2 + _log_sd([r.mid for r in refits]) ** 2))
    iterations = sum(
        cal.iterations.iterations(p, cal._parts(rows).n_fit) for p in configs if cal.iterations is not None
    ) / len(configs)
    return SweepEstimate(
        n_trials=n,
        setup=setup,
        trial=trial,
        trials=trials,
        refit=refit,
        total=setup + trials + refit,
        samples=samples,
        known=known,
        iterations=iterations,
    )
