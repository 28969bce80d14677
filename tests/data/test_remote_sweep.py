"""A whole sweep on tables served by a local S3 endpoint (moto in server mode), read on the pandas path.

The AWS credentials are planted fake values in the standard environment variables; no byte the run writes
(MLflow store and artifacts, study journal, Hydra's output folder) nor its terminal output may contain them.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.data.servers import ACCESS_KEY, SECRET
from tests.e2e_helpers import mlflow_runs, run_cli

pytestmark = pytest.mark.slow

BUCKET = "lrsweep-sweeps"


def _table(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "plan": rng.choice(["x", "y", "z"], n)})
    logit = 1.2 * df["a"] - 0.8 * df["b"] + (df["plan"] == "x")
    df["y"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return df


def _every_byte(root: Path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file())


def test_sweeps_on_csv_and_parquet_in_s3_run_end_to_end_and_leak_no_credential(s3_endpoint: str, tmp_path: Path):
    import boto3

    df = _table()
    csv = df.to_csv(index=False).encode()
    parquet = io.BytesIO()
    df.to_parquet(parquet, index=False)
    s3 = boto3.client(
        "s3", endpoint_url=s3_endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET,
    )  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="churn/table.csv", Body=csv)
    s3.put_object(Bucket=BUCKET, Key="churn/table.parquet", Body=parquet.getvalue())
    env = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    outputs = []
    for key in ("churn/table.csv", "churn/table.parquet"):
        uri = f"s3://{BUCKET}/{key}"
        args = [f"dataset.path={uri}", "dataset=csv", "dataset.target=y", "dataset.positive=yes", "dataset.name=s3"]
        proc = run_cli([*args, "search=l2", "search.n_trials=3"], tmp_path, env_extra=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        outputs.append(proc.stdout + proc.stderr)

    parents, children = mlflow_runs(tmp_path, experiment="lrsweep-s3")
    assert len(parents) == 2 and len(children) == 6
    by_source = {p.data.params["data.source"]: p for p in parents}
    assert set(by_source) == {f"s3://{BUCKET}/churn/table.csv", f"s3://{BUCKET}/churn/table.parquet"}
    # the fingerprint is the SHA-256 of the object's bytes, as of a local copy
    assert by_source[f"s3://{BUCKET}/churn/table.csv"].data.params["data.sha256"] == hashlib.sha256(csv).hexdigest()
    assert by_source[f"s3://{BUCKET}/churn/table.parquet"].data.params["data.rows"] == str(len(df))
    assert all(p.info.status == "FINISHED" for p in parents)

    # issue 11: a result on data found by URI reproduces from its record, reading the object again
    csv_parent = by_source[f"s3://{BUCKET}/churn/table.csv"].info.run_id
    proc = run_cli(["reproduce", csv_parent], tmp_path, env_extra=env)
    assert proc.returncode == 0 and "reproduced: 27 metrics agree" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    outputs.append(proc.stdout + proc.stderr)

    written = _every_byte(tmp_path) + "".join(outputs).encode()
    assert (tmp_path / "lrsweep_studies").is_dir() and (tmp_path / "mlflow.db").is_file()  # what was written
    for planted in (SECRET, ACCESS_KEY):
        assert planted.encode() not in written, f"{planted} leaked into what the run wrote"
