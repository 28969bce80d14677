"""``lrsweep compare``: the sweeps an MLflow store holds, side by side, as a text table, CSV or Markdown.

It only reads what sweeps logged, so it composes no config and never sees Hydra. One row per parent run
(tag ``lrsweep.kind=sweep``); the trial counts come from the child runs, fetched in one paginated query per
experiment and grouped by ``mlflow.parentRunId`` (one query per parent would cost a round trip per sweep).
``rows``, ``sort_rows`` and the formatters are pure functions of run objects (anything shaped like MLflow's
``Run``: ``info`` and ``data``), tested without a store; ``read_store`` is the one function that reads MLflow,
which it imports only when called (importing mlflow costs over a second).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from lrsweep.config import METRIC_DIRECTIONS
from lrsweep.errors import LrsweepError, OneLineParser
from lrsweep.planning.budget import SPEND_METRIC
from lrsweep.recorded import PARENT_TAG
from lrsweep.tracking import KIND_TAG, STUDY_TAG, _calls

__all__ = ["Store", "columns", "rows", "sort_rows", "as_table", "as_csv", "as_markdown", "read_store", "main"]

STATE_TAG = "lrsweep.state"  # a child's Optuna state: COMPLETE / PRUNED / FAIL
# a child without the state tag: its run status says the same (tracking.RUN_STATUS, inverted)
_STATE_OF_STATUS = {"FINISHED": "COMPLETE", "KILLED": "PRUNED", "FAILED": "FAIL"}

# the test metrics every sweep logs, in the order of the sweep's summary; then the confusion counts
TEST_METRICS = (
    "roc_auc", "pr_auc", "log_loss", "accuracy", "balanced_accuracy", "precision", "recall", "f1", "specificity",
)  # fmt: skip
TEST_COUNTS = ("tp", "fp", "tn", "fn")
_HEAD = ("experiment", "sweep", "backend", "dataset", "complete", "pruned", "failed", "objective", "best_val")
_TAIL = (
    "threshold_strategy", "threshold", "wall_seconds", "wall_partial", "cost_usd", "calls", "status", "started",
    "search", "seed", "cv_folds", "study", "run_id",
)  # fmt: skip

# sort directions: what is better (or newer, or more) first
_ASCENDING = {"wall_seconds", "cost_usd", "pruned", "failed", "wall_partial", "threshold", "seed", "cv_folds"}
_ASCENDING |= {f"test_{m}" for m, d in METRIC_DIRECTIONS.items() if d == "minimize"} | {"test_fp", "test_fn"}
_NUMERIC = {"complete", "pruned", "failed", "best_val", "threshold", "wall_seconds", "cost_usd", "calls"}
_NUMERIC |= {"seed", "cv_folds"}
# the text table's headers that are not column names
_ALIASES = {"trials": "complete", "wall": "wall_seconds", "usd": "cost_usd", "cost": "cost_usd"}
_ALIASES |= {"prec": "test_precision", "acc": "test_accuracy"}

WIDTH = 120  # the text table's target width


def columns(table: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    """The columns of ``rows``'s output, in order: every sweep's test metrics, any extra ``test_*`` last among them."""
    known = [f"test_{m}" for m in (*TEST_METRICS, *TEST_COUNTS)]
    extra = sorted({k for r in table for k in r if k.startswith("test_")} - set(known))
    return [*_HEAD, *known, *extra, *_TAIL]


# -- rows -----------------------------------------------------------------------------------------------------
def trial_counts(children: Iterable[Any]) -> dict[str, Counter[str]]:
    """Parent run id -> Counter of its children's states (COMPLETE, PRUNED, FAIL); unfinished children skipped."""
    out: dict[str, Counter[str]] = {}
    for child in children:
        tags = child.data.tags
        parent = tags.get(PARENT_TAG)
        state = tags.get(STATE_TAG) or _STATE_OF_STATUS.get(child.info.status)
        if parent and child.info.status != "RUNNING" and state:
            out.setdefault(parent, Counter())[state] += 1
    return out


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _integer(value: Any) -> int | str | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return str(value)


def _row(run: Any, counts: Counter[str], experiment: str, test_keys: Sequence[str]) -> dict[str, Any]:
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    objective = params.get("objective.metric")
    calls = _calls(tags)
    walls = [_number(c.get("wall_seconds")) for c in calls.values()]
    timed = [w for w in walls if w is not None]
    best = metrics.get(f"val_{objective}", metrics.get(f"best_val_{objective}")) if objective else None
    threshold = metrics.get("threshold", _number(tags.get("lrsweep.threshold")))
    start = run.info.start_time
    row: dict[str, Any] = {
        "experiment": experiment,
        "sweep": run.info.run_name or tags.get("mlflow.runName", ""),
        "backend": tags.get("lrsweep.backend"),
        "dataset": tags.get("lrsweep.dataset"),
        "complete": counts["COMPLETE"],
        "pruned": counts["PRUNED"],
        "failed": counts["FAIL"],
        "objective": objective,
        "best_val": _number(best),
    }
    row |= {k: _number(metrics.get(k)) for k in test_keys}
    row |= {k: int(row[k]) for k in (f"test_{c}" for c in TEST_COUNTS) if row.get(k) is not None}  # counts
    row |= {
        "threshold_strategy": params.get("threshold.strategy"),
        "threshold": _number(threshold),
        "wall_seconds": sum(timed) if timed else None,
        "wall_partial": len(timed) < len(walls),  # a call without its time (killed, or still running)
        "cost_usd": _number(metrics.get(SPEND_METRIC)),
        "calls": len(calls),
        "status": run.info.status,
        "started": datetime.fromtimestamp(start / 1000).strftime("%Y-%m-%d %H:%M:%S") if start else None,
        "search": params.get("search.name"),
        "seed": _integer(params.get("seed")),
        "cv_folds": _integer(params.get("cv.folds")),
        "study": tags.get(STUDY_TAG),
        "run_id": run.info.run_id,
    }
    return row


def rows(runs: Iterable[Any], children: Iterable[Any], experiments: Mapping[str, str] | None = None) -> list[dict]:
    """One dict per parent run (keys: ``columns``), newest first. ``children`` are the trials' runs of the same
    experiments, in any order; ``experiments`` maps an experiment id to its name."""
    runs = [r for r in runs if r.data.tags.get(KIND_TAG, "sweep") == "sweep"]
    counts = trial_counts(children)
    logged = dict.fromkeys(k for r in runs for k in r.data.metrics)
    test_keys = [c for c in columns([logged]) if c.startswith("test_")]
    names = experiments or {}
    runs.sort(key=lambda r: r.info.start_time or 0, reverse=True)
    return [
        _row(r, counts.get(r.info.run_id, Counter()), names.get(r.info.experiment_id, r.info.experiment_id), test_keys)
        for r in runs
    ]


# -- sorting --------------------------------------------------------------------------------------------------
def sort_column(name: str, table: Sequence[Mapping[str, Any]] = ()) -> str:
    """The column ``--sort NAME`` means (a column name, or a header of the text table); an unknown one is an error
    naming the valid ones."""
    valid = columns(table)
    key = _ALIASES.get(name.lower(), name)
    if key not in valid and f"test_{key}" in valid:
        key = f"test_{key}"  # the text table's headers: roc_auc, f1, ...
    if key not in valid:
        raise LrsweepError(f"unknown sort column {name!r}", f"use one of: {', '.join(valid)}")
    return key


def _descending(key: str) -> bool:
    if key.startswith("test_"):
        return key not in _ASCENDING and "log_loss" not in key
    return key in ("complete", "calls", "started")


def sort_rows(table: Sequence[dict[str, Any]], column: str) -> list[dict[str, Any]]:
    """The rows best first by ``column``: metrics higher first (log_loss lower first; ``best_val`` by each row's
    own objective), wall time and cost lowest first, ``started`` newest first, text A to Z. Rows without a value
    come last; ties keep their order."""
    key = sort_column(column, table)
    present = [r for r in table if r.get(key) not in (None, "")]
    missing = [r for r in table if r.get(key) in (None, "")]
    if key == "best_val":  # a log_loss sweep is best lowest: each row by its own objective's direction
        lower = {r["run_id"]: METRIC_DIRECTIONS.get(r.get("objective") or "") == "minimize" for r in present}
        present.sort(key=lambda r: r[key] if lower[r["run_id"]] else -r[key])
    elif key.startswith("test_") or key in _NUMERIC or key == "wall_partial":
        present.sort(key=lambda r: r[key], reverse=_descending(key))
    else:
        present.sort(key=lambda r: str(r[key]).lower(), reverse=_descending(key))
    return present + missing


# -- formats --------------------------------------------------------------------------------------------------
def _metric(value: Any) -> str:
    return "" if value is None else f"{value:.4f}"


def _wall(row: Mapping[str, Any]) -> str:
    seconds, mark = row.get("wall_seconds"), "+" if row.get("wall_partial") else ""
    if seconds is None:
        return mark
    if seconds < 60:
        return f"{seconds:.1f}s{mark}"
    s = round(seconds)
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s{mark}"
    return f"{s // 3600}h{s % 3600 // 60:02d}m{mark}"


def _usd(row: Mapping[str, Any]) -> str:
    return "" if row.get("cost_usd") is None else f"{row['cost_usd']:.2f}"


def _trials(row: Mapping[str, Any]) -> str:
    return f"{row['complete']}/{row['pruned']}/{row['failed']}"


def _threshold(row: Mapping[str, Any]) -> str:
    return " ".join(x for x in (row.get("threshold_strategy") or "", _metric(row.get("threshold"))) if x)


def _short_sweep(row: Mapping[str, Any]) -> str:
    """The run name without its backend and dataset (the table has columns for them)."""
    name, suffix = str(row.get("sweep") or ""), f" {row.get('backend')} {row.get('dataset')}"
    return name[: -len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) else name


def _cut(text: str, width: int, header: str) -> str:
    """``text`` in ``width`` characters. A run name keeps its study id (``#3f9a2c1d``), which tells sweeps apart;
    an experiment name keeps its end (``lrsweep-<dataset>`` differ there)."""
    if len(text) <= width:
        return text
    if header == "experiment":
        kept = text[len(text) - width + 2 :]
        cut = re.search(r"[-_]", kept[:4])  # from a word's start: ..telco_churn, not ..p-telco_churn
        return ".." + (kept[cut.end() :] if cut else kept)
    head, sep, tail = text.rpartition(" #")
    if header == "sweep" and sep and len(tail) + 5 < width:
        return head[: width - len(tail) - 4].rstrip() + ".. #" + tail
    return text[: width - 2] + ".."


# the test metrics of the text table, by header (short ones: the run names get the room)
_TABLE_TESTS = {"roc_auc": "roc_auc", "f1": "f1", "prec": "precision", "recall": "recall", "acc": "accuracy"}
# the text table: (header, cell, right-aligned); the constant ones of _COMMON are said once above it
_TABLE: list[tuple[str, Any, bool]] = [
    ("experiment", lambda r: r["experiment"] or "", False),
    ("sweep", _short_sweep, False),
    ("backend", lambda r: r["backend"] or "", False),
    ("dataset", lambda r: r["dataset"] or "", False),
    ("trials", _trials, True),
    ("objective", lambda r: r["objective"] or "", False),
    ("best_val", lambda r: _metric(r["best_val"]), True),
    *((h, (lambda r, m=m: _metric(r.get(f"test_{m}"))), True) for h, m in _TABLE_TESTS.items()),
    ("threshold", _threshold, False),
    ("wall", _wall, True),
    ("usd", _usd, True),
    ("status", lambda r: r["status"] or "", False),
]
_COMMON = ("experiment", "backend", "dataset", "objective", "status")
_CAP = {"sweep": 40, "experiment": 24, "dataset": 16}
# to fit WIDTH, in turn: the column and the narrowest it gets (the table is wider only when they all are)
_SHRINK = (("sweep", 24), ("experiment", 14), ("dataset", 11), ("sweep", 20))


def as_table(table: Sequence[Mapping[str, Any]], title: str = "") -> str:
    """A text table for 120 columns: what every row shares is said once above it; the test metrics are roc_auc,
    f1, precision, recall and accuracy (every one is in the CSV); a USD column only when a sweep has a cost. Run
    and experiment names are shortened to fit (the table is wider only when even the shortened ones do not)."""
    if not table:
        return title
    cells = {h: [str(cell(r)) for r in table] for h, cell, _ in _TABLE}
    common = [(h, cells[h][0]) for h in _COMMON if len(set(cells[h])) == 1 and cells[h][0]]
    shown = [(h, right) for h, _, right in _TABLE if h not in dict(common) and (h != "usd" or any(cells["usd"]))]
    widths = {h: min(max(len(h), *map(len, cells[h])), _CAP.get(h, 10**6)) for h, _ in shown}
    # two spaces between columns, one between two numbers (right-aligned, so still apart)
    gaps = [" " if a[1] and b[1] else "  " for a, b in zip(shown, shown[1:], strict=False)]
    excess = sum(widths.values()) + sum(map(len, gaps)) - WIDTH
    for h, narrowest in _SHRINK:
        if excess > 0 and h in widths:
            cut = min(excess, max(widths[h] - narrowest, 0))
            widths[h] -= cut
            excess -= cut

    def line(values: Mapping[str, str]) -> str:
        cut = [(_cut(values[h], widths[h], h), h, right) for h, right in shown]
        parts = [text.rjust(widths[h]) if right else text.ljust(widths[h]) for text, h, right in cut]
        return "".join(p + g for p, g in zip(parts, [*gaps, ""], strict=True)).rstrip()

    out = [title] if title else []
    if common:
        out.append("in common: " + ", ".join(f"{h} {v}" for h, v in common))
    out.append(line({h: h for h, _ in shown}))
    out += [line({h: cells[h][i] for h, _ in shown}) for i in range(len(table))]
    notes = ["trials: complete/pruned/failed"]
    if any(r.get("wall_partial") for r in table):
        notes.append("wall: + where a call recorded no time (killed or running)")
    out.append("; ".join([*notes, "every column: --format csv"]))
    return "\n".join(out)


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else value  # repr: the shortest text that reads back exactly


def as_csv(table: Sequence[Mapping[str, Any]]) -> str:
    """Every column at full precision (empty where a sweep has no value)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(table), lineterminator="\n")
    writer.writeheader()
    for r in table:
        writer.writerow({k: _csv_value(r.get(k)) for k in writer.fieldnames})
    return buf.getvalue()


def _md(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def as_markdown(table: Sequence[Mapping[str, Any]]) -> str:
    """A pipe table for a report, self-contained (nothing said above it): every sweep with each of its test metrics
    (4 decimals), threshold, wall time, cost and calls; the sweep's run name without its backend and dataset."""
    tests = [m for m in TEST_METRICS if any(r.get(f"test_{m}") is not None for r in table)]
    spec: list[tuple[str, Any, bool]] = [
        ("experiment", lambda r: r["experiment"], False),
        ("sweep", _short_sweep, False),
        ("backend", lambda r: r["backend"], False),
        ("dataset", lambda r: r["dataset"], False),
        ("trials (complete/pruned/failed)", _trials, True),
        ("objective", lambda r: r["objective"], False),
        ("best val", lambda r: _metric(r["best_val"]), True),
        *((f"test {m}", (lambda r, m=m: _metric(r.get(f"test_{m}"))), True) for m in tests),
        ("threshold", lambda r: r["threshold_strategy"], False),
        ("value", lambda r: _metric(r["threshold"]), True),
        ("wall", _wall, True),
        ("cost (USD)", _usd, True),
        ("calls", lambda r: r["calls"], True),
        ("status", lambda r: r["status"], False),
    ]
    out = ["| " + " | ".join(h for h, _, _ in spec) + " |"]
    out.append("|" + "|".join("---:" if right else "---" for _, _, right in spec) + "|")
    out += ["| " + " | ".join(_md("" if c(r) is None else c(r)) for _, c, _ in spec) + " |" for r in table]
    if any(r.get("wall_partial") for r in table):
        out += ["", "wall: the calls' time; + where a call recorded none (killed or running)."]
    return "\n".join(out) + "\n"


# -- reading MLflow -------------------------------------------------------------------------------------------
@dataclass
class Store:
    """What ``read_store`` found: the parent runs and their children, and the experiments they are in."""

    uri: str  # as shown: credentials redacted
    experiments: dict[str, str]  # id -> name, of the experiments read
    runs: list[Any]
    children: list[Any]


def _experiments(client: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    token = None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        out |= {str(e.experiment_id): e.name for e in page}
        token = page.token
        if not token:
            return out


def read_store(uri: str | None = None, experiments: Sequence[str] = ()) -> Store:
    """The sweeps of ``experiments`` (default: every experiment) in the store at ``uri`` (default: the one a sweep
    logs to). Two paginated queries per experiment that holds sweeps: its parent runs, then its trials' runs."""
    from lrsweep.recorded import open_store, store_error
    from lrsweep.tracking import _search_all

    client, shown = open_store(uri, hint="lrsweep compare")
    sweeps = f"tags.`{KIND_TAG}` = 'sweep'"
    try:
        known = _experiments(client)
        ids = {name: eid for eid, name in known.items()}
        unknown = [name for name in experiments if name not in ids]
        if unknown:
            holding = [n for e, n in known.items() if client.search_runs([e], filter_string=sweeps, max_results=1)]
            raise LrsweepError(
                f"unknown experiment {unknown[0]!r} in {shown}",
                f"use one of: {', '.join(sorted(holding))} (the experiments that hold sweeps)"
                if holding
                else f"the store holds no lrsweep sweeps yet (its experiments: {', '.join(sorted(known.values()))})",
            )
        chosen = {ids[n]: n for n in dict.fromkeys(experiments)} if experiments else known
        runs: list[Any] = []
        children: list[Any] = []
        for eid in chosen:
            parents = _search_all(client, eid, sweeps)
            if parents:
                runs += parents
                children += _search_all(client, eid, f"tags.`{KIND_TAG}` = 'trial'")
    except LrsweepError:
        raise
    except Exception as exc:
        raise store_error(exc, shown) from exc
    return Store(uri=shown, experiments=chosen, runs=runs, children=children)


# -- the command ----------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="lrsweep compare",
        description="The sweeps of an MLflow store side by side: one row per sweep (parent run).",
        epilog=(
            "Sort columns are the CSV's (test_roc_auc, best_val, wall_seconds, cost_usd, started, ...) or the "
            "table's headers (roc_auc, f1, wall, ...). Examples: lrsweep compare --sort test_roc_auc; "
            "lrsweep compare churn_course churn_cost --format markdown --out sweeps.md"
        ),
    )
    p.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help="MLflow experiments (default: every one)")
    p.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="the MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in this directory)",
    )
    p.add_argument(
        "--sort",
        metavar="COLUMN",
        help="best first (metrics highest first; log_loss, wall and cost lowest first); default: newest first",
    )
    p.add_argument("--format", choices=("table", "csv", "markdown"), default="table", help="default: table")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of the standard output")
    return p


def main(argv: Sequence[str]) -> int:
    """``lrsweep compare ARGV``; errors raise LrsweepError (the CLI prints them as one line)."""
    args = _parser().parse_args(list(argv))
    if args.sort and not args.sort.startswith("test_"):
        sort_column(args.sort)  # an unknown column fails before the store is read
    store = read_store(args.tracking_uri, args.experiments)
    table = rows(store.runs, store.children, store.experiments)
    if not table:
        where = f"experiment {', '.join(args.experiments)} of " if args.experiments else ""
        print(
            f"No lrsweep sweeps in {where}{store.uri}: a sweep (`lrsweep ...`) logs one parent run there.",
            file=sys.stdout if args.format == "table" and not args.out else sys.stderr,
        )
        return 0
    order = "newest first"
    if args.sort:
        key = sort_column(args.sort, table)
        table = sort_rows(table, key)
        order = f"sorted by {key}"
    if args.format == "csv":
        text = as_csv(table)
    elif args.format == "markdown":
        text = as_markdown(table)
    else:
        n_exp = len({r["experiment"] for r in table})
        title = f"{len(table)} sweep{'s' * (len(table) != 1)} in {n_exp} experiment{'s' * (n_exp != 1)} of {store.uri}"
        text = as_table(table, title=f"{title}, {order}") + "\n"
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            problem = f"cannot write {args.out} ({exc.strerror})"
            raise LrsweepError(problem, "name a file in a folder that exists") from exc
        print(f"wrote {len(table)} sweep(s) to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
