"""The one-page report of an exported sweep: ``report.html``, and ``report.pdf`` through a headless Chromium.

The page is meant for someone who never opens MLflow: it states the question, the data, every metric in plain
words for this target's positive class, why the decision threshold is where it is, the plots, the coefficients
and the search. It is one self-contained file (CSS inline, images as ``data:`` URIs, no script, nothing
loaded from a network), so it opens offline, survives e-mail and prints. :func:`render` is a pure function of
:class:`PageInputs`; :func:`write_pdf` is the only part that runs anything.
"""

from __future__ import annotations

import base64
import html
import logging
import math
import numbers
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lrsweep.errors import LrsweepError
from lrsweep.redact import redact_uri

__all__ = ["PageInputs", "render", "find_chromium", "write_pdf", "COEFFICIENT_ROWS"]

log = logging.getLogger("lrsweep")

COEFFICIENT_ROWS = 25  # the largest |coefficient| rows shown (plus the intercept); the bundle's CSV has all
_PNG = b"\x89PNG\r\n\x1a\n"
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


@dataclass
class PageInputs:
    """Everything the page shows, gathered by the bundle from the exported run."""

    title: str
    question: str
    dataset: str
    source: str
    target: str
    positive: str
    negative: str
    rows: dict[str, int]
    positive_rate: float
    features: dict[str, list[str]]
    backend: str
    objective: str
    best_value: float
    threshold: float
    threshold_strategy: str
    threshold_settings: dict[str, Any]
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    best_params: dict[str, Any]
    trials: dict[str, int]
    coefficients: pd.DataFrame | None
    images: dict[str, bytes]
    run_id: str
    created: str
    versions: dict[str, str]
    command: str
    # a target of more than two classes (export/page_classes.py): its labels, rows per class, the class a
    # threshold is on (None: the most probable class), and the K x K test confusion matrix (rows: true class)
    classes: list[str] = field(default_factory=list)
    class_rows: dict[str, int] = field(default_factory=dict)
    of_class: str | None = None
    confusion: list[list[int]] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------------
# formatting


def _e(value: Any) -> str:
    return html.escape(str(value))


def _finite(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)  # numpy numbers too


def _f4(v: Any) -> str:
    """A metric: four decimals, "n/a" for missing or NaN."""
    if v is None or (isinstance(v, numbers.Real) and math.isnan(v)):
        return "n/a"
    return f"{v:.4f}" if _finite(v) else _e(v)


def _g(v: Any) -> str:
    """A setting as a person writes it: 0.8, 5, 0.05, inf."""
    return f"{v:.4g}" if isinstance(v, float) else _e(v)


def _count(v: Any) -> int | None:
    return int(v) if _finite(v) else None


def _num(v: Any) -> str:
    """A coefficient or odds ratio: four decimals unless the value is huge or tiny."""
    if not _finite(v):
        return _f4(v)
    return f"{v:.4f}" if v == 0 or 1e-4 <= abs(v) < 1e5 else f"{v:.3e}"


# ---------------------------------------------------------------------------------------------------------------
# plain words


def _class(p: PageInputs, label: str) -> str:
    return f"{_e(p.target)} = {_e(label)}"


def _of(num: int | None, den: int | None, text: str) -> str:
    return f" On test: {num:,} of {den:,} {text}." if num is not None and den else ""


def _metric_rows(p: PageInputs) -> list[tuple[str, str, str]]:
    """(key, name, meaning) per metric, the meaning in words of this target and positive class."""
    yes, no, pos, neg = _class(p, p.positive), _class(p, p.negative), _e(p.positive), _e(p.negative)
    tp, fp, tn, fn = (_count(p.test_metrics.get(k)) for k in ("tp", "fp", "tn", "fn"))

    def add(*counts: int | None) -> int | None:
        return None if None in counts else sum(c for c in counts if c is not None)

    rate = p.positive_rate
    chance = f"; a model that scores at random gets about {rate:.4f}, the positive rate" if _finite(rate) else ""
    constant = ""
    if _finite(rate) and 0 < rate < 1:
        base = -(rate * math.log(rate) + (1 - rate) * math.log(1 - rate))
        constant = f"; predicting the positive rate for every row scores {base:.4f}"
    return [
        (
            "accuracy",
            "Accuracy",
            "The share of all rows classified correctly (misleading when one class is rare)."
            + _of(add(tp, tn), add(tp, tn, fp, fn), "rows were right"),
        ),
        (
            "precision",
            "Precision",
            f"Of the rows predicted {yes}, the share that really are {pos}."
            + _of(tp, add(tp, fp), f"predicted {pos} were {pos}"),
        ),
        (
            "recall",
            "Recall (sensitivity)",
            f"Of the real {yes} rows, the share the model finds." + _of(tp, add(tp, fn), f"{pos} rows were found"),
        ),
        (
            "specificity",
            "Specificity",
            f"Of the real {no} rows, the share the model correctly leaves out."
            + _of(tn, add(tn, fp), f"{neg} rows were left out"),
        ),
        ("f1", "F1", "The harmonic mean of precision and recall: high only when both are."),
        (
            "balanced_accuracy",
            "Balanced accuracy",
            f"The mean of recall and specificity: accuracy as if {pos} and {neg} were equally common.",
        ),
        (
            "roc_auc",
            "ROC AUC",
            f"How well the scores rank a random {pos} row above a random {neg} row; 0.5 is chance, 1 is perfect "
            "(no threshold involved).",
        ),
        (
            "pr_auc",
            "PR AUC",
            f"Average precision over every recall level, for finding the {pos} rows{chance}.",
        ),
        (
            "log_loss",
            "Log loss",
            f"How far the predicted probabilities of {pos} are from the truth; lower is better{constant}.",
        ),
    ]


def _direction(objective: str) -> str:
    return "minimised" if objective in ("log_loss", "brier", "cost") else "maximised"


def threshold_reason(strategy: str, settings: dict[str, Any], val: dict[str, float] | None = None) -> str:
    """Why the threshold is where it is, in one sentence (HTML-escaped), from the strategy and its settings."""

    def knob(key: str, fmt: str = "g") -> str:
        v = settings.get(key)
        return format(v, fmt) if _finite(v) else "the configured value"

    val = val or {}
    if strategy == "f1":
        return "The threshold with the best F1 on validation (precision and recall weighed equally)."
    if strategy == "youden":
        return "The threshold with the largest recall − false-positive rate (Youden's J) on validation."
    if strategy == "recall_at":
        text = f"The best precision among thresholds keeping validation recall ≥ {knob('min_recall', '.2f')}."
        return text + _missed(val.get("recall"), settings.get("min_recall"), "recall")
    if strategy == "precision_at":
        text = f"The best recall among thresholds with validation precision ≥ {knob('min_precision', '.2f')}."
        return text + _missed(val.get("precision"), settings.get("min_precision"), "precision")
    if strategy == "cost":
        return (
            f"The least expected cost with a false positive costing {knob('cost_fp')} and a false negative "
            f"{knob('cost_fn')} on validation."
        )
    if strategy == "fixed":
        return f"Fixed in the config at {knob('value')}, not tuned on the data."
    if strategy == "searched":
        return (
            f"Searched by Optuna like any parameter, in [{knob('low')}, {knob('high')}]: the best trial's own "
            "threshold."
        )
    return f"Chosen by the {_e(strategy)} strategy on validation."


def _missed(reached: Any, floor: Any, name: str) -> str:
    """The note when a floor could not be met on validation (the strategy then takes the closest point)."""
    if _finite(reached) and _finite(floor) and reached < floor - 1e-9:
        return f" No threshold reached that {name} on validation; the closest one ({reached:.4f}) was used."
    return ""


# ---------------------------------------------------------------------------------------------------------------
# pieces of the page


_NAMES = {
    "roc_curve": "ROC curve of the best model on test",
    "pr_curve": "precision-recall curve of the best model on test",
    "confusion_matrix": "confusion matrix on test at the chosen threshold",
    "metric_vs_threshold": "precision, recall, F1 and specificity against the threshold on validation",
    "optimization_history": "optimisation history: objective value of every trial",
    "param_importances": "hyperparameter importances of the search",
}


def _figure(images: dict[str, bytes], key: str, caption: str = "") -> str:
    """The image as an embedded PNG, or a note saying it is not there (never a broken <img>)."""
    data = images.get(key) or b""
    name = _NAMES.get(key, key.replace("_", " "))
    if not data:
        return f'<p class="missing">The {_e(name)} was not logged for this run.</p>'
    if not data.startswith(_PNG):
        return f'<p class="missing">The {_e(name)} is not a PNG image, so it is left out.</p>'
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return (
        f'<figure><img src="{src}" alt="{_e(name[0].upper() + name[1:])}" width="{width}" height="{height}">'
        f"{cap}</figure>"
    )


def _table(rows: Sequence[tuple[str, ...]], head: tuple[str, ...], attrs: str = "") -> str:
    """An HTML table of already-escaped cells."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table{attrs}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _section(name: str, title: str, body: str) -> str:
    return f'<section id="sec-{name}"><h2>{title}</h2>{body}</section>'


def _pair(*parts: str) -> str:
    """Side by side on a wide screen and on paper, one above the other on a narrow screen."""
    return f'<div class="pair">{"".join(parts)}</div>'


def _dl(items: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def _question(p: PageInputs) -> str:
    if p.question.strip():
        return _e(p.question.strip())
    return f"Which regularised logistic regression best predicts {_class(p, p.positive)}?"


_READABLE = ("penalty", "C", "l1_ratio", "solver", "class_weight", "threshold", "max_iter", "tol")


def _params(p: PageInputs) -> list[tuple[str, str]]:
    """The chosen configuration in the shared vocabulary (l1_ratio only where it means something)."""
    out = []
    for key in _READABLE:
        v = p.best_params.get(key)
        if v is None or v == "" or (key == "l1_ratio" and p.best_params.get("penalty") not in (None, "elasticnet")):
            continue
        out.append((_e(key), "inf (no penalty)" if key == "C" and str(v) == "inf" else _g(v)))
    return out


def _answer(p: PageInputs) -> str:
    """The result in one sentence, under the question."""
    config = ", ".join(f"{k} = {v}" for k, v in _params(p) if k != "threshold")
    names = {key: name.split(" (")[0] for key, name, _ in _metric_rows(p)}
    names = {k: n if n.split()[0].isupper() else n.lower() for k, n in names.items()}  # ROC AUC, F1, precision
    shown = [k for k in (p.objective, "precision", "recall") if k in p.test_metrics]
    figures = ", ".join(f"{names.get(k, _e(k))} {_f4(p.test_metrics[k])}" for k in dict.fromkeys(shown))
    return (
        f"<strong>Answer:</strong> {config or 'the best configuration below'}; a row is predicted "
        f"{_class(p, p.positive)} when its score ≥ {p.threshold:.4f}."
        + (f" On the held-out test part: {figures}." if figures else "")
    )


def _names(columns: list[str], limit: int = 40) -> str:
    shown = ", ".join(_e(c) for c in columns[:limit])
    return shown + (f" and {len(columns) - limit} more" if len(columns) > limit else "")


def _rows_and_features(p: PageInputs) -> tuple[str, str, str]:
    """The data section's rows (per part), features (per kind) and lists of feature names, for any target."""
    parts = " · ".join(f"{_e(k)} {v:,}" for k, v in p.rows.items())
    features = [(k, v) for k, v in p.features.items() if v]
    counts = ", ".join(f"{len(v)} {_e(k)}" for k, v in features) or "none listed"
    lists = "".join(f'<p class="small"><em>{_e(k)}:</em> {_names(v)}</p>' for k, v in features)
    return f"{sum(p.rows.values()):,} ({parts})", f"{sum(len(v) for _, v in features)} ({counts})", lists


def _data(p: PageInputs) -> str:
    rows, features, lists = _rows_and_features(p)
    rate = f"{p.positive_rate:.1%} of all rows are {_class(p, p.positive)}" if _finite(p.positive_rate) else "n/a"
    items = [
        ("Dataset", _e(p.dataset)),
        ("Source", f"<code>{_e(p.source)}</code>"),
        ("Target", f"{_e(p.target)}: positive class {_e(p.positive)}, negative {_e(p.negative)}"),
        ("Rows", rows),
        ("Positive rate", rate),
        ("Features", features),
    ]
    return _section("data", "The data", _dl(items) + lists)


def _metrics(p: PageInputs) -> str:
    known = _metric_rows(p)
    keys = {k for k, _, _ in known}
    extra = [(k, _e(k), "") for k in {**p.val_metrics, **p.test_metrics} if k not in keys | {"tp", "fp", "tn", "fn"}]
    rows = []
    for key, name, meaning in known + extra:
        if key not in p.val_metrics and key not in p.test_metrics:
            continue
        label = f"{name} <span class=tag>objective</span>" if key == p.objective else name
        rows.append((label, _f4(p.val_metrics.get(key)), _f4(p.test_metrics.get(key)), meaning))
    table = _table(rows, ("Metric", "Validation", "Test", "What it means here"), ' id="metrics"')
    note = (
        f'<p class="small">Validation chose the model and the threshold; test was scored once, at the end, with both '
        f"fixed. The threshold-based metrics use threshold {p.threshold:.4f}.</p>"
    )
    return _section("metrics", "How well it predicts", table + note)


def _threshold(p: PageInputs) -> str:
    reason = threshold_reason(p.threshold_strategy, p.threshold_settings, p.val_metrics)
    text = (
        f'<p class="big">Threshold <strong>{p.threshold:.4f}</strong> '
        f"<span class=tag>{_e(p.threshold_strategy)}</span></p>"
        f"<p><strong>Why:</strong> {reason}</p>"
        f"<p><strong>Rule:</strong> a row is predicted {_class(p, p.positive)} when its score ≥ {p.threshold:.4f}, "
        f"otherwise {_class(p, p.negative)}. The score is the model's probability of {_e(p.positive)}.</p>"
        '<p class="small">The dashed line in the plot marks the chosen threshold; moving it right trades recall for '
        "precision.</p>"
    )
    figure = _figure(p.images, "metric_vs_threshold", "Metrics against the threshold, on validation")
    return _section("threshold", "The decision threshold", _pair(f"<div>{text}</div>", figure))


def _confusion(p: PageInputs) -> str:
    tp, fp, tn, fn = (_count(p.test_metrics.get(k)) for k in ("tp", "fp", "tn", "fn"))

    def cell(tag: str, v: int | None, what: str) -> str:
        return (
            f"<span class=tag>{tag}</span> <strong>{'n/a' if v is None else f'{v:,}'}</strong><br><small>{what}</small>"
        )

    pos, neg = _e(p.positive), _e(p.negative)
    rows = [  # laid out as the plot (scikit-learn's ConfusionMatrixDisplay): the negative class first
        (
            f"actually {neg}",
            cell("TN", tn, f"{neg} rows predicted {neg}"),
            cell("FP", fp, f"{neg} rows predicted {pos} (false alarms)"),
        ),
        (
            f"actually {pos}",
            cell("FN", fn, f"{pos} rows missed (predicted {neg})"),
            cell("TP", tp, f"{pos} rows predicted {pos}"),
        ),
    ]
    table = _table(rows, (_e(p.target), f"predicted {neg}", f"predicted {pos}"), ' id="confusion" class="cm"')
    reading = ""
    if tp is not None and fp is not None and tn is not None and fn is not None:
        reading = (
            f"<p>Of the {tp + fn:,} real {pos} rows in test, {tp:,} are caught and {fn:,} missed; {fp:,} of the "
            f"{tn + fp:,} {neg} rows are flagged {pos} by mistake.</p>"
        )
    note = (
        f'<p class="small">Test rows at threshold {p.threshold:.4f}. In the plot, <em>pos</em> is {pos} and '
        f"<em>neg</em> is {neg}.</p>"
    )
    figure = _figure(p.images, "confusion_matrix", "Confusion matrix on test")
    return _section("confusion", "Confusion matrix", _pair(f"<div>{table}{reading}{note}</div>", figure))


def _curves(p: PageInputs) -> str:
    roc = _figure(p.images, "roc_curve", "ROC curve on test: recall against false-positive rate over all thresholds")
    pr = _figure(p.images, "pr_curve", f"Precision-recall curve on test, for finding {_class(p, p.positive)}")
    return _section("curves", "ROC and precision-recall curves", _pair(roc, pr))


def _coefficients(p: PageInputs) -> str:
    title = "Coefficients and odds ratios"
    table = p.coefficients
    if table is None or table.empty:
        return _section("coefficients", title, '<p class="missing">No coefficient table was logged for this run.</p>')
    intercept, rest = table.iloc[:1], table.iloc[1:]
    top = rest.reindex(rest["coefficient"].abs().sort_values(ascending=False, kind="stable").index)
    shown = pd.concat([intercept, top.head(COEFFICIENT_ROWS)])
    cols = ("feature", "level", "scale")
    rows = [
        (*(_e("" if pd.isna(r.get(c)) else r.get(c)) for c in cols), _num(r["coefficient"]), _num(r["odds_ratio"]))
        for _, r in shown.iterrows()
    ]
    left = len(rest) - min(len(rest), COEFFICIENT_ROWS)
    explain = (
        f"<p>The odds ratio multiplies the odds of {_class(p, p.positive)} by this for one unit (numeric: one "
        "standard deviation) more; for a one-hot level, for being that level. Above 1 pushes towards "
        f"{_e(p.positive)}, below 1 towards {_e(p.negative)}. Rows are sorted by |coefficient|.</p>"
    )
    note = (
        f'<p class="note">{left:,} more coefficient(s) with smaller |coefficient| are left off; the bundle\'s '
        "coefficients.csv lists them all.</p>"
        if left
        else ""
    )
    body = _table(rows, ("Feature", "Level", "Scale", "Coefficient", "Odds ratio"), ' id="coefficients"')
    return _section("coefficients", title, explain + body + note)


def _search(p: PageInputs) -> str:
    states = " · ".join(f"{_e(k.lower())} {v:,}" for k, v in p.trials.items())
    finished = sum(p.trials.values())
    items = [
        ("Backend", _e(p.backend)),
        ("Trials", f"{finished:,} ({states})" if p.trials else "n/a"),
        ("Objective", f"{_e(p.objective)} on validation, {_direction(p.objective)}"),
        ("Best value", f"<strong>{_f4(p.best_value)}</strong>"),
    ]
    config = _table(_params(p), ("Parameter", "Best value")) if _params(p) else ""
    history = _figure(p.images, "optimization_history", "Objective value of every trial, and the best so far")
    importances = _figure(p.images, "param_importances", "Which hyperparameters mattered to the objective")
    details = _pair(f"<div>{_dl(items)}</div>", f"<div>{config}</div>")
    return _section("search", "The search", details + _pair(history, importances))


def _footer(p: PageInputs) -> str:
    versions = " · ".join(f"{_e(k.removesuffix('.version'))} {_e(v)}" for k, v in p.versions.items())
    items = [
        ("MLflow run", f"<code>{_e(p.run_id)}</code>"),
        ("Created", _e(p.created)),
        ("Versions", versions or "n/a"),
        ("Reproduce", f"<code>{_e(p.command)}</code>"),
    ]
    return f'<footer id="footer">{_dl(items)}</footer>'


_CSS = """
:root { --ink: #1d2430; --muted: #5b6575; --line: #d8dde5; --soft: #f3f5f8; --accent: #2458a6; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font: 14px/1.45 system-ui, -apple-system, "Segoe UI",
  Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 12px; }
header { border-bottom: 3px solid var(--accent); padding-bottom: 10px; margin-bottom: 6px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h1 small { color: var(--muted); font-weight: normal; font-size: 14px; }
h2 { font-size: 17px; margin: 22px 0 8px; padding-bottom: 3px; border-bottom: 1px solid var(--line); }
.question { font-size: 17px; margin: 6px 0; }
.big { font-size: 17px; margin: 4px 0 8px; }
.small, figcaption, .note, .missing { color: var(--muted); font-size: 12px; }
.missing { border: 1px dashed var(--line); padding: 10px; border-radius: 4px; }
.note { font-style: italic; }
.tag { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 8px; background: #e4ecf8;
  color: var(--accent); font-weight: 600; vertical-align: 1px; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--soft);
  padding: 1px 4px; border-radius: 3px; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
#metrics td:nth-child(2), #metrics td:nth-child(3), #coefficients td:nth-child(4),
#coefficients td:nth-child(5) { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
#metrics td:first-child { white-space: nowrap; font-weight: 600; }
table.cm td { text-align: center; width: 36%; }
#confusion.cmk td, #per-class td, #coefficients-k td { text-align: right; font-variant-numeric: tabular-nums; }
#confusion.cmk td:first-child, #per-class td:first-child, #coefficients-k td:nth-child(-n+3) { text-align: left; }
h3 { font-size: 14px; margin: 14px 0 6px; }
table.cm td:first-child { text-align: left; font-weight: 600; width: 28%; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 0; }
dt { color: var(--muted); }
dd { margin: 0; }
.pair { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 18px;
  align-items: start; margin-top: 8px; }
figure { margin: 0; text-align: center; }
img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
footer { max-width: 1180px; margin: 20px auto 0; padding: 10px 28px 24px; border-top: 1px solid var(--line);
  color: var(--muted); font-size: 12px; }
@page { size: A4; margin: 12mm; }
@media print {
  body { font-size: 10.5px; }
  main, footer { max-width: none; padding: 0; }
  h1 { font-size: 19px; }
  h2 { font-size: 13.5px; margin-top: 12px; break-after: avoid; }
  .question, .big { font-size: 13px; }
  .small, figcaption, .note, .missing, footer, code { font-size: 9px; }
  table { font-size: 10px; }
  th, td { padding: 2px 5px; }
  .pair { grid-template-columns: 1fr 1fr; gap: 10px; }
  img { max-height: 72mm; width: auto; }
  figure, tr, dl, .pair > div { break-inside: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""


def render(inputs: PageInputs) -> str:
    """The whole HTML document of the report: no I/O, nothing that needs a network to display."""
    p = inputs
    question, answer = _question(p), _answer
    sections: Sequence[Any] = (_data, _metrics, _threshold, _confusion, _curves, _coefficients, _search)
    if p.classes:  # a target of more than two classes: its own sections, the same search and footer
        from lrsweep.export import page_classes

        question = _e(p.question.strip()) if p.question.strip() else page_classes.question(p)
        answer, sections = page_classes.answer, (*page_classes.SECTIONS, _search)
    header = (
        f"<header><h1>{_e(p.title)} <small>a logistic regression sweep, {_e(p.dataset)}</small></h1>"
        f'<p class="question" id="sec-question"><strong>Question:</strong> {question}</p>'
        f"<p>{answer(p)}</p></header>"
    )
    body = header + "".join(section(p) for section in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(p.title)}: sweep report</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main>{_footer(p)}</body></html>\n"
    )


# ---------------------------------------------------------------------------------------------------------------
# PDF


def find_chromium() -> str | None:
    """The Chromium to print with: $LRSWEEP_CHROMIUM if set (None when it names no executable), else the first
    of chromium, chromium-browser, google-chrome on PATH."""
    chosen = os.environ.get("LRSWEEP_CHROMIUM")
    if chosen:
        found = shutil.which(chosen)
        if not found:
            log.warning("LRSWEEP_CHROMIUM=%s is not an executable; no PDF", redact_uri(chosen))
        return found
    return next((path for name in _CHROMIUM_NAMES if (path := shutil.which(name))), None)


# [pid:tid:date:LEVEL:file(line)] prefix of Chromium's log lines
_LOG_PREFIX = re.compile(r"^\[[^\]]*:(?P<level>[A-Z]+):(?P<source>[^\]]*)\]\s*")


def _last_useful(stderr: str) -> str:
    """Chromium's last error line that is not noise (D-Bus is absent in containers and says so many times)."""
    errors, others = [], []
    for line in stderr.splitlines():
        line = line.strip()
        m = _LOG_PREFIX.match(line)
        if not line or (m and m["source"].startswith("dbus/")):
            continue
        if m and m["level"] in ("ERROR", "FATAL"):
            errors.append(line[m.end() :])
        elif not m:
            others.append(line)
    return redact_uri((errors or others or [""])[-1])


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run in its own process group, so a timeout ends Chromium's helper processes too."""
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as proc:
        try:
            _, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(command, proc.returncode, "", stderr)


def write_pdf(html: Path, pdf: Path, chromium: str | None = None, timeout: float = 120) -> bool:
    """Print ``html`` to ``pdf`` with headless Chromium. False when there is no Chromium; an LrsweepError when it
    ran and made no PDF. The PDF is printed under a temporary name beside ``pdf`` and renamed, so a failed or
    interrupted print never leaves a half-written ``pdf``."""
    chromium = chromium or find_chromium()
    if chromium is None:
        return False
    pdf = Path(pdf).resolve()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{pdf.stem}-", suffix=".pdf.part", dir=pdf.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-pdf-header-footer",
        f"--print-to-pdf={tmp}",
        Path(html).resolve().as_uri(),
    ]
    fix = "check that Chromium runs (`chromium --headless --version`), or set LRSWEEP_CHROMIUM to another one"
    try:
        try:
            proc = _run(command, timeout)
        except subprocess.TimeoutExpired:
            raise LrsweepError(f"Chromium did not print {pdf.name} within {timeout:g} s", fix) from None
        except OSError as exc:
            raise LrsweepError(f"could not start Chromium {redact_uri(chromium)}: {exc.strerror or exc}", fix) from None
        with tmp.open("rb") as f:
            ok = f.read(4) == b"%PDF"
        if proc.returncode != 0 or not ok:
            why = _last_useful(proc.stderr) or f"exit code {proc.returncode}, no PDF written"
            raise LrsweepError(f"Chromium could not print {pdf.name}: {why}", fix)
        os.replace(tmp, pdf)
        return True
    finally:
        tmp.unlink(missing_ok=True)
