"""The report's sections for a target of more than two classes (``PageInputs.classes``): the same page as for a
binary target (``page.py``), its words and tables for K classes: the classes and their rows, macro and per-class
figures, the decision (the most probable class, or a threshold on one class), the K x K confusion matrix, and a
coefficient column per class."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from lrsweep.export.page import (
    COEFFICIENT_ROWS,
    _dl,
    _e,
    _f4,
    _figure,
    _num,
    _pair,
    _params,
    _rows_and_features,
    _section,
    _table,
    threshold_reason,
)
from lrsweep.multiclass import PER_CLASS_METRICS, class_keys

if TYPE_CHECKING:
    from lrsweep.export.page import PageInputs

__all__ = ["answer", "question", "SECTIONS"]

_AVERAGED = ", averaged over the classes."
_MEANINGS = (
    ("accuracy", "Accuracy", "The share of all rows given their true class."),
    ("balanced_accuracy", "Balanced accuracy", "The mean of the recalls: accuracy as if the classes were as common."),
    ("precision", "Precision (macro)", "Of the rows predicted a class, the share that are that class" + _AVERAGED),
    ("recall", "Recall (macro)", "Of each class's rows, the share given that class" + _AVERAGED),
    ("f1", "F1 (macro)", "Each class's harmonic mean of precision and recall" + _AVERAGED),
    ("f1_weighted", "F1 (weighted)", "Each class's F1 weighted by its rows: the common classes count more."),
    ("specificity", "Specificity (macro)", "Of the rows not of a class, the share not given it" + _AVERAGED),
    (
        "roc_auc",
        "ROC AUC (macro)",
        "How well a class's probability ranks its rows above the others' (one class against the rest), averaged "
        "over the classes; 0.5 is chance.",
    ),
    ("pr_auc", "PR AUC (macro)", "Each class's average precision at finding its rows" + _AVERAGED),
    ("log_loss", "Log loss", "How far the predicted class probabilities are from the truth; lower is better."),
)
_PER_CLASS_NAMES = {"precision": "Precision", "recall": "Recall", "f1": "F1", "specificity": "Specificity",
                    "roc_auc": "ROC AUC"}  # fmt: skip


def question(p: PageInputs) -> str:
    shown = ", ".join(_e(c) for c in p.classes)
    return f"Which regularised logistic regression best predicts {_e(p.target)} ({shown})?"


def _rule(p: PageInputs) -> str:
    if p.of_class is None:
        return "each row is predicted its most probable class"
    return (
        f"a row is predicted {_e(p.target)} = {_e(p.of_class)} when that class's probability ≥ {p.threshold:.4f}, "
        "otherwise its most probable other class"
    )


def answer(p: PageInputs) -> str:
    config = ", ".join(f"{k} = {v}" for k, v in _params(p) if k != "threshold")
    mode = p.best_params.get("multiclass")
    how = {"ovr": " (one model per class against the rest)", "multinomial": " (one softmax model)"}.get(str(mode), "")
    shown = [k for k in dict.fromkeys((p.objective, "accuracy", "f1")) if k in p.test_metrics]
    names = {k: n for k, n, _ in _MEANINGS}
    figures = ", ".join(f"{names.get(k, _e(k))} {_f4(p.test_metrics[k])}" for k in shown)
    return f"<strong>Answer:</strong> {config or 'the best configuration below'}{how}; {_rule(p)}." + (
        f" On the held-out test part: {figures}." if figures else ""
    )


def _data(p: PageInputs) -> str:
    rows, features, lists = _rows_and_features(p)
    all_rows = sum(p.class_rows.values())
    classes = ", ".join(
        f"{_e(c)} {p.class_rows[c]:,} ({p.class_rows[c] / all_rows:.1%})" if c in p.class_rows and all_rows else _e(c)
        for c in p.classes
    )
    items = [
        ("Dataset", _e(p.dataset)),
        ("Source", f"<code>{_e(p.source)}</code>"),
        ("Target", f"{_e(p.target)}: {len(p.classes)} classes"),
        ("Classes", classes),
        ("Rows", rows),
        ("Features", features),
    ]
    return _section("data", "The data", _dl(items) + lists)


def _metrics(p: PageInputs) -> str:
    rows = []
    for key, name, meaning in _MEANINGS:
        if key not in p.val_metrics and key not in p.test_metrics:
            continue
        label = f"{name} <span class=tag>objective</span>" if key == p.objective else name
        rows.append((label, _f4(p.val_metrics.get(key)), _f4(p.test_metrics.get(key)), _e(meaning)))
    table = _table(rows, ("Metric", "Validation", "Test", "What it means here"), ' id="metrics"')
    keys = class_keys(p.classes)
    per = [
        (_e(c), *(_f4(p.test_metrics.get(f"{m}.{k}")) for m in PER_CLASS_METRICS), f"{p.class_rows.get(c, 0):,}")
        for c, k in zip(p.classes, keys, strict=True)
    ]
    head = ("Class (test)", *(_PER_CLASS_NAMES[m] for m in PER_CLASS_METRICS), "Rows (all)")
    per_table = _table(per, head, ' id="per-class"')
    note = (
        '<p class="small">Validation chose the model; test was scored once, at the end. Macro averages weigh every '
        "class alike; a class's ROC AUC is its probability ranking its rows above all others'.</p>"
    )
    return _section("metrics", "How well it predicts", table + "<h3>Per class, on test</h3>" + per_table + note)


def _decision(p: PageInputs) -> str:
    if p.of_class is None:
        text = (
            '<p class="big">The most probable class <span class=tag>argmax</span></p>'
            f"<p><strong>Rule:</strong> {_rule(p)}. No threshold: the model's {len(p.classes)} class probabilities "
            "sum to 1 and the largest wins.</p>"
        )
        return _section("threshold", "The decision", text)
    reason = threshold_reason(p.threshold_strategy, p.threshold_settings, None)
    text = (
        f'<p class="big">Threshold <strong>{p.threshold:.4f}</strong> on class <strong>{_e(p.of_class)}</strong> '
        f"<span class=tag>{_e(p.threshold_strategy)}</span></p>"
        f"<p><strong>Why:</strong> {reason} (for {_e(p.of_class)} against the other classes)</p>"
        f"<p><strong>Rule:</strong> {_rule(p)}.</p>"
    )
    figure = _figure(
        p.images, "metric_vs_threshold", f"Metrics of {_e(p.of_class)} against the threshold, on validation"
    )
    return _section("threshold", "The decision", _pair(f"<div>{text}</div>", figure))


def _confusion(p: PageInputs) -> str:
    figure = _figure(p.images, "confusion_matrix", "Confusion matrix on test")
    if not p.confusion:
        return _section("confusion", "Confusion matrix", figure)
    rows = [
        (f"actually {_e(c)}", *(f"<strong>{v:,}</strong>" if i == j else f"{v:,}" for j, v in enumerate(row)))
        for i, (c, row) in enumerate(zip(p.classes, p.confusion, strict=True))
    ]
    table = _table(rows, (_e(p.target), *(f"predicted {_e(c)}" for c in p.classes)), ' id="confusion" class="cmk"')
    right = sum(p.confusion[i][i] for i in range(len(p.classes)))
    total = sum(map(sum, p.confusion))
    worst = max(
        ((p.confusion[i][j], i, j) for i in range(len(p.classes)) for j in range(len(p.classes)) if i != j),
        default=(0, 0, 0),
    )
    reading = f"<p>{right:,} of the {total:,} test rows get their true class (bold: the diagonal).</p>"
    if worst[0]:
        reading += (
            f"<p>The most frequent mistake: {worst[0]:,} {_e(p.classes[worst[1]])} row(s) predicted "
            f"{_e(p.classes[worst[2]])}.</p>"
        )
    return _section("confusion", "Confusion matrix", _pair(f"<div>{table}{reading}</div>", figure))


def _curves(p: PageInputs) -> str:
    roc = _figure(p.images, "roc_curve", "ROC curve of each class against the rest, on test")
    pr = _figure(p.images, "pr_curve", "Precision-recall curve of each class against the rest, on test")
    return _section("curves", "ROC and precision-recall curves, one per class", _pair(roc, pr))


def _coefficients(p: PageInputs) -> str:
    title = "Coefficients, one column per class"
    table = p.coefficients
    cols = [f"coefficient.{c}" for c in p.classes]
    if table is None or table.empty or any(c not in table.columns for c in cols):
        return _section("coefficients", title, '<p class="missing">No coefficient table was logged for this run.</p>')
    intercept, rest = table.iloc[:1], table.iloc[1:]
    size = rest[cols].abs().max(axis=1)
    top = rest.reindex(size.sort_values(ascending=False, kind="stable").index)
    shown = pd.concat([intercept, top.head(COEFFICIENT_ROWS)])
    rows = [
        (*(_e("" if pd.isna(r.get(c)) else r.get(c)) for c in ("feature", "level", "scale")),
         *(_num(r[c]) for c in cols))
        for _, r in shown.iterrows()
    ]  # fmt: skip
    mode = p.best_params.get("multiclass")
    against = "the rest" if mode == "ovr" else "the classes' average (softmax)"
    explain = (
        f"<p>A positive coefficient raises a class's score against {against} for one unit more (numeric: one standard "
        "deviation) or for being that level; exp(coefficient), in coefficients.csv as odds_ratio.&lt;class&gt;, is "
        "the factor on its odds. Rows are sorted by their largest |coefficient| over the classes.</p>"
    )
    left = len(rest) - min(len(rest), COEFFICIENT_ROWS)
    note = (
        f'<p class="note">{left:,} more row(s) with smaller coefficients are left off; the bundle\'s coefficients.csv '
        "lists them all.</p>"
        if left
        else ""
    )
    body = _table(rows, ("Feature", "Level", "Scale", *(_e(c) for c in p.classes)), ' id="coefficients-k"')
    return _section("coefficients", title, explain + body + note)


SECTIONS = (_data, _metrics, _decision, _confusion, _curves, _coefficients)
