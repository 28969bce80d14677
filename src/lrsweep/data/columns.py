"""The one set of column rules, for every engine that reads a table (pandas, Spark).

An engine summarises each column in a :class:`ColumnProfile` (its kind, how many values are present, how
many distinct); :func:`plan_columns` turns the profiles and the dataset config into a :class:`ColumnPlan`:
which columns are numeric, one-hot categorical or hashed, and which are dropped and why. The target's
positive label is chosen by :func:`positive_label`, also shared.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from lrsweep.config import DatasetConfig
from lrsweep.errors import LrsweepError

__all__ = [
    "ColumnProfile",
    "ColumnPlan",
    "check_named_columns",
    "class_labels",
    "plan_columns",
    "positive_label",
    "say_classes",
    "ID_MIN_ROWS",
]

log = logging.getLogger("lrsweep")

# Labels read as "the positive one" when dataset.positive is not given (case-insensitive).
_POSITIVE_WORDS = ("1", "1.0", "true", "yes", "y", "positive", "pos")
_NEGATIVE_WORDS = ("0", "0.0", "false", "no", "n", "negative", "neg")
# A text column with a distinct value on every row of a table this large is an id, not a feature.
ID_MIN_ROWS = 50
# An engine that counts distinct values approximately calls a column an id from this share of the rows.
APPROX_ID_SHARE = 0.95
MANY_LEVELS = 1000  # a one-hot categorical with more levels than this gets a warning offering dataset.hashed


@dataclass(frozen=True)
class ColumnProfile:
    """What an engine measured of one feature column."""

    name: str
    kind: str  # number | bool | text | other (a type no backend reads: dates, arrays, ...)
    present: int  # non-missing values
    # distinct non-missing values: exact, or approximate when ``approx``; an engine may report 2 for
    # "more than one" where the exact count is not needed (numbers)
    distinct: int
    approx: bool = False
    type_name: str = ""  # the engine's name for the type, for messages


@dataclass
class ColumnPlan:
    numeric: list[str]
    categorical: list[str]  # one-hot encoded
    hashed: list[str]  # categorical, hashed into buckets (dataset.hashed)
    dropped: dict[str, str] = field(default_factory=dict)  # column -> why

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical + self.hashed


def check_named_columns(cfg: DatasetConfig, columns: Iterable[str], where: str) -> None:
    """Refuse a target or a column named in the dataset config that the table does not have."""
    have = list(columns)
    if cfg.target not in have:
        shown = ", ".join(map(str, have[:12])) + (" ..." if len(have) > 12 else "")
        raise LrsweepError(
            f"target column {cfg.target!r} is not in {where} (columns: {shown})", "set dataset.target=COLUMN"
        )
    unknown = [c for c in [*cfg.drop, *cfg.id_columns, *(cfg.categorical or []), *cfg.hashed] if c not in have]
    if unknown:
        raise LrsweepError(
            f"column(s) {', '.join(map(repr, unknown))} named in dataset.drop/id_columns/categorical/hashed "
            "are not in the data",
            "check the spelling against the file's header",
        )


def plan_columns(profiles: list[ColumnProfile], n_rows: int, cfg: DatasetConfig) -> ColumnPlan:
    """Decide what each feature column becomes (profiles exclude the target)."""
    dropped: dict[str, str] = {c: "dropped by dataset.drop" for c in cfg.drop}
    dropped |= {c: "id column (dataset.id_columns)" for c in cfg.id_columns}
    hashed_set = set(cfg.hashed)
    chosen = set(cfg.categorical or []) | hashed_set
    numeric: list[str] = []
    categorical: list[str] = []
    hashed: list[str] = []
    for p in profiles:
        if p.name in dropped:
            continue
        if p.kind == "other":
            dropped[p.name] = f"unsupported type {p.type_name or '?'}"
        elif p.present == 0:
            dropped[p.name] = "all values missing"
        elif p.distinct == 1:
            dropped[p.name] = "constant"
        elif p.name in hashed_set:
            hashed.append(p.name)
        elif cfg.categorical is not None:
            if p.name not in chosen and p.kind == "text":
                raise LrsweepError(
                    f"column {p.name!r} is not numeric but is missing from dataset.categorical",
                    "add it to dataset.categorical or to dataset.drop",
                )
            (categorical if p.name in chosen else numeric).append(p.name)
        elif p.kind in ("number", "bool"):
            numeric.append(p.name)
        elif _looks_like_id(p, n_rows):
            dropped[p.name] = "looks like an id (a distinct value on every row)"
        else:
            categorical.append(p.name)
    _warn_dropped(dropped)
    wide = [(p.name, p.distinct) for p in profiles if p.name in categorical and p.distinct > MANY_LEVELS]
    if wide:
        shown = ", ".join(f"{name!r} ({n:,} levels)" for name, n in wide[:5])
        names = ",".join(name for name, _ in wide)
        log.warning(
            "one-hot encoding %s: a column per level makes every trial slow; hash it with dataset.hashed=[%s] "
            "(or drop it with dataset.drop)", shown, names,
        )  # fmt: skip
    if not numeric and not categorical and not hashed:
        raise LrsweepError("no usable feature columns remain", "check dataset.drop and the file")
    return ColumnPlan(numeric, categorical, hashed, dropped)


def _warn_dropped(dropped: dict[str, str], shown: int = 8) -> None:
    """One warning per reason, naming its columns (50 constant columns are one line, not 50)."""
    by_reason: dict[str, list[str]] = {}
    for col, why in dropped.items():
        if why in ("all values missing", "constant") or why.startswith(("looks like", "unsupported")):
            by_reason.setdefault(why, []).append(col)
    for why, cols in by_reason.items():
        more = f" and {len(cols) - shown} more" if len(cols) > shown else ""
        names = ", ".join(repr(c) for c in cols[:shown]) + more
        what = "column" if len(cols) == 1 else f"{len(cols)} columns"
        log.warning("dropped %s %s: %s (keep it with dataset.categorical or fix the data)", what, names, why)


def _looks_like_id(p: ColumnProfile, n_rows: int) -> bool:
    if n_rows <= ID_MIN_ROWS or p.present < n_rows:
        return False
    return p.distinct >= (APPROX_ID_SHARE * n_rows if p.approx else n_rows)


def rest_label(positive: str) -> str:
    """The negative label when a multi-class target is fitted as ``positive`` against the rest."""
    return f"not {positive}"


def say_one_against_the_rest(target: str, positive: str, counts: dict[str, int], more: bool = False) -> int | str:
    """One line when a target of more than two classes is fitted as one class against the rest: which, and the
    others with their row counts (a stray value in a yes/no column shows here). Returns the number of classes
    (``more``: counts holds only the largest, so "N+"), as the fingerprint records it."""
    others = sorted(((k, v) for k, v in counts.items() if k != positive), key=lambda kv: -kv[1])
    shown = ", ".join(f"{k!r} {v:,}" for k, v in others[:6]) + (" ..." if len(others) > 6 or more else "")
    classes: int | str = f"{len(counts)}+" if more else len(counts)
    log.warning(
        "target %r has %s classes: fitting %r (%s rows) against the rest (%s); check the rest holds no stray value",
        target, classes, positive, f"{counts.get(positive, 0):,}", shown,
    )  # fmt: skip
    return classes


def class_labels(counts: dict[str, int], target: str, max_classes: int, more: bool = False) -> list[str]:
    """The classes of a target fitted as a multi-class problem, in the order of their codes 0..K-1 (numeric labels
    by value, others as text), refusing what cannot be fitted: more than ``max_classes`` classes (an id or a
    number named as the target), or a class too small to appear in train, validation and test. ``more``: an engine
    counted only the first max_classes + 1 classes."""
    if len(counts) > max_classes:
        shown = ", ".join(repr(k) for k in sorted(counts)[:6]) + " ..."
        n = f"more than {max_classes}" if more else f"{len(counts):,}"
        raise LrsweepError(
            f"target {target!r} has {n} classes ({shown}), more than dataset.max_classes={max_classes}",
            "check dataset.target names the label column; raise dataset.max_classes if so many classes are meant, "
            "or fit one class against the rest with dataset.positive=LEVEL",
        )
    small = {k: v for k, v in counts.items() if v < 3}
    if small:
        k, v = min(small.items(), key=lambda kv: kv[1])
        raise LrsweepError(
            f"class {k!r} of target {target!r} has {v} row(s): too few for train, validation and test",
            "drop its rows or merge it into another class, or fit one class against the rest with "
            "dataset.positive=LEVEL",
        )
    try:
        return sorted(counts, key=float)
    except ValueError:
        return sorted(counts)


def say_classes(target: str, classes: list[str], counts: dict[str, int]) -> None:
    """One line when a target is fitted as a multi-class problem: its classes and their row counts."""
    shown = ", ".join(f"{c!r} {counts[c]:,}" for c in classes)
    log.info("target %r has %d classes, fitted as a multi-class problem: %s", target, len(classes), shown)


def positive_label(labels: list[str], target: str, positive: str | None) -> str:
    """The positive one among the target's distinct labels (as text): ``positive``, or inferred for two labels
    (0/1, yes/no, ...); a target of more than two classes reaches here only with ``positive`` (that class is then
    fitted against the rest; without it the target is fitted as a multi-class problem). One class, or no way to
    tell, is refused."""
    shown = ", ".join(repr(v) for v in sorted(labels)[:6]) + (" ..." if len(labels) > 6 else "")
    if len(labels) < 2:
        raise LrsweepError(
            f"target {target!r} has a single class ({shown})",
            "a binary target needs two classes: check dataset.target and the file",
        )
    if positive is not None:
        if positive in labels:
            return positive
        for lab in labels:  # numeric labels written differently ("1" vs "1.0")
            try:
                if float(lab) == float(positive):
                    return lab
            except ValueError:
                pass
        raise LrsweepError(
            f"positive label {positive!r} is not a value of target {target!r} (values: {shown})",
            f"set dataset.positive to one of them, e.g. dataset.positive={sorted(labels)[-1]}",
        )
    lower = {lab.lower(): lab for lab in labels}
    pos = [lower[w] for w in _POSITIVE_WORDS if w in lower]
    neg = [lower[w] for w in _NEGATIVE_WORDS if w in lower]
    if len(pos) == 1 and len(neg) == 1:
        return pos[0]
    raise LrsweepError(
        f"cannot tell which label of target {target!r} is positive (values: {shown})",
        f"say it with dataset.positive={sorted(labels)[-1]}",
    )
