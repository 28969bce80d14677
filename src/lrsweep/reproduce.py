"""``lrsweep reproduce RUN_ID``: re-run a logged result from what MLflow recorded, and check it.

The run is a sweep's parent (its best trial is evaluated on validation again, refitted on train+validation and
scored once on test) or one trial's child run (evaluated on validation). The config comes from the parent's
``config.yaml`` (:func:`lrsweep.recorded.config_of`), the configuration from the trial's params. The data must
have the recorded fingerprint: when it does not, one line names what changed (rows, columns, values) and nothing
is fitted. Then recorded and reproduced metrics are printed side by side; the command passes when every one
agrees within the tolerance (:data:`TOLERANCE`), and exits 1 naming the ones that do not.

Tolerances. scikit-learn on the same versions is deterministic given the seed: what it computes again is the same
to the last bits, so its tolerance (1e-9) only absorbs the rounding of another CPU's BLAS. Spark's L-BFGS sums
over partitions in the order its tasks finish, so the same fit can differ in the last digits: 1e-4. When the
installed versions differ from the recorded ones, both lists are shown (a mismatch may come from there).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from lrsweep.errors import LrsweepError, NotReproduced, OneLineParser
from lrsweep.recorded import Recorded

__all__ = ["TOLERANCE", "Row", "Outcome", "compare_metrics", "version_changes", "format_report", "reproduce", "main"]

TOLERANCE = {"sklearn": 1e-9, "spark": 1e-4}  # absolute, per metric (see the module docstring)
# per-trial fit figures, not results: they vary from run to run (fit_seconds) or say nothing of the result
_NOT_COMPARED = ("fit_seconds", "converged", "threshold_feasible")


@dataclass
class Row:
    metric: str
    recorded: float
    reproduced: float

    @property
    def difference(self) -> float:
        if math.isnan(self.recorded) and math.isnan(self.reproduced):
            return 0.0
        return abs(self.reproduced - self.recorded)

    def agrees(self, tolerance: float) -> bool:
        d = self.difference
        return not math.isnan(d) and d <= tolerance


def compare_metrics(recorded: dict[str, float], reproduced: dict[str, float]) -> list[Row]:
    """One row per metric both hold (validation first, then threshold, then test), NaN agreeing with NaN."""

    def order(name: str) -> tuple[int, str]:
        return ({"val": 0, "threshold": 1, "test": 2}.get(name.split("_", 1)[0], 3), name)

    names = sorted((set(recorded) & set(reproduced)) - set(_NOT_COMPARED), key=order)
    return [Row(n, float(recorded[n]), float(reproduced[n])) for n in names]


def version_changes(recorded: dict[str, str], installed: dict[str, str]) -> list[tuple[str, str, str]]:
    """(package, recorded, installed) for every recorded version that differs from the installed one."""
    out = []
    for key, old in recorded.items():
        if key.endswith(".version"):
            new = installed.get(key, "not installed")
            if new != old:
                out.append((key.removesuffix(".version"), old, new))
    return out


def _figure(v: float) -> str:
    if math.isnan(v):
        return "nan"
    return f"{int(v)}" if v.is_integer() and abs(v) >= 1 else f"{v:.6f}" if abs(v) < 1e6 else f"{v:.6g}"


def format_report(
    rows: list[Row], tolerance: float, changes: list[tuple[str, str, str]], head: list[str]
) -> tuple[str, list[Row]]:
    """The printed comparison and the rows that disagree."""
    lines = list(head)
    w = max([22, *(len(r.metric) + 2 for r in rows)])  # (a multi-class run's per-class names are longer)
    lines.append(f"  {'metric':<{w}}{'recorded':>14}{'reproduced':>14}{'difference':>13}")
    for r in rows:
        mark = "" if r.agrees(tolerance) else "  <- differs"
        figures = f"{_figure(r.recorded):>14}{_figure(r.reproduced):>14}{r.difference:>13.2g}"
        lines.append(f"  {r.metric:<{w}}{figures}{mark}")
    if changes:
        lines.append("  versions differ from the recorded ones (recorded -> installed):")
        lines += [f"    {name:<14} {old} -> {new}" for name, old, new in changes]
    bad = [r for r in rows if not r.agrees(tolerance)]
    if not bad:
        lines.append(f"  reproduced: {len(rows)} metrics agree within {tolerance:g}")
    return "\n".join(lines), bad


def _trial_label(rec: Recorded) -> str:
    name = rec.trial.info.run_name or f"trial {rec.trial_number}"
    return f"{name} (the sweep's best)" if rec.is_sweep else name


@dataclass
class Outcome:
    text: str  # the printed report
    rows: list[Row]
    tolerance: float
    bad: list[Row]  # the rows that differ beyond the tolerance


def reproduce(rec: Recorded, overrides: Sequence[str] = (), tolerance: float | None = None) -> Outcome:
    """Re-run ``rec`` and compare (raises LrsweepError when the config or the data no longer allows it)."""
    from lrsweep.backends import capabilities_of, make_backend
    from lrsweep.config import validate
    from lrsweep.data import open_data
    from lrsweep.recorded import config_of, data_changes, model_params_of
    from lrsweep.space import ModelParams
    from lrsweep.sweep import _environment, _test_metrics, check_classes, evaluate_params, of_class_code

    state = rec.trial.data.tags.get("lrsweep.state", "COMPLETE")
    if state != "COMPLETE":
        raise LrsweepError(
            f"trial {rec.trial_number} of study {rec.study} ended {state}: it has no result to reproduce",
            "give a completed trial's run, or the sweep's parent run",
        )
    cfg = config_of(rec.config, list(overrides))
    validate(cfg, capabilities_of(cfg.backend.name))
    params = ModelParams(**model_params_of(dict(rec.trial.data.params)))
    tol = TOLERANCE.get(cfg.backend.name, 1e-9) if tolerance is None else tolerance
    started = time.perf_counter()
    backend = make_backend(cfg)
    try:
        try:
            summary = backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
        except LrsweepError as exc:
            raise LrsweepError(
                f"the data no longer reads as run {rec.run.info.run_id} recorded it: {exc.problem}",
                exc.fix or "restore the recorded data",
            ) from exc
        fingerprint = rec.data.get("fingerprint") or {}
        changes = data_changes(fingerprint, summary.fingerprint)
        if changes:
            raise LrsweepError(
                f"the data changed since run {rec.run.info.run_id} was logged ({'; '.join(changes)}) "
                f"at {summary.fingerprint.get('source')}",
                "reproduce on the data it ran on: restore it, or point dataset.path=... at a copy",
            )
        check_classes(cfg, backend.classes)  # e.g. an override naming a class the target does not have
        scored = evaluate_params(backend, cfg, params)
        m = scored.metrics
        threshold = float(m.get("threshold", math.nan))  # (none: a multi-class target decided by argmax)
        again: dict[str, float] = {f"val_{k}": v for k, v in m.items()}
        again.pop("val_threshold", None)
        if "threshold" in m:
            again["threshold"] = threshold
        if rec.is_sweep:
            code = of_class_code(cfg, backend.classes)
            refit = backend.refit(params, threshold, code)
            test = _test_metrics(refit.test, threshold, backend.classes, code)
            again |= {f"test_{k}": v for k, v in test.items()}
    finally:
        backend.close()
    recorded = dict(rec.run.data.metrics)
    if not rec.is_sweep:
        recorded = {k: v for k, v in recorded.items() if k.startswith("val_") or k == "threshold"}
    rows = compare_metrics(recorded, again)
    if not rows:
        raise LrsweepError(f"run {rec.run.info.run_id} holds none of the metrics a reproduction computes", "")
    kind = "sweep" if rec.is_sweep else "trial"
    head = [
        f"lrsweep reproduce: {kind} run {rec.run.info.run_id} of experiment {rec.experiment!r} ({rec.uri})",
        f"  study: {rec.study}",
        f"  data: {cfg.dataset.label}, {summary.fingerprint.get('rows')} rows, "
        f"sha256 {str(summary.fingerprint.get('sha256', ''))[:12]}... as recorded",
        f"  configuration: {_trial_label(rec)}, backend {cfg.backend.name}, seed {cfg.seed}",
        f"  {'evaluated on validation, refitted and tested' if rec.is_sweep else 'evaluated on validation'} again "
        f"in {time.perf_counter() - started:.1f} s:",
    ]
    text, bad = format_report(rows, tol, version_changes(rec.environment, _environment()), head)
    return Outcome(text, rows, tol, bad)


# -- the command ----------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="lrsweep reproduce",
        description=(
            "Re-run a logged sweep (its parent run: best trial refitted and tested) or trial (its child run) from "
            "what MLflow recorded, check the data fingerprint, and compare the metrics."
        ),
        epilog=(
            "KEY=VALUE overrides change the recorded config, e.g. dataset.path=moved/churn.csv for data that moved "
            "(its fingerprint must still match), or a credential the record masked. Exit status: 0 reproduced, "
            "1 metrics differ, 2 it could not run. Examples: lrsweep reproduce 3f9a...; "
            "lrsweep reproduce --experiment churn_course --best"
        ),
    )
    p.add_argument("args", nargs="*", metavar="RUN_ID [KEY=VALUE ...]", help="the run, then overrides")
    p.add_argument("--experiment", metavar="NAME", help="with --best: the experiment to take the best sweep of")
    p.add_argument("--best", action="store_true", help="reproduce the experiment's best sweep")
    p.add_argument("--metric", metavar="NAME", help="with --best: rank by this validation metric (default: objective)")
    p.add_argument(
        "--tracking-uri", metavar="URI", help="the MLflow store (default: MLFLOW_TRACKING_URI, else ./mlflow.db)"
    )
    p.add_argument("--tolerance", type=float, metavar="X", help="absolute tolerance per metric (default: by backend)")
    return p


def main(argv: Sequence[str]) -> int:
    """``lrsweep reproduce ARGV``: 0 when reproduced; raises NotReproduced (exit 1) or LrsweepError (exit 2)."""
    from lrsweep.recorded import best_sweep, load

    args = _parser().parse_args(list(argv))
    ids = [a for a in args.args if "=" not in a]
    overrides = [a for a in args.args if "=" in a]
    if args.best or args.experiment:
        if not (args.best and args.experiment) or ids:
            raise LrsweepError(
                "--experiment and --best go together, instead of a RUN_ID",
                "write `lrsweep reproduce --experiment NAME --best` or `lrsweep reproduce RUN_ID`",
            )
        ids = [best_sweep(args.experiment, args.tracking_uri, args.metric)]
    if len(ids) != 1:
        raise LrsweepError(
            "give one RUN_ID (a sweep's parent run or a trial's run)" if not ids else f"one RUN_ID, not {len(ids)}",
            "copy it from `lrsweep compare` or the MLflow UI, or use --experiment NAME --best",
        )
    if args.tolerance is not None and not args.tolerance >= 0:
        raise LrsweepError(f"--tolerance {args.tolerance} must be >= 0", "e.g. --tolerance 1e-6")
    rec = load(ids[0], args.tracking_uri)
    out = reproduce(rec, overrides, args.tolerance)
    print(out.text, flush=True)
    if out.bad:
        worst = max(out.bad, key=lambda r: r.difference if not math.isnan(r.difference) else math.inf)
        raise NotReproduced(
            f"not reproduced: {len(out.bad)} of {len(out.rows)} metrics differ beyond {out.tolerance:g} "
            f"({worst.metric}: {_figure(worst.recorded)} recorded, {_figure(worst.reproduced)} now)",
            "compare the versions above with the recorded ones, or check the data and the overrides",
        )
    return 0
