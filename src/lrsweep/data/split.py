"""The split of a table into train / validation / test (and CV folds on train+validation), for every engine.

Tables read into memory get a seeded stratified split (:func:`split_table`); tables too large for that,
read by Spark directly, get each row's part from a seeded hash of the whole row (:func:`hash_parts`), the
same whatever the partitioning. Both use ``split.val_size``, ``split.test_size``, ``cv.folds`` and the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from lrsweep.config import CVConfig, SplitConfig
from lrsweep.errors import LrsweepError

__all__ = ["Split", "split_table", "check_every_class", "cv_folds", "hash_parts", "TRAIN", "VAL", "TEST", "PART_NAMES"]

TRAIN, VAL, TEST = 0, 1, 2  # part codes, as stored in a Spark frame's part column
PART_NAMES = {TRAIN: "train", VAL: "validation", TEST: "test"}
_HINT = "use a larger data set or larger split.val_size/split.test_size"


@dataclass
class Split:
    """Row positions of each part; ``folds`` are (fit, score) positions within train+validation."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)

    @property
    def trainval(self) -> np.ndarray:
        return np.concatenate([self.train, self.val])

    @property
    def rows(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def check_both_classes(n_neg: int, n_pos: int, part: str) -> None:
    if n_neg + n_pos == 0 or min(n_neg, n_pos) == 0:
        raise LrsweepError(f"the {part} part has {'no rows' if n_neg + n_pos == 0 else 'only one class'}", _HINT)


def check_every_class(counts: np.ndarray, where: str, labels: list[str] | None = None) -> None:
    """Every class of a multi-class target must be in every part (``counts``: the part's rows per class code): a
    class missing from training cannot be predicted, one missing from validation or test cannot be scored."""
    counts = np.asarray(counts)
    if counts.min() == 0:
        k = int(np.argmin(counts))
        name = repr(labels[k]) if labels else str(k)
        raise LrsweepError(
            f"class {name} has no rows in {where} (the split left it elsewhere)",
            "a class needs rows in train, validation and test: give it more rows, merge it into another class, or "
            "drop it",
        )


def split_table(y: np.ndarray, split: SplitConfig, cv: CVConfig, seed: int, labels: list[str] | None = None) -> Split:
    """Seeded stratified train/validation/test positions, and K folds on train+validation when cv.folds > 1.

    ``labels``: a multi-class target's class labels (y holds their codes); every class must reach every part."""
    idx = np.arange(len(y))
    counts = np.bincount(y, minlength=2)
    if counts.min() < 3:
        raise LrsweepError(f"the minority class has {counts.min()} row(s): too few to split three ways", _HINT)
    try:
        rest, test = train_test_split(idx, test_size=split.test_size, stratify=y, random_state=seed)
        val_share = split.val_size / (1.0 - split.test_size)
        train, val = train_test_split(rest, test_size=val_share, stratify=y[rest], random_state=seed)
    except ValueError as exc:
        raise LrsweepError(f"cannot split the data as asked: {exc}", _HINT) from exc
    for part, pos in (("train", train), ("validation", val), ("test", test)):
        yy = y[pos]
        if labels and len(labels) > 2:
            check_every_class(np.bincount(yy, minlength=len(labels)), f"the {part} part", labels)
        else:
            check_both_classes(int((yy == 0).sum()), int((yy == 1).sum()), part)
    out = Split(np.sort(train), np.sort(val), np.sort(test))
    if cv.folds > 1:
        out.folds = cv_folds(y, out.trainval, cv.folds, seed)
    return out


def cv_folds(y: np.ndarray, positions: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    yk = y[positions]
    if np.bincount(yk, minlength=2).min() < k:
        raise LrsweepError(f"cv.folds={k} is more than the minority class has rows", "lower cv.folds")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(positions[a], positions[b]) for a, b in skf.split(positions, yk)]


def hash_parts(row_columns: list[Any], split: SplitConfig, cv: CVConfig, seed: int) -> tuple[Any, Any]:
    """Spark column expressions (part, fold) from xxhash64 of the whole row and the seed.

    Deterministic whatever the partitioning; duplicate rows land in one part. ``fold`` is -1 on test rows
    and without CV. The parts are not stratified: their sizes and class balance vary by sampling noise.
    """
    from pyspark.sql import functions as F

    def unit(s: int) -> Any:  # a number in [0, 1) from the whole row
        return F.pmod(F.xxhash64(*row_columns, F.lit(s)), F.lit(2**31 - 1)) / float(2**31 - 1)

    u = unit(seed)
    part = F.when(u < split.test_size, TEST).when(u < split.test_size + split.val_size, VAL).otherwise(TRAIN)
    fold = F.lit(-1)
    if cv.folds > 1:
        fold = F.when(part != TEST, F.floor(unit(seed + 1) * cv.folds)).otherwise(-1)
    return part.cast("int"), fold.cast("int")
