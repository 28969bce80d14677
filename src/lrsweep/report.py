"""Artifacts of a finished sweep (plots, coefficient table) and the summary printed at the end.

Plots come from the libraries that already draw them: scikit-learn's RocCurveDisplay,
PrecisionRecallDisplay and ConfusionMatrixDisplay, and optuna.visualization.matplotlib.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lrsweep.metrics import Curve
from lrsweep.multiclass import PER_CLASS_METRICS, class_keys
from lrsweep.records import SweepResult

__all__ = ["write_artifacts", "format_summary", "import_plotting"]

log = logging.getLogger("lrsweep")
SHOWN_CONFUSION = 8  # the summary prints a multi-class confusion matrix of at most this many classes


def import_plotting() -> threading.Thread:
    """Import the plotting libraries in a background thread (started before the trials): the ~0.7 s of
    matplotlib's import then overlaps the fits (most solvers release the GIL) instead of delaying the end."""

    def run() -> None:
        with contextlib.suppress(Exception):  # write_artifacts imports them again and reports what fails
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot  # noqa: F401
            import optuna.visualization.matplotlib  # noqa: F401
            from sklearn.metrics import RocCurveDisplay  # noqa: F401

    thread = threading.Thread(target=run, name="lrsweep-import-plotting", daemon=True)
    thread.start()
    return thread


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _threshold_plot(curve: Curve, threshold: float, path: Path) -> None:
    import matplotlib.pyplot as plt

    t = curve.thresholds[1:]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(t, curve.precision[1:], label="precision")
    ax.plot(t, curve.tpr[1:], label="recall")
    ax.plot(t, curve.f1[1:], label="F1")
    ax.plot(t, 1 - curve.fpr[1:], label="specificity")
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"chosen {threshold:.3f}")
    ax.set_xlabel("threshold (positive if score >= threshold)")
    ax.set_ylabel("metric on validation")
    ax.set_xlim(0, 1)
    ax.legend(loc="best", fontsize=8)
    _save(fig, path)
    plt.close(fig)


def write_artifacts(
    out: Path,
    *,
    val_curve: Curve | None,
    test_scores: tuple[np.ndarray, np.ndarray] | None,
    threshold: float,
    coefficients: Any,
    study: Any,
    result: SweepResult,
) -> list[str]:
    """Write every artifact into ``out``; a plot that cannot be drawn is skipped with a warning."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    (out / "plots").mkdir(exist_ok=True)

    def attempt(name: str, draw: Any) -> None:
        name = f"plots/{name}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                draw(out / name)
            written.append(name)
        except Exception as exc:  # an artifact is not worth failing a finished sweep for
            log.warning("skipped artifact %s: %s", name, exc)
        finally:
            plt.close("all")

    if test_scores is not None and result.classes:
        _class_plots(attempt, test_scores, result)
    elif test_scores is not None:
        y, p = test_scores

        def roc(path: Path) -> None:
            d = RocCurveDisplay.from_predictions(y, p, name="best model (test)", plot_chance_level=True)
            _save(d.figure_, path)

        def pr(path: Path) -> None:
            d = PrecisionRecallDisplay.from_predictions(y, p, name="best model (test)", plot_chance_level=True)
            _save(d.figure_, path)

        def cm(path: Path) -> None:
            d = ConfusionMatrixDisplay.from_predictions(y, (p >= threshold).astype(int), display_labels=["neg", "pos"])
            d.ax_.set_title(f"test, threshold {threshold:.3f}")
            _save(d.figure_, path)

        attempt("roc_curve.png", roc)
        attempt("pr_curve.png", pr)
        attempt("confusion_matrix.png", cm)
    if val_curve is not None:  # (none for a multi-class target decided by argmax)
        attempt("metric_vs_threshold.png", lambda path: _threshold_plot(val_curve, threshold, path))

    def history(path: Path) -> None:
        from optuna.visualization.matplotlib import plot_optimization_history

        ax = plot_optimization_history(study)
        low, high, hidden = history_range(
            [t.value for t in study.trials if t.state.name == "COMPLETE"], study.direction
        )
        if hidden:  # degenerate trials (a constant model's 0.5 ROC AUC) would flatten every other point
            ax.set_ylim(low, high)
            ax.set_title(f"{ax.get_title()} ({hidden} poor trial(s) below the axis)", fontsize=10)
        _save(ax.figure, path)

    def importances(path: Path) -> None:
        from optuna.visualization.matplotlib import plot_param_importances

        ax = plot_param_importances(study)
        _save(ax.figure, path)

    attempt("optimization_history.png", history)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) >= 2 and len({k for t in complete for k in t.params}) >= 1:
        attempt("param_importances.png", importances)
    if coefficients is not None:
        coefficients.to_csv(out / "coefficients.csv", index=False)
        (out / "tables").mkdir(exist_ok=True)  # the same, as an MLflow table (split orient, as mlflow.log_table)
        coefficients.to_json(out / "tables" / "coefficients.json", orient="split", index=False)
        written += ["coefficients.csv", "tables/coefficients.json"]
    if result.test_confusion:  # a multi-class target's K x K test confusion matrix, as an MLflow table too
        (out / "tables").mkdir(exist_ok=True)
        frame = {"columns": ["true class", *result.classes], "data": [
            [label, *row] for label, row in zip(result.classes, result.test_confusion, strict=True)
        ]}  # fmt: skip
        (out / "tables" / "confusion_matrix.json").write_text(json.dumps(frame))
        written.append("tables/confusion_matrix.json")
    (out / "summary.json").write_text(json.dumps(result.as_dict(), indent=2, default=str))
    written.append("summary.json")
    return written


def _class_plots(attempt: Any, test_scores: tuple[np.ndarray, np.ndarray], result: SweepResult) -> None:
    """A multi-class target's test plots: each class's one-vs-rest ROC and PR curves on one axis, and the K x K
    confusion matrix of the model's decisions (argmax, or the threshold on ``of_class``)."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    y, proba = test_scores
    classes = result.classes

    def per_class(display: Any, path: Path, title: str, chance: bool, axes: tuple[str, str]) -> None:
        fig, ax = plt.subplots(figsize=(6.4, 5.2))
        for k, label in enumerate(classes):
            last = k == len(classes) - 1  # (the chance line once, after the classes in the legend)
            display.from_predictions(
                (y == k).astype(int), proba[:, k], name=f"{label} vs rest", ax=ax, plot_chance_level=chance and last
            )
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(axes[0])  # (the display's own labels say "positive label: 1", each class's here)
        ax.set_ylabel(axes[1])
        ax.legend(loc="best", fontsize=8)
        _save(fig, path)

    def cm(path: Path) -> None:  # the sweep's own test confusion matrix (the model's decisions)
        size = max(5.0, 0.6 * len(classes) + 2)
        fig, ax = plt.subplots(figsize=(size, size * 0.85))
        ConfusionMatrixDisplay(np.asarray(result.test_confusion), display_labels=classes).plot(
            ax=ax, xticks_rotation=45 if len(classes) > 5 else "horizontal", colorbar=False
        )
        how = "argmax" if result.of_class is None else f"{result.of_class} at threshold {result.threshold:.3f}"
        ax.set_title(f"test, {how}", fontsize=10)
        _save(fig, path)

    roc_axes = ("false positive rate (rows of the other classes)", "true positive rate (recall of the class)")
    attempt("roc_curve.png", lambda p: per_class(RocCurveDisplay, p, "test, one-vs-rest ROC per class", True, roc_axes))
    pr_axes = ("recall of the class", "precision of the class")
    attempt("pr_curve.png", lambda p: per_class(PrecisionRecallDisplay, p, "test, one-vs-rest PR", False, pr_axes))
    attempt("confusion_matrix.png", cm)


def history_range(values: list[float], direction: Any) -> tuple[float, float, int]:
    """The objective axis of the optimisation history: the trials' spread without the outliers on the poor side
    (beyond 10 median absolute deviations of the median), and how many trials that leaves off the axis."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size < 4:
        return (float(v.min()), float(v.max()), 0) if v.size else (0.0, 1.0, 0)
    med = float(np.median(v))
    reach = 10 * max(float(np.median(np.abs(v - med))), 1e-12)  # 10 median absolute deviations: ~7 sd
    maximize = getattr(direction, "name", str(direction)).upper().endswith("MAXIMIZE")
    kept = v[v >= med - reach] if maximize else v[v <= med + reach]
    pad = 0.05 * max(float(kept.max() - kept.min()), 1e-6)
    return float(kept.min() - pad), float(kept.max() + pad), int(v.size - kept.size)


def _fmt(v: Any) -> str:
    """A parameter: 4 significant digits (C spans decades)."""
    if isinstance(v, float):
        if math.isinf(v):
            return "inf"
        return f"{v:.4g}"
    return str(v)


def _metric(v: float) -> str:
    """A metric: 4 decimals, always (columns line up and compare)."""
    return "nan" if math.isnan(v) else f"{v:.4f}"


def format_summary(r: SweepResult) -> str:
    """The table printed at the end of a sweep (one line when the call had nothing to do)."""
    if r.nothing_to_do:
        links = _links(r)
        return r.nothing_to_do + (f"\n  {links[0]}" if links else "")
    lines = [""]
    lines.append(f"lrsweep: {r.study_name}  ({r.backend}, {r.dataset})")
    lines.append(
        f"  trials: {r.n_finished} finished in the study ({r.n_new} this run; "
        + ", ".join(f"{k.lower()} {v}" for k, v in sorted(r.states.items()))
        + f"), wall {r.wall_seconds:.1f} s"
    )
    if r.rungs:
        stopped = [f"{n} at {share}" for share, n in r.rungs.items() if share != "all"]
        unit = "the training rows" if r.rung_resource == "rows" else "the iterations (search.max_iter)"
        lines.append(
            f"  halving: trials stopped {', '.join(stopped) or 'at no rung'} of {unit}; "
            f"{r.rungs.get('all', 0)} ran on all of them (the best is one of those)"
        )
    if r.classes:  # fitted as a multi-class problem
        mode = r.best_params.get("multiclass", "")
        lines.append(f"  target: {len(r.classes)} classes ({', '.join(r.classes)}), best model {mode}")
        lines.append("  (precision, recall, f1, specificity and the AUCs: macro averages over the classes)")
    elif r.data.get("classes"):  # a multi-class target, binarised by dataset.positive
        positive = (r.data.get("labels") or ["", "?"])[1]
        lines.append(f"  target: {positive!r} against the rest (the target has {r.data['classes']} classes)")
    if r.stop_reason:
        lines.append(f"  stopped early: {r.stop_reason}")
    if r.spend_usd is not None:
        lines.append(f"  cluster spend: {r.spend_usd:.2f} USD (start-up included)")
    # backend names are in MLflow
    shared = ("penalty", "C", "l1_ratio", "solver", "class_weight", "threshold", "multiclass")
    best = {k: v for k, v in r.best_params.items() if k in shared}
    lines.append("  best parameters: " + "  ".join(f"{k}={_fmt(v)}" for k, v in best.items()))
    if r.classes and r.of_class is None:
        lines.append("  decision: the most probable class (argmax; threshold.of_class=CLASS sets a threshold on one)")
    elif r.classes:
        lines.append(f"  threshold ({r.threshold_strategy}) on class {r.of_class!r}: {r.threshold:.4f}")
    else:
        lines.append(f"  threshold ({r.threshold_strategy}): {r.threshold:.4f}")
    keys = ["roc_auc", "pr_auc", "log_loss", "accuracy", "precision", "recall", "f1", "specificity"]
    if r.classes:
        keys += ["balanced_accuracy", "f1_weighted"]
    bayes = r.bayes_metrics or {}
    head = f"  {'metric':<18}{'validation':>12}{'test':>12}"
    lines.append(head + (f"{'Bayes-opt.':>12}{'gap':>10}" if bayes else ""))
    for k in keys:
        test = r.test_metrics.get(k, float("nan"))
        row = f"  {k:<18}{_metric(r.val_metrics.get(k, float('nan'))):>12}{_metric(test):>12}"
        if k in bayes:  # the generating model on the same test rows: no model can beat it (up to noise)
            row += f"{_metric(bayes[k]):>12}{test - bayes[k]:>+10.4f}"
        lines.append(row)
    generated = r.data.get("generated")
    if bayes and generated:
        lines.append(
            f"  Bayes-opt.: the table's true model on the test rows (whole table: log loss "
            f"{_metric(generated.get('bayes_log_loss', float('nan')))}, ROC AUC "
            f"{_metric(generated.get('bayes_roc_auc', float('nan')))})"
        )
    t = r.test_metrics
    if "tp" in t:
        lines.append(f"  test confusion: TP={int(t['tp'])} FP={int(t['fp'])} TN={int(t['tn'])} FN={int(t['fn'])}")
    if r.classes:
        lines += _class_lines(r)
    lines.append(f"  study: {r.storage}")
    if r.parent_run_id:
        lines.append(f"  MLflow: experiment {r.experiment!r}, run {r.parent_run_id} at {r.tracking_uri}")
        lines.append(f"  open them with: {r.ui_command}")
        lines += [f"    {link}" for link in _links(r)]
    else:
        lines.append("  MLflow: tracking off")
    return "\n".join(lines)


def _class_lines(r: SweepResult) -> list[str]:
    """A multi-class sweep's per-class test figures and its K x K test confusion matrix."""
    keys = class_keys(r.classes)
    width = max(8, *(len(c) + 2 for c in r.classes))
    out = [f"  {'test, class':<{width + 4}}" + "".join(f"{m:>12}" for m in PER_CLASS_METRICS)]
    for label, key in zip(r.classes, keys, strict=True):
        values = "".join(f"{_metric(r.test_metrics.get(f'{m}.{key}', math.nan)):>12}" for m in PER_CLASS_METRICS)
        out.append(f"    {label:<{width}}{values}")
    if r.test_confusion and len(r.classes) <= SHOWN_CONFUSION:
        cell = max(7, *(len(c) + 1 for c in r.classes))
        out.append("  test confusion (rows: true class, columns: predicted)")
        out.append(f"    {'':<{width}}" + "".join(f"{c:>{cell}}" for c in r.classes))
        for label, row in zip(r.classes, r.test_confusion, strict=True):
            out.append(f"    {label:<{width}}" + "".join(f"{v:>{cell}}" for v in row))
    elif r.test_confusion:
        out.append("  test confusion: plots/confusion_matrix.png and tables/confusion_matrix.json")
    return out


def _links(r: SweepResult) -> list[str]:
    """Deep links into the MLflow UI, both in its model-training view (MLflow 3.17 opens its GenAI view without
    ``workflowType``): the experiment's runs table, and the sweep's parent run."""
    if not (r.ui_url and r.experiment_id and r.parent_run_id):
        return []
    experiment = f"{r.ui_url}/#/experiments/{r.experiment_id}"
    view = "?workflowType=machine_learning"
    return [f"experiment: {experiment}{view}", f"this sweep: {experiment}/runs/{r.parent_run_id}{view}"]
