"""The scikit-learn backend's logged model with hashed features: it loads where lrsweep is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lrsweep.backends.sklearn import SklearnBackend
from lrsweep.config import Config, DatasetConfig
from lrsweep.data import open_data
from lrsweep.space import ModelParams
from lrsweep.tracking import log_model

LOAD_WITHOUT_LRSWEEP = """
import json, sys
sys.modules["lrsweep"] = None  # any import of lrsweep now fails
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps([str(v) for v in model.predict(pd.read_json(sys.argv[2], orient="split"))]))
"""


@pytest.mark.slow
def test_hashed_model_loads_and_predicts_without_lrsweep(tmp_path: Path, sqlite_tracking: str) -> None:
    import mlflow

    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"x": rng.normal(size=n), "user": rng.choice([f"u{i}" for i in range(50)], n)})
    df["y"] = (rng.random(n) < 1 / (1 + np.exp(-(df["x"] + (df["user"] < "u2"))))).astype(int)
    df.to_csv(tmp_path / "d.csv", index=False)
    ds = DatasetConfig(name=None, path=str(tmp_path / "d.csv"), target="y", positive="1", hashed=["user"])
    cfg = Config(dataset=ds)
    backend = SklearnBackend(seed=cfg.seed)
    backend.prepare(open_data(cfg.dataset, cfg.split, cfg.cv, cfg.seed))
    refit = backend.refit(ModelParams(1.0, 0.0, "l2", "lbfgs", "none", 500, 1e-6), 0.4)
    with mlflow.start_run() as run:
        pass
    model_uri = log_model(sqlite_tracking, run.info.run_id, refit, backend.capabilities, 0.4)
    example = df.drop(columns="y").iloc[:20].assign(user=lambda d: d["user"].astype(str))
    example.to_json(tmp_path / "x.json", orient="split")
    out = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_LRSWEEP, model_uri, str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
        env={"MLFLOW_TRACKING_URI": sqlite_tracking, "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    expected = refit.model.predict(example).astype(str)  # the data's own labels ("0" / "1" here)
    np.testing.assert_array_equal(json.loads(out.stdout.strip().splitlines()[-1]), expected)
