"""Successive halving's promotions (``search.fidelity=halving``): which trial goes on to the next rung.

A trial reports each rung's validation objective at step eta^r (see :func:`lrsweep.sweep.rung_step`); after each
rung but the last, the study's pruner says whether it goes on. Optuna's SuccessiveHalvingPruner (asynchronous
successive halving, ASHA) promotes a trial when it ranks in the best 1/eta of the trials that reached its rung
*so far*. Under TPE that is nearly every late trial: the sampler improves, so late trials beat the early ones
they are ranked against. Measured on CTR at 10^6 rows (Spark local[2], 20 trials, eta 3): 9 of 20 trials ran
all three rungs where successive halving plans about 2, and as a promoted trial also pays its smaller rungs, the
halving sweep took 130% of the full sweep's wall time.

:class:`QuotaHalvingPruner` keeps each rung to its share, as synchronous successive halving does, without
holding trials back (Optuna cannot suspend a trial): a trial is promoted when it ranks in the best 1/eta of the
trials that reached its rung so far *and* fewer than 1/eta of them have been promoted already; or when it is the
best at its rung so far (the best configuration is never stopped for want of a place, which is what the sweep's
result rests on). Over n trials about n/eta + (the times a new best arrives) go on from each rung. It reads
everything from the study (no state of its own), so a resumed sweep and concurrent workers promote alike.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.pruners import BasePruner
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["QuotaHalvingPruner", "pruner_for", "RUNG_KEY", "PROMOTED_KEY"]

RUNG_KEY = "lrsweep_rung_"  # + rung: the trial's value there (system attribute, set as it competes)
PROMOTED_KEY = "lrsweep_promoted_"  # + rung: the trial went on from there


class QuotaHalvingPruner(BasePruner):
    """Promote at most the best 1/``eta`` of a rung's trials (and its best so far), over ``rungs`` rungs reported
    at steps 1, eta, eta^2, ..."""

    def __init__(self, eta: int, rungs: int) -> None:
        if eta < 2 or rungs < 2:
            raise ValueError("eta and rungs must be at least 2")
        self.eta, self.steps = eta, [eta**r for r in range(rungs)]

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step not in self.steps[:-1]:
            return False  # not a rung's report, or the last rung: nothing to promote to
        value = trial.intermediate_values[step]
        if math.isnan(value):
            return True
        rung = self.steps.index(step)
        reached, went_on = f"{RUNG_KEY}{rung}", f"{PROMOTED_KEY}{rung}"
        # the trials that competed at this rung (a pruner call marks them: a repeated configuration, which
        # replays its original's values without a call, does not compete twice), failed ones aside
        others = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.number != trial.number and t.state != TrialState.FAIL and reached in t.system_attrs
        ]
        storage = study._storage
        storage.set_trial_system_attr(trial._trial_id, reached, value)
        values = [float(t.system_attrs[reached]) for t in others] + [value]
        maximize = study.direction == StudyDirection.MAXIMIZE
        ranked = sorted(values, reverse=maximize)
        quota = len(values) // self.eta
        best = ranked[0] == value
        promoted = sum(1 for t in others if t.system_attrs.get(went_on))
        within = quota > 0 and (value >= ranked[quota - 1] if maximize else value <= ranked[quota - 1])
        if best or (within and promoted < quota):
            storage.set_trial_system_attr(trial._trial_id, went_on, True)
            return False
        return True


def pruner_for(eta: int, rungs: int, promotion: str) -> Any:
    """The study's pruner for successive halving: :class:`QuotaHalvingPruner`, or Optuna's asynchronous one."""
    if promotion == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=eta, min_early_stopping_rate=0)
    return QuotaHalvingPruner(eta, rungs)
