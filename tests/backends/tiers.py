"""A small three-class table from a known softmax model, for the multi-class tests of both backends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

CLASSES = ["basic", "plus", "pro"]


def plan_tiers(path: Path, rows: int = 3000, seed: int = 3) -> Path:
    """Three classes from a known softmax over two numbers and a categorical (the classes' labels as text)."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    region = rng.choice(["north", "south"], rows)
    logits = np.column_stack([np.zeros(rows), 1.5 * x1 + 0.5 * (region == "south"), -1.0 * x1 + 1.2 * x2])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    tier = np.array(CLASSES)[(rng.random(rows)[:, None] > p.cumsum(axis=1)).sum(axis=1)]
    frame = pd.DataFrame({"x1": x1, "x2": x2, "region": region, "tier": tier})
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path
